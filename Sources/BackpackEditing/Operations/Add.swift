import BackpackYAML

/// `add: {direction: D, amount: a}`: C' = C + a u, u the unit vector of D (for `pca`, the first
/// component, oriented so that the pairs' differences have a positive mean component).
public struct Add: EditOperation {
    public static let name = "add"
    public static let keys = ["direction", "amount"]
    public static let sweepable = ["amount"]
    public static let scopes: Set<EditScope> = [.words, .vocabulary, .inputEmbedding]

    public let direction: Direction
    public let amount: Float

    public init(yaml node: YAMLNode, reader r: YAMLReader) throws {
        let m = try r.mapping(node, Self.name, allowed: Self.keys, form: "{direction: D, amount: a}")
        guard let d = m["direction"], let a = m["amount"] else { throw EditError(r.place(node), "add: expected {direction: D, amount: NUMBER}") }
        direction = try r.direction(d)
        amount = try r.number(a, "amount")
    }

    public func resolve(_ context: inout OperationResolution) throws -> any ResolvedEditOperation {
        Resolved(direction: try context.direction(direction), amount: amount)
    }

    struct Resolved: ResolvedEditOperation {
        let direction: ResolvedDirection
        let amount: Float

        func effect(_ context: OperationApplication) throws -> OperationEffect {
            OperationEffect(.uniform(.offset(try direction.basis(in: context.model)[0].map { Float($0 * Double(amount)) })))
        }
    }
}
