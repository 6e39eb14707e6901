import ArgumentParser
import BackpackModel
import BackpackTokenizer
import Foundation

struct Senses: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "For every sense of a word, the words it promotes and suppresses most.",
        discussion: "Sense l of word x promotes the words with the largest entries of E C(x)_l and suppresses those with the smallest (the paper's Table 3 view). The word is tokenized as \" \" + WORD unless --no-space.")

    @OptionGroup var options: ModelOptions
    @Argument(help: "A word (one token with its leading space).") var word: String
    @Option(help: "How many words to list per sense and direction.") var top = 5
    @Flag(help: "Tokenize the word without a leading space.") var noSpace = false

    func run() throws {
        let dir = try options.directory()
        let model = try dir.load()
        guard model.isBackpack else { throw ModelError(file: dir.url.path, reason: "a plain GPT-2 has no sense vectors") }
        let tokenizer = try options.loadTokenizer(for: dir)
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

/// The id of " word" (or "word"); an error listing the pieces if it is several tokens.
func singleToken(_ tokenizer: GPT2Tokenizer, _ word: String, space: Bool) throws -> Int {
    let text = space ? " " + word : word
    let ids = tokenizer.encode(text)
    guard ids.count == 1 else {
        throw ModelError(file: "WORD", reason: "'\(text)' is \(ids.count) tokens (\(ids.map { show(tokenizer, $0) }.joined(separator: " "))), expected exactly one")
    }
    return ids[0]
}
