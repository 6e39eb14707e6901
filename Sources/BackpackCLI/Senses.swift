import ArgumentParser
import BackpackEditing
import BackpackModel
import BackpackModelFolder
import BackpackTokenizer
import Foundation

struct Senses: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "For every sense of a word, the words it promotes and suppresses most.",
        discussion: "Sense l of word x promotes the words with the largest entries of E C(x)_l and suppresses those with the smallest (the paper's Table 3 view). The word is tokenized as \" \" + WORD unless --no-space.")

    @OptionGroup var options: ModelOptions
    @OptionGroup var editOptions: EditOptions
    @Argument(help: "A word (one token with its leading space). With --edit and no word: every edited sense.") var word: String?
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
        guard let word else { throw ValidationError("give a WORD (or --edit FILE to see the edited senses)") }
        let id = try singleToken(tokenizer, word, space: !noSpace)
        let senses = model.senseVectors([id])[id] ?? []
        let d = model.config.nEmbd
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

extension Senses {
    /// Each edited sense's top words before and after the edits.
    func showEdited(base: LanguageModel, outcome: EditOutcome, tokenizer: GPT2Tokenizer) throws {
        let d = base.config.nEmbd
        var filter: Int?
        if let word { filter = try singleToken(tokenizer, word, space: !noSpace) }
        func top(_ v: ArraySlice<Float>, _ model: LanguageModel) -> String {
            if v.allSatisfy({ $0 == 0 }) { return "(none: the sense is the zero vector)" }
            let scores = model.unembed(Array(v))
            return scores.indices.sorted { scores[$0] > scores[$1] }.prefix(self.top).map { show(tokenizer, $0) }.joined(separator: " ")
        }
        for r in outcome.records {
            print("\(URL(fileURLWithPath: r.file).lastPathComponent) #\(r.index): \(r.summary)")
            if r.scope == .inputEmbedding { continue }
            let ids = r.scope == .vocabulary ? (filter.map { [$0] } ?? []) : r.tokens.filter { filter == nil || $0 == filter }
            if r.scope == .vocabulary && ids.isEmpty { print("  (vocabulary-wide: name a WORD to see its senses)"); continue }
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
