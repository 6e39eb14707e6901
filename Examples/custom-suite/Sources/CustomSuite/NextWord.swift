import BackpackEvaluation
import BackpackModel
import BackpackResults
import Foundation

/// `kind: next_word`: prompts, each with the word expected next. For every variant: `top1`, the
/// share of prompts where the word's first token is the most likely next token, and
/// `mean_log_prob`, the mean log p of that token. The whole kind is this file.
struct NextWord: SuiteKind {
    static let name = "next_word"
    static let keys: Set<String> = ["items"]
    static let schema = ResultSchema(
        metrics: [MetricInfo("top1", "share of prompts whose expected word is the most likely next token", unit: "fraction", ideal: 1, better: .higher),
                  MetricInfo("mean_log_prob", "mean log p of the expected word's first token", unit: "nats", ideal: 0, better: .higher)],
        datasets: ["prompts", "log_prob", "top1"])

    var items: [(prompt: String, word: String)]

    /// `items: [{prompt: TEXT, word: WORD}, ...]`; errors point at the file, line and column.
    init(_ doc: SuiteDocument) throws {
        guard let list = doc.node("items")?.sequence, !list.isEmpty else { throw doc.error(doc.node("items"), "'items' must be a non-empty list") }
        items = try list.map { node in
            guard let m = node.mapping, let p = m["prompt"]?.string, let w = m["word"]?.string else {
                throw doc.error(node, "each item is {prompt: TEXT, word: WORD}")
            }
            return (p, w)
        }
    }

    func prepare(_ suite: Suite, _ c: PreparationContext) throws -> PreparedSuite {
        Prepared(suite: suite, items: items, ids: items.map { c.tokenizer.encode($0.prompt) },
                 targets: items.map { c.tokenizer.encode(" " + $0.word).first ?? 0 })
    }

    /// Unit of the bootstrap: the prompt.
    static func resamplingPlan(_ r: SuiteResult) -> ResamplingPlan? {
        guard let lp = r.doubles("log_prob"), let top = r.integers("top1"), lp.count == top.count else { return nil }
        return ResamplingPlan(unit: "prompt", unitCount: lp.count, metrics: ["top1", "mean_log_prob"]) { draw in
            [draw.reduce(0.0) { $0 + Double(top[$1]) } / Double(draw.count), draw.reduce(0.0) { $0 + lp[$1] } / Double(draw.count)]
        }
    }

    struct Prepared: PreparedSuite {
        let suite: Suite
        let items: [(prompt: String, word: String)]
        let ids: [[Int]], targets: [Int]
        var itemCount: Int { items.count }
        var dataSHA256: String { "" }
        var dataFiles: [DataFileDigest] { [] }

        func evaluate(_ variants: VariantSet, progress: @Sendable (String) -> Void) throws -> [SuiteResult] {
            // The last row of each prompt, for every variant at once (the trunk runs once).
            let rows = try variants.score(ids, logits: .last) { s, _, row -> (Double, Int) in
                var best = 0, maximum = -Float.infinity, sum = 0.0
                for (i, x) in row.enumerated() where x > maximum { maximum = x; best = i }
                for x in row { sum += Foundation.exp(Double(x - maximum)) }
                return (Double(row[targets[s]] - maximum) - Foundation.log(sum), best == targets[s] ? 1 : 0)
            }
            return rows.map { perPrompt in
                let lp = perPrompt.map { $0.last!.0 }, top = perPrompt.map { $0.last!.1 }
                var r = SuiteResult(suiteName: suite.name, suiteVersion: suite.version, dataSHA256: dataSHA256)
                r.set("top1", Double(top.reduce(0, +)) / Double(top.count), headline: true)
                r.set("mean_log_prob", lp.reduce(0, +) / Double(lp.count), headline: true)
                r.add("prompts", strings: items.map(\.prompt))
                r.add("log_prob", lp)
                r.add("top1", ints: top)
                return r
            }
        }
    }
}
