import BackpackModelFolder
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
    /// base model's alpha. Reads only what the sum needs: alpha's last row (k, n), and per
    /// distinct id its k projections (E_a - E_b) . C(id)_l; no (n, d) sense sum and no product
    /// with the whole vocabulary, so it costs a small fraction of the forward pass it explains.
    public func attributions(_ context: Contextualization, a: Int, b: Int) throws -> [SenseAttribution] {
        guard isBackpack else {
            throw ModelError(file: "attribution", reason: "a plain GPT-2 has no senses to attribute its logits to; expected a Backpack model")
        }
        guard sharesContextualization(with: context.source) else {
            throw ModelError(file: "contextualization", reason: "computed by a model with other trunk weights; run this variant's own contextualize")
        }
        let V = config.vocabSize, k = config.senses, d = config.nEmbd
        for t in [a, b] where t < 0 || t >= V {
            throw ModelError(file: "attribution", reason: "token id \(t) is out of range (vocab_size \(V))")
        }
        let table = senseVectors(context.batch.flatMap { $0 })              // id -> C(id) (k, d)
        let ea = embeddingRow(a), eb = embeddingRow(b)
        let diff = zip(ea, eb).map { Double($0) - Double($1) }               // E_a - E_b  (d)
        var projections: [Int: [Double]] = [:]                               // id -> (E_a - E_b) . C(id)_l  (k)
        for (id, C) in table {
            projections[id] = (0..<k).map { l in
                var p = 0.0
                for e in 0..<d { p += diff[e] * Double(C[l * d + e]) }
                return p
            }
        }
        return context.batch.enumerated().map { s, ids in
            let n = ids.count, i = n - 1
            let alpha = context.perSequence[s].pointer                       // (k, n, n)
            let last = Buffer(k * n)                                          // alpha[:, i, :]  (k, 1, n)
            for l in 0..<k { (last.pointer + l * n).update(from: alpha + (l * n + i) * n, count: n) }
            var contributions = [[Double]](repeating: [Double](repeating: 0, count: n), count: k)
            for l in 0..<k {
                for j in 0...i { contributions[l][j] = Double(last.pointer[l * n + j]) * projections[ids[j]]![l] }
            }
            // logit(a) - logit(b) as the forward pass computes the last row's logits
            // (`exactLogits`): o_i in Double (senseRows), each logit o_i . E_v summed in Double
            // and rounded once to float32.
            var o = [Double](repeating: 0, count: d)                          // (1, d)
            o.withUnsafeMutableBufferPointer { senseRows(ids, alpha: alpha, rows: [i], table: table, into: $0.baseAddress!) }
            var la = 0.0, lb = 0.0
            for e in 0..<d { la += o[e] * Double(ea[e]); lb += o[e] * Double(eb[e]) }
            return SenseAttribution(ids: ids, position: i, a: a, b: b, contributions: contributions,
                                    logitDifference: Double(Float(la)) - Double(Float(lb)))
        }
    }
}

extension VariantSet {
    /// Every variant's attribution of the last position of each sequence, [variant][sequence]:
    /// one contextualization per group of variants that share it (sense edits use the base's).
    public func attributions(_ batch: [[Int]], a: Int, b: Int) throws -> [[SenseAttribution]] {
        var attributions = [[SenseAttribution]](repeating: [], count: models.count)
        for l in models.indices where leader[l] == l {
            try attribute(leader: l, context: models[l].contextualize(batch), a: a, b: b, into: &attributions)
        }
        return attributions
    }

    /// `score` on the last position of every sequence, and every variant's attribution of
    /// logit(a) - logit(b) there, from the same contextualizations (the trunk runs once for both).
    public func scoreAndAttribute<T>(_ batch: [[Int]], a: Int, b: Int,
                                     _ score: (_ sequence: Int, _ position: Int, _ row: UnsafeBufferPointer<Float>) -> T) throws
        -> (scores: [[[T]]], attributions: [[SenseAttribution]]) {
        var attributions = [[SenseAttribution]](repeating: [], count: models.count)
        let scores = try self.score(batch, logits: .last, score) { l, context in
            try attribute(leader: l, context: context, a: a, b: b, into: &attributions)
        }
        return (scores, attributions)
    }

    /// The attributions of the variants that share leader `l`'s contextualization.
    private func attribute(leader l: Int, context: Contextualization, a: Int, b: Int,
                           into attributions: inout [[SenseAttribution]]) throws {
        for m in models.indices where leader[m] == l { attributions[m] = try models[m].attributions(context, a: a, b: b) }
    }
}
