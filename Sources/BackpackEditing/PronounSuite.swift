import BackpackTokenizer
import Foundation
import Yams

/// The prompts of a pronoun suite (Evaluations/pronoun-fit.yaml): `prompts`, `placeholder`, `nouns`.
public struct PronounSuite: Sendable {
    public let url: URL
    public let prompts: [String]
    public let placeholder: String
    public let nouns: [WordRef]

    public static func load(_ url: URL) throws -> PronounSuite {
        let file = url.path
        guard let data = try? Data(contentsOf: url), let text = String(data: data, encoding: .utf8) else {
            throw EditError(file: file, "cannot read the prompt suite")
        }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch let e as YamlError { throw EditFile.yamlError(e, file: file) }
        guard let root, case .mapping(let m) = root else { throw EditError(file: file, "expected a mapping with prompts, placeholder, nouns") }
        let r = Reader(file: file)
        guard let p = m["prompts"] else { throw EditError(r.place(root), "missing `prompts:` (a list of prompt strings)") }
        let prompts = try r.sequence(p, "prompts", form: "a list of prompt strings").map { try r.string($0, "prompt") }
        if prompts.isEmpty { throw EditError(r.place(p), "prompts: expected at least one prompt") }
        let placeholder = try m["placeholder"].map { try r.string($0, "placeholder") } ?? "PROFESSION"
        if placeholder.isEmpty { throw EditError(r.place(root), "placeholder: expected a non-empty string") }
        var nouns: [WordRef] = []
        if let n = m["nouns"] {
            switch try r.wordSource(n) {
            case .inline(let words): nouns = words
            case .file(let path, let place): nouns = try WordList.read(path, relativeTo: url, place: place)
            }
        }
        for (i, prompt) in prompts.enumerated() where !prompt.contains(placeholder) {
            throw EditError(r.place(try r.sequence(p, "prompts", form: "")[i]), "prompt does not contain the placeholder '\(placeholder)'")
        }
        return PronounSuite(url: url, prompts: prompts, placeholder: placeholder, nouns: nouns)
    }

    /// The prompt's ids with the word's ids in place of the placeholder (a space before the
    /// placeholder belongs to the word's token, as GPT-2 tokenizes " word").
    public func ids(prompt: String, word: [Int], tokenizer: GPT2Tokenizer) -> [Int] {
        let parts = prompt.components(separatedBy: placeholder)
        var ids: [Int] = []
        for (i, part) in parts.enumerated() {
            var text = part
            if i < parts.count - 1, text.hasSuffix(" ") { text.removeLast() }
            ids += tokenizer.encode(text)
            if i < parts.count - 1 { ids += word }
        }
        return ids
    }
}

enum WordList {
    /// One word per line; '#' starts a comment; blank lines ignored.
    static func read(_ path: String, relativeTo base: URL, place: SourcePlace) throws -> [WordRef] {
        let url = path.hasPrefix("/") ? URL(fileURLWithPath: path)
            : base.deletingLastPathComponent().appendingPathComponent(path).standardizedFileURL
        guard let data = try? Data(contentsOf: url), let text = String(data: data, encoding: .utf8) else {
            throw EditError(place, "cannot read the word list \(url.path) (paths are relative to the file that names them)")
        }
        var words: [WordRef] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = String(raw)
            if let hash = line.firstIndex(of: "#") { line = String(line[..<hash]) }
            let word = line.trimmingCharacters(in: .whitespaces)
            if word.isEmpty { continue }
            words.append(.word(word, SourcePlace(file: url.path, line: i + 1, column: 1)))
        }
        if words.isEmpty { throw EditError(place, "the word list \(url.path) has no words") }
        return words
    }

    static func resolvePath(_ path: String, relativeTo base: URL) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path)
            : base.deletingLastPathComponent().appendingPathComponent(path).standardizedFileURL
    }
}
