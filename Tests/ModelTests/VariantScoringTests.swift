import Foundation
import TestSupport
import Testing
@testable import BackpackModel

/// VariantSet.score computes the selected rows' logits `scoredRows` rows at a time, rows of
/// several sequences packed into one product, in buffers that every variant of the call reuses.
/// Each row it hands to the scorer must be the row of the variant's own forward pass
/// (`outputs`: one product per batch), across chunk boundaries and for every selection.
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

    /// Each variant's scored rows, [variant][sequence][row] as flat logits, and its own pass's.
    static func rows(_ set: VariantSet, _ batch: [[Int]], _ selection: LogitSelection) throws -> (shared: [[[Float]]], own: [[[Float]]]) {
        let shared = try set.score(batch, logits: selection) { _, _, row in Array(row) }.map { $0.map { $0.flatMap { $0 } } }
        let own = try set.models.map { model in
            try model.outputs(model.contextualize(batch), options: ForwardOptions(logits: selection)).map(\.logits)
        }
        return (shared, own)
    }

    @Test func lastAndChosenRowsEqualEachVariantsOwnPassBitForBit() throws {
        let (base, edited) = try Self.models(marked: 7)
        let set = VariantSet([base, edited])
        // 300 prompts: the last rows fill one chunk of 256 and part of a second.
        let prompts = Self.batch(count: 300, lengths: 3...12, vocabulary: base.config.vocabSize, marked: 7)
        #expect(prompts.count > VariantSet.scoredRows)
        for selection in [LogitSelection.last, .positions([0, 2])] {
            let (shared, own) = try Self.rows(set, prompts, selection)
            for v in 0..<2 {
                #expect(shared[v].count == prompts.count)
                #expect(shared[v] == own[v], "variant \(v), \(selection): a row differs from the variant's own pass")
            }
            #expect(shared[0] != shared[1], "\(selection): the edit changed no row")
        }
    }

    @Test func everyRowAcrossChunkBoundariesEqualsTheOwnPass() throws {
        let (base, edited) = try Self.models(marked: 7)
        let set = VariantSet([base, edited])
        #expect(set.parent == [nil, 0])                       // the edit updates base's logits
        // 7 sequences of 40 to 64 rows: chunks of 256 start inside a sequence and hold several.
        let texts = Self.batch(count: 7, lengths: 40...64, vocabulary: base.config.vocabSize, marked: 7)
        #expect(texts.reduce(0) { $0 + $1.count } > VariantSet.scoredRows)
        let (shared, own) = try Self.rows(set, texts, .all)
        #expect(shared[0] == own[0], "base: a row differs from its own pass")
        // The edit's rows are base's plus the low-rank update: its own pass up to float32
        // rounding of the logits (|z| of a few units here; 1e-5 is about 100 ulps).
        var largest: Float = 0, changed = 0
        for (x, y) in zip(shared[1], own[1]) {
            for (p, q) in zip(x, y) { largest = max(largest, abs(p - q) / max(1, abs(q))) }
        }
        for (x, y) in zip(shared[1], shared[0]) where x != y { changed += 1 }
        #expect(largest <= 1e-5, "edited: logits differ from its own pass by \(largest) relative")
        #expect(changed > 0, "the edit changed no sequence's logits")
    }
}
