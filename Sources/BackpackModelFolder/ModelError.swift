/// An error in a model file or a model input; says which file (or input) and what was expected.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let reason: String
    public init(file: String, reason: String) { self.file = file; self.reason = reason }
    public var description: String { file.isEmpty ? reason : "\(file): \(reason)" }
}
