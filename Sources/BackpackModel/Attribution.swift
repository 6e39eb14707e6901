import Foundation

// The exact decomposition of a Backpack's prediction into (sense, position) pairs. The logits
// at position i are E o_i with o_i = sum_l sum_j alpha[l, i, j] C(x_j)_l and no final
// normalisation, so the contrast between two next tokens a and b is exactly
//   logit(a) - logit(b) = log p(a) - log p(b)
//                       = sum_l sum_j alpha[l, i, j] (E_a - E_b) . C(x_j)_l        (BACKPACK.md)
// one number per (sense l, position j <= i). E is the output embedding (the tied token
// embedding, or the checkpoint's own lm_head), C the sense vectors with word-level edits applied.

/// The contributions of every (sense, position) pair to logit(a) - logit(b) at one position.
public struct SenseAttribution: Sendable, Codable, Equatable {
    public let ids: [Int]
    /// The predicting position i (the last one: the next token after the text).
    public let position: Int
    public let a: Int
    public let b: Int
    /// contributions[l][j] = alpha[l, i, j] (E_a - E_b) . C(x_j)_l   (k, n); zero for j > i.
    public let contributions: [[Double]]
    /// logit(a) - logit(b) at position i as the forward pass computed it (float32 logits).
    public let logitDifference: Double

    /// sum over (l, j) of the contributions: equals `logitDifference` up to float32 rounding.
    public var total: Double { contributions.reduce(0) { $0 + $1.reduce(0, +) } }

    /// Per position j: sum over senses  (n).
    public var byPosition: [Double] {
        ids.indices.map { j in contributions.reduce(0) { $0 + $1[j] } }
    }

    /// Per sense l: sum over positions  (k).
    public var bySense: [Double] { contributions.map { $0.reduce(0, +) } }

    /// The contributions summed over the positions holding one of `tokens` (the noun) and over
    /// the other positions (its context), per sense  (k each).
    public func split(at tokens: Set<Int>) -> (noun: [Double], context: [Double]) {
        var noun = [Double](repeating: 0, count: contributions.count), context = noun
        for (l, row) in contributions.enumerated() {
            for (j, c) in row.enumerated() {
                if tokens.contains(ids[j]) { noun[l] += c } else { context[l] += c }
            }
        }
        return (noun, context)
    }

    /// Share of the absolute mass: |c| / sum over every (l, j) of |c|; the shares of a partition
    /// of the pairs add up to 1, whatever the signs (a signed fraction of the total does not:
    /// contributions of opposite sign make it exceed 1).
    public var absoluteMass: Double { contributions.reduce(0) { $0 + $1.reduce(0) { $0 + abs($1) } } }

    /// The share of the absolute mass carried by the pairs (sense l, position j) that `include`
    /// selects (0 when every contribution is 0).
    public func absoluteShare(_ include: (_ sense: Int, _ position: Int) -> Bool) -> Double {
        let mass = absoluteMass
        guard mass > 0 else { return 0 }
        var selected = 0.0
        for (l, row) in contributions.enumerated() { for (j, c) in row.enumerated() where include(l, j) { selected += abs(c) } }
        return selected / mass
    }
}

extension LanguageModel {
    /// The attribution of logit(a) - logit(b) at the last position of each sequence (the next
    /// token after it). Refused for plain GPT-2, whose logits are no sum over senses.
    public func attributions(batch: [[Int]], a: Int, b: Int) throws -> [SenseAttribution] {
        guard isBackpack else {
            throw ModelError(file: "attribution", reason: "a plain GPT-2 has no senses to attribute its logits to; expected a Backpack model")
        }
        return try attributions(contextualize(batch), a: a, b: b)
    }

    public func attribution(_ ids: [Int], a: Int, b: Int) throws -> SenseAttribution {
        try attributions(batch: [ids], a: a, b: b)[0]
    }

    /// The attribution over a contextualization computed by this model or one whose
    /// contextualization it shares (the base model of a sense edit): the edit's senses, the
    /// base model's alpha.
    public func attributions(_ context: Contextualization, a: Int, b: Int) throws -> [SenseAttribution] {
        guard isBackpack else {
            throw ModelError(file: "attribution", reason: "a plain GPT-2 has no senses to attribute its logits to; expected a Backpack model")
        }
        let V = config.vocabSize
        for t in [a, b] where t < 0 || t >= V {
            throw ModelError(file: "attribution", reason: "token id \(t) is out of range (vocab_size \(V))")
        }
        let outputs = try self.outputs(context, options: ForwardOptions(logits: .last, senses: true, contextualization: true))
        let diff = zip(embeddingRow(a), embeddingRow(b)).map { Double($0) - Double($1) }   // E_a - E_b  (d)
        return outputs.map { out in
            Self.attribution(out, diff: diff, senses: config.senses, width: config.nEmbd, a: a, b: b, vocabulary: V)
        }
    }

    /// alpha (k, n, n), C (k, n, d) -> contributions (k, n) at the last row.
    static func attribution(_ out: ForwardOutput, diff: [Double], senses k: Int, width d: Int, a: Int, b: Int,
                            vocabulary V: Int) -> SenseAttribution {
        let n = out.ids.count, i = n - 1
        let alpha = out.contextualization!, C = out.senses!              // asked for above
        var contributions = [[Double]](repeating: [Double](repeating: 0, count: n), count: k)
        for l in 0..<k {
            for j in 0...i {
                let weight = Double(alpha[(l * n + i) * n + j])
                var projection = 0.0                                     // (E_a - E_b) . C(x_j)_l
                let base = (l * n + j) * d
                for e in 0..<d { projection += diff[e] * Double(C[base + e]) }
                contributions[l][j] = weight * projection
            }
        }
        let row = out.logits(at: i, vocabulary: V)!
        let difference = Double(row[row.startIndex + a]) - Double(row[row.startIndex + b])
        return SenseAttribution(ids: out.ids, position: i, a: a, b: b, contributions: contributions, logitDifference: difference)
    }
}

extension VariantSet {
    /// Every variant's attribution of the last position of each sequence, [variant][sequence]:
    /// one contextualization per group of variants that share it (sense edits use the base's).
    public func attributions(_ batch: [[Int]], a: Int, b: Int) throws -> [[SenseAttribution]] {
        var results = [[SenseAttribution]](repeating: [], count: models.count)
        for l in models.indices where leader[l] == l {
            let context = try models[l].contextualize(batch)
            for m in models.indices where leader[m] == l { results[m] = try models[m].attributions(context, a: a, b: b) }
        }
        return results
    }
}
