import BackpackModelFolder
import Foundation
import TestSupport
import Testing
@testable import BackpackModel

/// VariantSet.score computes the selected rows' logits `scoredRows` rows at a time, rows of
/// several sequences packed into one product, in buffers that every variant of the call reuses.
/// Each row it hands to the scorer must be the row the variant gets when it runs alone (bit for
/// bit: a run's numbers do not depend on the variants beside it), and the row of its own forward
/// pass (`outputs`), across chunk boundaries and for every selection. Against `outputs` the bar
/// is float32 rounding, not bits: `outputs` multiplies each sequence's rows by E in a product of
/// another shape, and OpenBLAS's rows depend on the product's shape on some CPUs (its AVX2
/// kernels: a row of a 256-row product and of a 59-row one differ in the last bit on this
/// project's Zen 3 machines, with Debian's 0.3.21 and with scipy-openblas32 0.3.34).
@Suite struct VariantScoringTests {
    /// A deterministic batch: `count` sequences of 1 + (0 ..< maxLength) tokens; every third
    /// sequence holds `marked` (so the edit reaches some rows).
    static func batch(count: Int, lengths: ClosedRange<Int>, vocabulary V: Int, marked: Int) -> [[Int]] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        return (0..<count).map { s in
            var ids = (0..<(lengths.lowerBound + next(lengths.count))).map { _ in next(V) }
            if s % 3 == 0 { ids[next(ids.count)] = marked }
            return ids
        }
    }

    /// The base and a word-level edit of `id` (its senses 0 and 1 halved).
    static func models(marked id: Int) throws -> (LanguageModel, LanguageModel) {
        let base = try ModelDirectory(TestPaths.tinyModel).load()
        let d = base.config.nEmbd
        var vectors = try #require(base.senseVectors([id])[id])
        for e in 0..<(2 * d) { vectors[e] *= 0.5 }
        return (base, base.withSenseOverrides([id: vectors], senses: [id: [0, 1]]))
    }

    /// Each variant's scored rows, [variant][sequence][row] as flat logits: run together, run
    /// alone (a VariantSet of that variant, base as its reference), and its own forward pass.
    static func rows(_ set: VariantSet, _ batch: [[Int]], _ selection: LogitSelection) throws
        -> (shared: [[[Float]]], alone: [[[Float]]], own: [[[Float]]]) {
        func scored(_ set: VariantSet) throws -> [[[Float]]] {
            try set.score(batch, logits: selection) { _, _, row in Array(row) }.map { $0.map { $0.flatMap { $0 } } }
        }
        let shared = try scored(set)
        let alone = try set.models.map { try scored(VariantSet([$0], reference: set.models[0]))[0] }
        let own = try set.models.map { model in
            try model.outputs(model.contextualize(batch), options: ForwardOptions(logits: selection)).map(\.logits)
        }
        return (shared, alone, own)
    }

    /// The largest |x - y| / max(1, |y|) over every row.
    static func largestDifference(_ a: [[Float]], _ b: [[Float]]) -> Float {
        var largest: Float = 0
        for (x, y) in zip(a, b) {
            #expect(x.count == y.count)
            for (p, q) in zip(x, y) { largest = max(largest, abs(p - q) / max(1, abs(q))) }
        }
        return largest
    }

    @Test func lastAndChosenRowsEqualEachVariantAloneAndItsOwnPass() throws {
        let (base, edited) = try Self.models(marked: 7)
        let set = VariantSet([base, edited])
        // 300 prompts: the last rows fill one chunk of 256 and part of a second.
        let prompts = Self.batch(count: 300, lengths: 3...12, vocabulary: base.config.vocabSize, marked: 7)
        #expect(prompts.count > VariantSet.scoredRows)
        for selection in [LogitSelection.last, .positions([0, 2])] {
            let (shared, alone, own) = try Self.rows(set, prompts, selection)
            for v in 0..<2 {
                #expect(shared[v].count == prompts.count)
                #expect(shared[v] == alone[v], "variant \(v), \(selection): a row differs from the variant run alone")
                if selection == .last {
                    // Exact logits (LanguageModel.takesExactLogits): base's rows and the edit's
                    // low-rank update are o E^T accumulated in Double and rounded once, as its own
                    // pass rounds it: every logit within 1 ulp (equal but at ties).
                    var beyond = 0, equal = 0, total = 0
                    for (x, y) in zip(shared[v], own[v]) {
                        for (p, q) in zip(x, y) {
                            total += 1
                            if p == q { equal += 1 } else if abs(p - q) > q.ulp { beyond += 1 }
                        }
                    }
                    #expect(beyond == 0, "variant \(v): \(beyond) logits of the last rows are more than 1 ulp from its own pass")
                    #expect(equal >= total - total / 1000, "variant \(v): only \(equal) of \(total) logits equal its own pass")
                }
                // The same rows of o (senseRows) times E in products of other shapes: float32
                // rounding of |z| up to ~20, a few ulps (2.7e-6 measured on Zen 3); 1e-5 bounds it.
                let largest = Self.largestDifference(shared[v], own[v])
                #expect(largest <= 1e-5, "variant \(v), \(selection): rows differ from its own pass by \(largest) relative")
            }
            #expect(shared[0] != shared[1], "\(selection): the edit changed no row")
        }
    }

    @Test func everyRowAcrossChunkBoundariesEqualsAloneAndTheOwnPass() throws {
        let (base, edited) = try Self.models(marked: 7)
        let set = VariantSet([base, edited])
        #expect(set.parent == [nil, 0])                       // the edit updates base's logits
        // 7 sequences of 40 to 64 rows: chunks of 256 start inside a sequence and hold several.
        let texts = Self.batch(count: 7, lengths: 40...64, vocabulary: base.config.vocabSize, marked: 7)
        #expect(texts.reduce(0) { $0 + $1.count } > VariantSet.scoredRows)
        let (shared, alone, own) = try Self.rows(set, texts, .all)
        #expect(shared[0] == alone[0], "base: a row differs from base run alone")
        #expect(shared[1] == alone[1], "edited: a row differs from the edit run alone (base as its reference)")
        let baseDifference = Self.largestDifference(shared[0], own[0])     // as above: a few ulps
        #expect(baseDifference <= 1e-5, "base: rows differ from its own pass by \(baseDifference) relative")
        // The edit's rows are base's plus the low-rank update: its own pass up to float32
        // rounding of the logits (|z| of a few units here; 1e-5 is about 100 ulps).
        let largest = Self.largestDifference(shared[1], own[1])
        var changed = 0
        for (x, y) in zip(shared[1], shared[0]) where x != y { changed += 1 }
        #expect(largest <= 1e-5, "edited: logits differ from its own pass by \(largest) relative")
        #expect(changed > 0, "the edit changed no sequence's logits")
    }

    /// The rows of o at selected positions (senseRows: summed in Double, rounded once) are the
    /// exact sum of alpha-weighted sense vectors correctly rounded to float32, where the full
    /// product (senseSum, float32) is off by up to a few ulps; the attribution's logit difference
    /// reads the same last row of o as the forward pass.
    @Test func selectedRowsOfOAreTheExactSumCorrectlyRounded() throws {
        let (base, _) = try Self.models(marked: 7)
        let k = base.config.senses, d = base.config.nEmbd
        let prompts = Self.batch(count: 40, lengths: 3...30, vocabulary: base.config.vocabSize, marked: 7)
        let context = try base.contextualize(prompts)
        let table = base.senseVectors(prompts.flatMap { $0 })
        var worstRows = 0.0, worstProduct = 0.0
        for (s, ids) in prompts.enumerated() {
            let n = ids.count, alpha = context.perSequence[s].pointer
            let rows = [0, n / 2, n - 1]
            var mine = [Float](repeating: 0, count: rows.count * d)
            mine.withUnsafeMutableBufferPointer { base.senseRows(ids, alpha: alpha, rows: rows, table: table, into: $0.baseAddress!) }
            let product = base.senseSum(ids, alpha: context.perSequence[s], table: table).o
            for (r, i) in rows.enumerated() {
                for e in 0..<d {
                    // The exact sum: a product of two floats is exact in Double, and k (i + 1)
                    // terms summed in Double carry rounding of about 2^-53 relative each.
                    var exact = 0.0
                    for l in 0..<k { for j in 0...i { exact += Double(alpha[(l * n + i) * n + j]) * Double(table[ids[j]]![l * d + e]) } }
                    let ulp = Double(Float(exact).ulp)
                    worstRows = max(worstRows, abs(Double(mine[r * d + e]) - exact) / ulp)
                    worstProduct = max(worstProduct, abs(Double(product.pointer[i * d + e]) - exact) / ulp)
                }
            }
        }
        #expect(worstRows <= 0.5 + 1e-6, "senseRows is \(worstRows) ulp from the exact sum")
        #expect(worstProduct > worstRows, "the float32 product (\(worstProduct) ulp) was expected to be further off")
        // The attribution's logit(a) - logit(b) is the forward pass's: both are o's last row in
        // Double times E, summed in Double and rounded once (equal but at ties: within 1 ulp).
        let (a, b) = (3, 5)
        let attributions = try base.attributions(context, a: a, b: b)
        let own = try base.outputs(context, options: ForwardOptions(logits: .last))
        var equal = 0
        for (t, out) in zip(attributions, own) {
            let la = out.logits[a], lb = out.logits[b]
            let difference = Double(la) - Double(lb)
            if t.logitDifference == difference { equal += 1 }
            #expect(abs(t.logitDifference - difference) <= Double(la.ulp + lb.ulp),
                    "attribution's logit difference \(t.logitDifference) vs the forward pass's \(difference)")
        }
        #expect(equal >= own.count - 1, "only \(equal) of \(own.count) logit differences equal the forward pass's")
    }

    /// `.rows`: each sequence's own rows (an evaluation's scored rows) are what every row's
    /// scoring gives at those rows, within float32 rounding; the same bits alone and shared; the
    /// word-level edit's rows are updated there too (its own pass within 1e-5). Rows outside a
    /// sequence, or a sequence without rows, are refused with a message naming them.
    @Test func eachSequencesOwnRowsAreItsRowsOfEveryRow() throws {
        let (base, edited) = try Self.models(marked: 7)
        let set = VariantSet([base, edited])
        let texts = Self.batch(count: 9, lengths: 20...64, vocabulary: base.config.vocabSize, marked: 7)
        // a sliding window's scored rows (from a third of the way), a few last rows, one row, none
        let rows = texts.enumerated().map { s, ids -> [Int] in
            switch s % 4 {
            case 0: return Array((ids.count / 3)..<(ids.count - 1))
            case 1: return Array((ids.count - 3)..<(ids.count - 1))
            case 2: return [ids.count - 2]
            default: return []
            }
        }
        let (shared, alone, own) = try Self.rows(set, texts, .rows(rows))
        let every = try Self.rows(set, texts, .all).shared
        let V = base.config.vocabSize
        for v in 0..<2 {
            #expect(shared[v] == alone[v], "variant \(v): .rows differ from the variant run alone")
            let picked = zip(every[v], rows).map { all, r in r.flatMap { Array(all[($0 * V)..<(($0 + 1) * V)]) } }
            let fromEvery = Self.largestDifference(shared[v], picked)
            #expect(fromEvery <= 1e-5, "variant \(v): .rows differ from the same rows of .all by \(fromEvery) relative")
            let fromOwn = Self.largestDifference(shared[v], own[v])
            #expect(fromOwn <= 1e-5, "variant \(v): .rows differ from its own pass by \(fromOwn) relative")
            #expect(zip(shared[v], rows).allSatisfy { $0.count == $1.count * V })
        }
        #expect(set.parent == [nil, 0])
        #expect(shared[0] != shared[1], "the edit changed no selected row")
        #expect(throws: ModelError.self) { try set.score(texts, logits: .rows(rows.map { $0 + [999] })) { _, _, _ in 0 } }
        #expect(throws: ModelError.self) { try set.score(texts, logits: .rows(Array(rows.dropLast()))) { _, _, _ in 0 } }
    }
}
