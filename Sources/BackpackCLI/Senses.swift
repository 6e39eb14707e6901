import ArgumentParser
import BackpackEditing
import BackpackModel
import BackpackModelFolder
import BackpackTokenizer
import Foundation

struct Senses: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "For every sense of a word, the words it promotes and suppresses most.",
        discussion: "Sense l of word x promotes the words with the largest entries of E C(x)_l and suppresses those with the smallest (the paper's Table 3 view). Each word is tokenized as \" \" + word unless --no-space.")

    @OptionGroup var options: ModelOptions
    @OptionGroup var editOptions: EditOptions
    @Option(help: "Words (each one token with its leading space): comma-separated, or a word list file (one per line, '#' comments). With --edit and no words: every edited sense.")
    var words: String?
    /// The first spelling (`backpack senses WORD`), kept for scripts.
    @Argument(help: .hidden) var word: String?
    @Option(help: "How many words to list per sense and direction.") var top = 5
    @Flag(help: "Tokenize the word without a leading space.") var noSpace = false

    func run() throws {
        let dir = try options.directory()
        let base = try dir.load()
        guard base.isBackpack else { throw ModelError(file: dir.url.path, reason: "a plain GPT-2 has no sense vectors") }
        let tokenizer = try options.loadTokenizer(for: dir)
        if !editOptions.edits.isEmpty {
            let outcome = try editOptions.apply(to: base, tokenizer: tokenizer)
            try showEdited(base: base, outcome: outcome, tokenizer: tokenizer)
            return
        }
        let model = base
        let ids = try wordIDs(tokenizer)
        guard !ids.isEmpty else { throw ValidationError("give --words WORDS (or --edit FILE to see the edited senses)") }
        let d = model.config.nEmbd
        for id in ids {
            let senses = model.senseVectors([id])[id] ?? []
            print("senses of \(show(tokenizer, id)) (id \(id)): top \(top) promoted | suppressed words of E C(x)_l")
            for l in 0..<model.config.senses {
                let scores = model.unembed(Array(senses[(l * d)..<((l + 1) * d)]))
                let order = scores.indices.sorted { scores[$0] > scores[$1] }
                let up = order.prefix(top).map { show(tokenizer, $0) }.joined(separator: " ")
                let down = order.suffix(top).reversed().map { show(tokenizer, $0) }.joined(separator: " ")
                print("sense \(String(l).padding(toLength: 3, withPad: " ", startingAt: 0)) + \(up)   − \(down)")
            }
        }
    }

    func validate() throws {
        if words != nil && word != nil { throw ValidationError("give the words once: --words (WORD is its old spelling)") }
    }

    /// The ids of --words (or the old positional WORD), each a single token.
    func wordIDs(_ tokenizer: GPT2Tokenizer) throws -> [Int] {
        try (words.map { try readWords($0) } ?? word.map { [$0] } ?? []).map { try singleToken(tokenizer, $0, space: !noSpace) }
    }
}

extension Senses {
    /// Each edited sense's top words before and after the edits.
    func showEdited(base: LanguageModel, outcome: EditOutcome, tokenizer: GPT2Tokenizer) throws {
        let d = base.config.nEmbd
        let chosen = try wordIDs(tokenizer)
        let filter: Set<Int>? = chosen.isEmpty ? nil : Set(chosen)
        func top(_ v: ArraySlice<Float>, _ model: LanguageModel) -> String {
            if v.allSatisfy({ $0 == 0 }) { return "(none: the sense is the zero vector)" }
            let scores = model.unembed(Array(v))
            return scores.indices.sorted { scores[$0] > scores[$1] }.prefix(self.top).map { show(tokenizer, $0) }.joined(separator: " ")
        }
        for r in outcome.records {
            print("\(URL(fileURLWithPath: r.file).lastPathComponent) #\(r.index): \(r.summary)")
            if r.scope == .inputEmbedding { continue }
            let ids = r.scope == .vocabulary ? chosen : r.tokens.filter { filter?.contains($0) ?? true }
            if r.scope == .vocabulary && ids.isEmpty { print("  (vocabulary-wide: name --words to see their senses)"); continue }
            let before = base.senseVectors(ids), after = outcome.model.senseVectors(ids)
            for id in ids {
                guard let b = before[id], let a = after[id] else { continue }
                for l in r.senses {
                    let range = (l * d)..<((l + 1) * d)
                    print("  \(show(tokenizer, id)) sense \(l)")
                    print("    before + \(top(b[range], base))")
                    print("    after  + \(top(a[range], outcome.model))")
                }
            }
        }
    }
}

/// The id of " word" (or "word"); an error listing the pieces if it is several tokens.
func singleToken(_ tokenizer: GPT2Tokenizer, _ word: String, space: Bool) throws -> Int {
    let text = space ? " " + word : word
    let ids = space ? tokenizer.wordTokens(word) : tokenizer.encode(word)
    guard ids.count == 1 else {
        throw ModelError(file: "WORD", reason: "'\(text)' is \(ids.count) tokens (\(ids.map { show(tokenizer, $0) }.joined(separator: " "))), expected exactly one")
    }
    return ids[0]
}
