import Foundation

/// A tokenizer file that cannot be read or does not hold what was expected.
/// The message names the file, the place in it (line, or JSON key path) and what was expected,
/// e.g. `merges.txt:12: expected two tokens separated by one space, found "a b c"`.
public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) { self.description = description }

    static func file(_ url: URL, _ place: String?, _ message: String) -> TokenizerError {
        if let place { return TokenizerError("\(url.path):\(place): \(message)") }
        return TokenizerError("\(url.path): \(message)")
    }
}
