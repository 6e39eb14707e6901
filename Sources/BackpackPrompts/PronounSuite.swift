import BackpackTokenizer
import BackpackYAML
import Foundation

/// The one definition of a pronoun suite (Evaluations/pronoun-bias.yaml, pronoun-fit.yaml):
/// `prompts` with a `placeholder` for the noun, the `nouns` (inline or `{file: PATH}`) and the
/// `pair` of next tokens compared (default he/she). The pronoun-bias evaluation and `fit_scale`
/// both read it here and build prompts with `ids(prompt:word:tokenizer:)`, so the same prompt
/// is the same token ids in both. Its own module, below both editing and evaluation.
public struct PronounSuite: Sendable {
    public let url: URL
    public let prompts: [String]
    public let placeholder: String
    public let nouns: [WordRef]
    public let pair: (String, String)
    /// The suite file and the noun list file it names (for provenance digests).
    public let files: [URL]

    /// The keys this definition reads; a suite file's other keys (suite, version, kind, ...) are its reader's.
    public static let keys = ["prompts", "placeholder", "nouns", "pair"]

    /// Reads a YAML file holding the pronoun keys (other keys are ignored).
    public static func load(_ url: URL) throws -> PronounSuite {
        let file = url.path
        let text = try YAMLReader.text(url, what: "prompt suite")
        guard let root = try YAMLReader.compose(text, file: file), case .mapping(let m) = root else {
            throw YAMLError(file: file, "expected a mapping with prompts, placeholder, nouns")
        }
        return try PronounSuite(m, reader: YAMLReader(file: file), url: url)
    }

    /// Reads the pronoun keys of an already composed suite document (parsed once by its reader).
    public init(_ m: YAMLMapping, reader r: YAMLReader, url: URL) throws {
        let root = YAMLNode.mapping(m)
        guard let p = m["prompts"] else { throw YAMLError(r.place(root), "missing `prompts:` (a list of prompt strings)") }
        let promptNodes = try r.sequence(p, "prompts", form: "a list of prompt strings")
        let prompts = try promptNodes.map { try r.string($0, "prompt") }
        if prompts.isEmpty { throw YAMLError(r.place(p), "prompts: expected at least one prompt") }
        let placeholder = try m["placeholder"].map { try r.string($0, "placeholder") } ?? "PROFESSION"
        if placeholder.isEmpty { throw YAMLError(r.place(root), "placeholder: expected a non-empty string") }
        var nouns: [WordRef] = []
        var files = [url]
        if let n = m["nouns"] {
            let source = try r.wordSource(n, "nouns")
            nouns = try source.words(relativeTo: url)
            if case .file(let path, _) = source { files.append(WordListFile.resolve(path, relativeTo: url)) }
        }
        var pair = ("he", "she")
        if let pn = m["pair"] {
            let items = try r.sequence(pn, "pair", form: "a pair of words such as [he, she]")
            guard items.count == 2 else { throw YAMLError(r.place(pn), "'pair' must list exactly two words, e.g. [he, she]") }
            pair = (try r.string(items[0], "pair word"), try r.string(items[1], "pair word"))
        }
        for (i, prompt) in prompts.enumerated() where !prompt.contains(placeholder) {
            throw YAMLError(r.place(promptNodes[i]), "prompt '\(prompt)' does not contain the placeholder '\(placeholder)'")
        }
        self.url = url; self.prompts = prompts; self.placeholder = placeholder
        self.nouns = nouns; self.pair = pair; self.files = files
    }

    /// The prompt's ids with the word's ids in place of the placeholder. A space before the
    /// placeholder belongs to the word's token, as GPT-2 tokenizes " word" (the project's one
    /// word-to-token rule, `GPT2Tokenizer.wordTokens`); the text around it is encoded piece by
    /// piece (GPT-2's pre-tokenizer splits at the word's leading space, so this equals encoding
    /// the filled-in text whenever the word is one token: tested on every shipped prompt and noun).
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

    /// The prompt as text, with the noun in place of the placeholder.
    public func text(prompt: String, noun: String) -> String {
        prompt.replacingOccurrences(of: placeholder, with: noun)
    }
}
