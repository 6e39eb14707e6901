import ArgumentParser
import BackpackEditing
import BackpackModel
import BackpackModelFolder
import BackpackPrompts
import BackpackYAML
import BackpackWorkflows
import Foundation

struct Localize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rank senses by their contribution to logit(a) - logit(b) over a set of words.",
        discussion: "Contribution of sense l of word w: (E_a - E_b) . C(w)_l (static), or with --contextual its attributed contribution alpha[l, n-1, j] (E_a - E_b) . C(w)_l at the word's position j, averaged over a pronoun suite's prompts with the word in place of the placeholder. Senses are ranked by |mean over words|; a per-word table follows. Words are tokenized as \" \" + word; words that are several tokens are skipped (and listed).")

    @OptionGroup var options: ModelOptions
    @OptionGroup var editOptions: EditOptions
    @Option(help: "A word list file (one per line, '#' comments) or comma-separated words.") var words: String
    @Option(help: "The contrast pair, e.g. he,she.") var pair = "he,she"
    @Option(help: "How many senses to show per word.") var top = 3
    @Flag(help: "Rank by the attributed contribution at the word's position over a pronoun suite's prompts (alpha included) instead of (E_a - E_b) . C(w)_l alone.") var contextual = false
    @Option(help: "With --contextual: the pronoun suite whose prompts are used (name under Evaluations/ or a YAML file).") var suite = "pronoun-bias"
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let dir = try options.directory()
        let tokenizer = try options.loadTokenizer(for: dir)
        let model = try editOptions.apply(to: try dir.load(), tokenizer: tokenizer).model
        guard model.isBackpack else { throw ModelError(file: dir.url.path, reason: "a plain GPT-2 has no sense vectors") }
        let pairWords = pair.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        guard pairWords.count == 2 else { throw ValidationError("--pair: expected two words such as he,she") }
        let a = try singleToken(tokenizer, pairWords[0], space: true), b = try singleToken(tokenizer, pairWords[1], space: true)
        let list = try readWords(words)
        var ids: [Int] = [], names: [String] = [], skipped: [String] = []
        for w in list {
            let t = tokenizer.wordTokens(w)
            if t.count == 1 { if !ids.contains(t[0]) { ids.append(t[0]); names.append(w) } } else { skipped.append(w) }
        }
        guard !ids.isEmpty else { throw ValidationError("--words: no single-token word (skipped: \(skipped.joined(separator: ", ")))") }
        let table: LocalizationTable
        if contextual {
            let prompts = try PronounSuite.load(try suiteFile())
            table = try Localization.rankContextual(model: model, tokens: ids, a: a, b: b, suite: prompts, tokenizer: tokenizer)
        } else {
            table = Localization.rank(model: model, tokens: ids, a: a, b: b)
        }
        if json {
            struct Out: Encodable { let pair: [String]; let words: [String]; let skipped: [String]; let table: LocalizationTable }
            let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(Out(pair: pairWords, words: names, skipped: skipped, table: table)), as: UTF8.self))
            return
        }
        if contextual {
            print("senses ranked by |mean over \(ids.count) words| of the attribution alpha[l, n-1, j] (E[\(pairWords[0])] - E[\(pairWords[1])]) . C(w)_l at the word's position, mean over the prompts of \(suite)")
        } else {
            print("senses ranked by |mean over \(ids.count) words| of (E[\(pairWords[0])] - E[\(pairWords[1])]) . C(w)_l")
        }
        print("sense      mean   mean|.|")
        for s in table.senses { print(String(format: "%5d %9.4f %9.4f", s.sense, s.mean, s.meanAbsolute)) }
        print("\nper word: top \(top) senses by |contribution|")
        for (w, row) in zip(names, table.perWord) {
            let order = row.indices.sorted { abs(row[$0]) > abs(row[$1]) }.prefix(top)
            print("\(w.padding(toLength: 16, withPad: " ", startingAt: 0)) " + order.map { String(format: "%d:%+.3f", $0, row[$0]) }.joined(separator: "  "))
        }
        if !skipped.isEmpty { print("\nskipped (several tokens): \(skipped.joined(separator: ", "))") }
    }

    /// The suite file: a path, or NAME under the Evaluations/ directory eval uses.
    func suiteFile() throws -> URL {
        if suite.hasSuffix(".yaml") || suite.hasSuffix(".yml") || suite.contains("/") {
            guard FileManager.default.fileExists(atPath: suite) else { throw ValidationError("--suite: no such file \(suite)") }
            return URL(fileURLWithPath: suite)
        }
        guard let dir = Toolkit.evaluationsDirectory() else {
            throw ValidationError("--suite \(suite): no Evaluations/ directory found from here; pass a path to the suite YAML")
        }
        let url = dir.appendingPathComponent(suite + ".yaml")
        guard FileManager.default.fileExists(atPath: url.path) else { throw ValidationError("--suite: no suite \(url.path)") }
        return url
    }
}
