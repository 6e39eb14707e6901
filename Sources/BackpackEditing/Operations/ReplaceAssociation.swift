import BackpackYAML

/// `replace_association: {remove: r, add: a}`, the authors' formula (denominator |E_r|^2):
/// C' = C - (C.E_r/|E_r|^2) E_r + (C.E_r/|E_r|^2) (|E_r|^2/|E_a|^2) E_a.
public struct ReplaceAssociation: EditOperation {
    public static let name = "replace_association"
    public static let keys = ["remove", "add"]
    public static let scopes: Set<EditScope> = [.words, .vocabulary]

    public let remove: WordRef
    public let add: WordRef

    public init(yaml node: YAMLNode, reader r: YAMLReader) throws {
        let m = try r.mapping(node, Self.name, allowed: Self.keys, form: "{remove: Apple, add: HP}")
        guard let rm = m["remove"], let a = m["add"] else { throw EditError(r.place(node), "replace_association: expected {remove: WORD, add: WORD}") }
        remove = try r.word(rm, "remove")
        add = try r.word(a, "add")
    }

    public func resolve(_ context: inout OperationResolution) throws -> any ResolvedEditOperation {
        Resolved(remove: try context.token(remove, "remove"), add: try context.token(add, "add"))
    }

    struct Resolved: ResolvedEditOperation {
        let remove: Int
        let add: Int

        func effect(_ context: OperationApplication) throws -> OperationEffect {
            let er = context.model.embeddingRow(remove).map(Double.init), ea = context.model.embeddingRow(add).map(Double.init)
            let nr = LinearAlgebra.dot(er, er), na = LinearAlgebra.dot(ea, ea)
            guard nr > 0, na > 0 else { throw EditError(file: "replace_association", "an embedding row is zero") }
            // v += (u . v) w with u = E_r/|E_r|^2 and w = -E_r + (|E_r|^2/|E_a|^2) E_a
            let u = er.map { Float($0 / nr) }
            let w = zip(er, ea).map { Float(-$0 + (nr / na) * $1) }
            return OperationEffect(.uniform(.rankOne(u: u, w: w)))
        }
    }
}
