import ArgumentParser
import BackpackEditing
import BackpackEvaluation
import BackpackModel
import BackpackModelFolder
import BackpackTokenizer
import BackpackWorkflows
import Foundation

struct Attribute: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Split log p(A) - log p(B) after a text exactly into one contribution per (sense, position).",
        discussion: """
            A Backpack's logits have no final normalisation, so log p(A) - log p(B) for the next token is \
            exactly the sum over senses l and positions j of alpha[l, n-1, j] (E_A - E_B) . C(x_j)_l. \
            Pair words are single tokens with a leading space (" he"). Each --edit is applied alone to the \
            base model (as in eval) and shown beside it: what remains after the edit.
            """)

    @OptionGroup var options: ModelOptions
    @Option(help: "The text; the contrast is for the next token after it.") var text: String
    @Option(help: "The contrast pair A,B, e.g. he,she.") var pair = "he,she"
    @Option(name: .long, help: "Edit file (YAML), shown beside the base model. Edits become variants, they do not compose: each is applied alone to the base model, a sweep file gives one column per grid point, FILE.yaml[axis=value,...] that point alone. Repeatable.")
    var edit: [String] = []
    @Option(help: "The noun: its positions' share against the context words' (a single-token word, leading space added).") var noun: String?
    @Option(help: "How many of the largest contributions to list.") var top = 10
    @Flag(help: "Print JSON: tokens, ids, contributions (k senses x n positions), total, logit_difference.") var json = false

    func run() throws {
        let dir = try options.directory()
        let base = try dir.load()
        guard base.isBackpack else {
            throw ModelError(file: dir.url.path, reason: "a plain GPT-2 has no sense vectors: its logits are no sum over senses; attribute needs a Backpack model")
        }
        let tokenizer = try options.loadTokenizer(for: dir)
        let pairWords = pair.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        guard pairWords.count == 2, !pairWords.contains("") else { throw ValidationError("--pair: expected two words such as he,she") }
        let a = try singleToken(tokenizer, pairWords[0], space: true), b = try singleToken(tokenizer, pairWords[1], space: true)
        let ids = tokenizer.encode(text)
        guard !ids.isEmpty else { throw ValidationError("--text: the text is empty (no tokens)") }
        let nounID = try noun.map { try singleToken(tokenizer, $0, space: true) }
        if let nounID, !ids.contains(nounID) {
            throw ValidationError("--noun: '\(noun ?? "")' (\(show(tokenizer, nounID))) is not a token of the text (\(ids.map { show(tokenizer, $0) }.joined(separator: " ")))")
        }

        // The base model's contextualization serves every sense edit; an edit of the input
        // embedding computes its own.
        let context = try base.contextualize([ids])
        var columns = [(name: "base", attribution: try base.attributions(context, a: a, b: b)[0])]
        var existing: [String] = ["base"]
        for path in edit {
            for v in try EditVariants.variants(path: path, base: base, tokenizer: tokenizer, existing: existing) {
                let attribution = v.model.sharesContextualization(with: base)
                    ? try v.model.attributions(context, a: a, b: b)[0]
                    : try v.model.attribution(ids, a: a, b: b)
                columns.append((v.name, attribution)); existing.append(v.name)
            }
        }
        let tokens = ids.map { tokenizer.decode([$0]) }
        if json {
            try printJSON(columns, tokens: tokens)
        } else {
            printText(columns, tokens: tokens, pairWords: pairWords, tokenizer: tokenizer, noun: nounID)
        }
    }

    struct Entry: Encodable {
        let contributions: [[Double]]
        let total: Double
        let logitDifference: Double
        enum CodingKeys: String, CodingKey { case contributions, total, logitDifference = "logit_difference" }
    }

    struct EditEntry: Encodable {
        let name: String
        let contributions: [[Double]]
        let total: Double
        let logitDifference: Double
        enum CodingKeys: String, CodingKey { case name, contributions, total, logitDifference = "logit_difference" }
    }

    struct Output: Encodable {
        let tokens: [String]
        let ids: [Int]
        let contributions: [[Double]]
        let total: Double
        let logitDifference: Double
        /// Only with --edit.
        let edits: [EditEntry]?
        enum CodingKeys: String, CodingKey { case tokens, ids, contributions, total, logitDifference = "logit_difference", edits }
    }

    func printJSON(_ columns: [(name: String, attribution: SenseAttribution)], tokens: [String]) throws {
        let base = columns[0].attribution
        let edits = columns.dropFirst().map {
            EditEntry(name: $0.name, contributions: $0.attribution.contributions, total: $0.attribution.total,
                      logitDifference: $0.attribution.logitDifference)
        }
        let out = Output(tokens: tokens, ids: base.ids, contributions: base.contributions, total: base.total,
                         logitDifference: base.logitDifference, edits: edit.isEmpty ? nil : edits)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(out), as: UTF8.self))
    }

    func printText(_ columns: [(name: String, attribution: SenseAttribution)], tokens: [String], pairWords: [String],
                   tokenizer: GPT2Tokenizer, noun: Int?) {
        let base = columns[0].attribution
        let k = base.contributions.count, n = base.ids.count
        let label = tokens.map { "'" + $0.replacingOccurrences(of: "\n", with: "\\n") + "'" }
        let width = max(12, (label.map(\.count).max() ?? 0) + 2)
        func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
        print("log p(' \(pairWords[0])') - log p(' \(pairWords[1])') after \"\(text)\"")
        print(String(format: "  = %+.4f (the forward pass's logits); sum of the %d x %d (sense, position) contributions %+.4f",
                     base.logitDifference, k, n, base.total))
        let mass = base.absoluteMass
        print("\nlargest contributions alpha[l, n-1, j] (E_A - E_B) . C(x_j)_l  (share of sum |c| = \(String(format: "%.4f", mass)))")
        print("  " + pad("token", width) + " pos  sense  contribution  share")
        var pairs: [(l: Int, j: Int, c: Double)] = []
        for l in 0..<k { for j in 0..<n { pairs.append((l, j, base.contributions[l][j])) } }
        for p in pairs.sorted(by: { abs($0.c) > abs($1.c) }).prefix(top) {
            print("  " + pad(label[p.j], width) + String(format: "%4d  %5d  %+12.4f  %4.1f%%", p.j, p.l, p.c, 100 * abs(p.c) / max(mass, .leastNonzeroMagnitude)))
        }

        let names = columns.map(\.name)
        let columnWidth = max(10, (names.map(\.count).max() ?? 0) + 2)
        func right(_ s: String) -> String { String(repeating: " ", count: max(1, columnWidth - s.count)) + s }
        func row(_ head: String, _ values: [Double], share: Double? = nil) -> String {
            "  " + pad(head, width + 4) + values.map { right(String(format: "%+.4f", $0)) }.joined()
                + (share.map { String(format: "   %5.1f%%", 100 * $0) } ?? "")
        }
        let header = "  " + pad("", width + 4) + names.map(right).joined() + "   share"
        print("\nby position: sum over senses" + (columns.count > 1 ? " (base, then each edit alone)" : "") + "; share of sum |c| (base)")
        print(header)
        for j in 0..<n {
            let share = base.absoluteShare { $1 == j }
            print(row(pad(label[j], width) + String(format: "%4d", j), columns.map { $0.attribution.byPosition[j] }, share: share))
        }
        print(row("total", columns.map(\.attribution.total)))
        print(row("logit difference", columns.map(\.attribution.logitDifference)))

        print("\nby sense: sum over positions; share of sum |c| (base)")
        print(header)
        for l in 0..<k {
            let share = base.absoluteShare { sense, _ in sense == l }
            print(row("sense \(l)", columns.map { $0.attribution.bySense[l] }, share: share))
        }

        if let noun {
            print("\nnoun \(show(tokenizer, noun)) vs context words: sum; share of sum |c| (base)")
            print(header)
            let splits = columns.map { $0.attribution.split(at: [noun]) }
            let nounShare = base.absoluteShare { base.ids[$1] == noun }
            print(row("noun", splits.map { $0.noun.reduce(0, +) }, share: nounShare))
            print(row("context", splits.map { $0.context.reduce(0, +) }, share: 1 - nounShare))
        }
    }
}
