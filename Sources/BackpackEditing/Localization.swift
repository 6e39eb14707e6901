import BackpackModel
import BackpackPrompts
import BackpackTokenizer
import Foundation

/// Which senses carry a contrast such as he/she: the contribution of sense l of word w to
/// logit(a) - logit(b) is (E_a - E_b) . C(w)_l; senses are ranked by |mean over words|.
public struct LocalizationTable: Sendable, Codable {
    public let a: Int
    public let b: Int
    public let tokens: [Int]
    /// Ranked, most contributing first.
    public let senses: [LocalizedSense]
    /// perWord[w][l] = (E_a - E_b) . C(tokens[w])_l
    public let perWord: [[Double]]
}

public enum Localization {
    public static func rank(model: LanguageModel, tokens: [Int], a: Int, b: Int) -> LocalizationTable {
        let d = model.config.nEmbd, k = model.config.senses
        let ea = model.embeddingRow(a), eb = model.embeddingRow(b)
        let diff = zip(ea, eb).map { Double($0) - Double($1) }
        let vectors = model.senseVectors(tokens)
        var perWord: [[Double]] = []
        for id in tokens {
            let v = vectors[id] ?? [Float](repeating: 0, count: k * d)
            perWord.append((0..<k).map { l in
                var s = 0.0
                for i in 0..<d { s += diff[i] * Double(v[l * d + i]) }
                return s
            })
        }
        return table(perWord: perWord, senses: k, tokens: tokens, a: a, b: b)
    }

    /// Senses ranked by |mean over words| of perWord[w][l] (ties: lower index first).
    static func table(perWord: [[Double]], senses k: Int, tokens: [Int], a: Int, b: Int) -> LocalizationTable {
        let n = Double(max(tokens.count, 1))
        let senses = (0..<k).map { l in
            LocalizedSense(sense: l, mean: perWord.reduce(0) { $0 + $1[l] } / n,
                           meanAbsolute: perWord.reduce(0) { $0 + abs($1[l]) } / n)
        }.sorted { abs($0.mean) != abs($1.mean) ? abs($0.mean) > abs($1.mean) : $0.sense < $1.sense }
        return LocalizationTable(a: a, b: b, tokens: tokens, senses: senses, perWord: perWord)
    }

    /// Which senses separate two groups of words (erase's first and second pair words) along a
    /// contrast: ranked by |mean over `first` - mean over `second`| of (E_a - E_b) . C(w)_l, the
    /// class-mean difference that erasure removes, seen through logit(a) - logit(b). `mean` is that
    /// difference; `meanAbsolute` the mean of |(E_a - E_b) . C(w)_l| over both groups.
    public static func rankSeparation(model: LanguageModel, first: [Int], second: [Int], a: Int, b: Int) -> [LocalizedSense] {
        let one = rank(model: model, tokens: first, a: a, b: b), two = rank(model: model, tokens: second, a: a, b: b)
        let k = model.config.senses
        let all = one.perWord + two.perWord
        let n = Double(max(all.count, 1))
        func mean(_ rows: [[Double]], _ l: Int) -> Double { rows.reduce(0) { $0 + $1[l] } / Double(max(rows.count, 1)) }
        return (0..<k).map { l in
            LocalizedSense(sense: l, mean: mean(one.perWord, l) - mean(two.perWord, l),
                           meanAbsolute: all.reduce(0) { $0 + abs($1[l]) } / n)
        }.sorted { abs($0.mean) != abs($1.mean) ? abs($0.mean) > abs($1.mean) : $0.sense < $1.sense }
    }
}

extension Localization {
    /// The contextual ranking: the contribution of sense l of word w is its attributed share of
    /// log p(a) - log p(b) at the noun's position, averaged over the suite's prompts with w in
    /// place of the placeholder,  mean_p sum_{j: x_j = w} alpha[l, n-1, j] (E_a - E_b) . C(w)_l
    /// (SenseAttribution), so alpha (how much the prediction reads sense l of the noun) counts as
    /// well as the sense's direction. Senses are ranked by |mean over words| as in `rank`.
    public static func rankContextual(model: LanguageModel, tokens: [Int], a: Int, b: Int, suite: PronounSuite,
                                      tokenizer: GPT2Tokenizer) throws -> LocalizationTable {
        let k = model.config.senses
        let prompts = suite.prompts.map { p in tokens.map { suite.ids(prompt: p, word: [$0], tokenizer: tokenizer) } }
        if let long = prompts.joined().first(where: { $0.count > model.config.nPositions }) {
            throw EditError(file: suite.url.path, "a prompt is \(long.count) tokens, longer than n_positions (\(model.config.nPositions))")
        }
        var perWord = [[Double]](repeating: [Double](repeating: 0, count: k), count: tokens.count)
        // Prompt by prompt: one batch holds every word in one template (shared prefixes), and the
        // (k, n, d) sense tensors of a batch stay small.
        for batch in prompts {
            for (w, attribution) in try model.attributions(batch: batch, a: a, b: b).enumerated() {
                let noun = attribution.split(at: [tokens[w]]).noun
                for l in 0..<k { perWord[w][l] += noun[l] / Double(prompts.count) }
            }
        }
        return table(perWord: perWord, senses: k, tokens: tokens, a: a, b: b)
    }
}
