import BackpackTokenizer
import BackpackYAML
import Foundation

/// The one definition of a pronoun suite (Evaluations/pronoun-bias.yaml, pronoun-fit.yaml):
/// `prompts` with a `placeholder` for the noun, the `nouns` (inline or `{file: PATH}`) and the
/// `pair` of next tokens compared (default he/she). The pronoun-bias evaluation and `fit_scale`
/// both read it here and build prompts with `ids(prompt:word:tokenizer:)`, so the same prompt
/// is the same token ids in both.
public struct PronounSuite: Sendable {
    public let url: URL
    public let prompts: [String]
    public let placeholder: String
    public let nouns: [WordRef]
    public let pair: (String, String)
    /// The suite file and the noun list file it names (for provenance digests).
    public let files: [URL]

    /// Reads the pronoun keys of the file; other keys (suite, version, kind, ...) are the caller's.
    public static func load(_ url: URL) throws -> PronounSuite {
        let file = url.path
        let text = try YAMLReader.text(url, what: "prompt suite")
        let r = YAMLReader(file: file)
        guard let root = try YAMLReader.compose(text, file: file), case .mapping(let m) = root else {
            throw YAMLError(file: file, "expected a mapping with prompts, placeholder, nouns")
        }
        guard let p = m["prompts"] else { throw YAMLError(r.place(root), "missing `prompts:` (a list of prompt strings)") }
        let promptNodes = try r.sequence(p, "prompts", form: "a list of prompt strings")
        let prompts = try promptNodes.map { try r.string($0, "prompt") }
        if prompts.isEmpty { throw YAMLError(r.place(p), "prompts: expected at least one prompt") }
        let placeholder = try m["placeholder"].map { try r.string($0, "placeholder") } ?? "PROFESSION"
        if placeholder.isEmpty { throw YAMLError(r.place(root), "placeholder: expected a non-empty string") }
        var nouns: [WordRef] = []
        var files = [url]
        if let n = m["nouns"] {
            switch try r.wordSource(n) {
            case .inline(let words): nouns = words
            case .file(let path, let place):
                let list = WordListFile.resolve(path, relativeTo: url)
                nouns = try WordList.read(path, relativeTo: url, place: place)
                files.append(list)
            }
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
        return PronounSuite(url: url, prompts: prompts, placeholder: placeholder, nouns: nouns, pair: pair, files: files)
    }

    /// The prompt's ids with the word's ids in place of the placeholder. A space before the
    /// placeholder belongs to the word's token, as GPT-2 tokenizes " word"; the text around it is
    /// encoded piece by piece (GPT-2's pre-tokenizer splits at the word's leading space, so this
    /// equals encoding the filled-in text whenever the word is one token: tested on every
    /// shipped prompt and noun).
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

enum WordList {
    /// The word list at `path` (relative to the file naming it) as word references.
    static func read(_ path: String, relativeTo base: URL, place: SourcePlace) throws -> [WordRef] {
        try WordListFile.read(WordListFile.resolve(path, relativeTo: base), place: place).map { .word($0.word, $0.place) }
    }
}
