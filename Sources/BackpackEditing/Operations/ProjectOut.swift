import BackpackYAML

/// `project_out: {direction: D, strength: t}`: C' = C - t Q Q^T C, Q an orthonormal basis of D's
/// subspace; t in [0, 1], default 1 (the projection onto the nullspace).
public struct ProjectOut: EditOperation {
    public static let name = "project_out"
    public static let keys = ["direction", "strength"]
    public static let sweepable = ["strength"]
    public static let scopes: Set<EditScope> = [.words, .vocabulary, .inputEmbedding]

    public let direction: Direction
    public let strength: Float

    public init(yaml node: YAMLNode, reader r: YAMLReader) throws {
        let m = try r.mapping(node, Self.name, allowed: Self.keys, form: "{direction: D, strength: 1.0}")
        guard let d = m["direction"] else { throw EditError(r.place(node), "project_out: missing `direction:`") }
        direction = try r.direction(d)
        var t: Float = 1
        if let s = m["strength"] {
            t = try r.number(s, "strength")
            if t < 0 || t > 1 { throw EditError(r.place(s), "strength \(t): expected a number in [0, 1] (the fraction of the component removed)") }
        }
        strength = t
    }

    public func resolve(_ context: inout OperationResolution) throws -> any ResolvedEditOperation {
        Resolved(direction: try context.direction(direction), strength: strength)
    }

    struct Resolved: ResolvedEditOperation {
        let direction: ResolvedDirection
        let strength: Float

        func effect(_ context: OperationApplication) throws -> OperationEffect {
            OperationEffect(.uniform(.project(try direction.basis(in: context.model).map { $0.map(Float.init) }, strength: strength)))
        }
    }
}
