import BackpackYAML

/// `scale: s`: C' = s C.
public struct Scale: EditOperation, ResolvedEditOperation {
    public static let name = "scale"
    public static let keys: [String] = []
    public static let sweepable = ["scale"]
    public static let scopes: Set<EditScope> = [.words, .vocabulary, .inputEmbedding]

    public let factor: Float

    public init(_ factor: Float) { self.factor = factor }

    public init(yaml node: YAMLNode, reader: YAMLReader) throws { factor = try reader.number(node, "scale") }

    public func effect(_ context: OperationApplication) throws -> OperationEffect { OperationEffect(.uniform(.scale(factor))) }
}
