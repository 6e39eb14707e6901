import Foundation
import Testing
@testable import BackpackEvaluation

@Suite struct MetricTests {
    @Test func pronounRatioIsSymmetricMaxRatio() {
        #expect(abs(Metrics.pronounRatio(logA: log(0.3), logB: log(0.1)) - 3.0) < 1e-12)
        #expect(abs(Metrics.pronounRatio(logA: log(0.1), logB: log(0.3)) - 3.0) < 1e-12)
        #expect(Metrics.pronounRatio(logA: log(0.2), logB: log(0.2)) == 1.0)
    }

    @Test func logSoftmaxIsStableAndNormalised() {
        let x: [Float] = [1000, 1001, 1002]
        let lp = Metrics.logSoftmax(x)
        #expect(abs(lp.map(exp).reduce(0, +) - 1) < 1e-12)
        // softmax([0,1,2]) = [0.0900306, 0.2447285, 0.6652410]
        #expect(abs(exp(lp[2]) - 0.6652409557748219) < 1e-12)
        #expect(Metrics.logSoftmax(x[...], at: [0]) == [lp[0]])
    }

    @Test func geometricMean() {
        // probabilities 0.5, 0.25, 0.125 -> (1/64)^(1/3) = 0.25
        #expect(abs(Metrics.geometricMean(logProbs: [log(0.5), log(0.25), log(0.125)]) - 0.25) < 1e-12)
        #expect(Metrics.rounded(0.12345, digits: 3) == 0.123)
        #expect(Metrics.rounded(0.12345, digits: nil) == 0.12345)
    }

    @Test func stereoSetScoresAndICAT() {
        // term a: stereo wins 1 of 2; related: (s>u, a>u) counts 3 of 4
        let rows: [(term: String, stereo: Double, anti: Double, unrelated: Double)] = [
            ("a", 0.5, 0.4, 0.1), ("a", 0.2, 0.3, 0.25),
            ("b", 0.5, 0.1, 0.2), ("b", 0.6, 0.2, 0.1),
        ]
        // a: SS 50, LMS 75; b: SS 100, LMS 75  -> SS 75, LMS 75, ICAT = 75 * 25 / 50 = 37.5
        let s = StereoSetSuite.aggregate(rows)
        #expect(s.ss == 75 && s.lms == 75 && s.icat == 37.5 && s.terms == 2 && s.examples == 4)
        #expect(Metrics.icat(lms: 100, ss: 50) == 100)
        #expect(Metrics.icat(lms: 80, ss: 100) == 0)
        let t = Metrics.stereoSetScores(pro: 1, related: 3, total: 2)
        #expect(t.ss == 50 && t.lms == 75)
    }

    @Test func perplexityOnThreeTokens() {
        // three tokens with p = 1/2, 1/4, 1/8: NLL = 6 ln 2; text of 2 words, 6 bytes
        let nll = -(log(0.5) + log(0.25) + log(0.125))
        let p = Metrics.perplexity(nll: nll, tokens: 3, words: 2, bytes: 6)
        #expect(abs(p.tokenPerplexity - 4) < 1e-12)          // exp(6 ln2 / 3) = 2^2
        #expect(abs(p.wordPerplexity - 8) < 1e-12)           // 2^3
        #expect(abs(p.bytePerplexity - 2) < 1e-12)          // 2^1
        #expect(abs(p.bitsPerByte - 1) < 1e-12)              // 6 bits / 6 bytes
    }

    @Test func slidingWindowsScoreEachTokenOnce() {
        let w = PerplexitySuite.windows(count: 10, maxLength: 4, stride: 2)
        var scored: [Int] = []
        for x in w { scored += Array((x.begin + x.from)..<x.end) }
        #expect(scored == Array(1..<10))
        #expect(w.allSatisfy { $0.end - $0.begin <= 4 })
        let one = PerplexitySuite.windows(count: 5, maxLength: 8, stride: 8)
        #expect(one.count == 1 && one[0].from == 1 && one[0].end == 5)
    }

    @Test func passagesSplitOnBlankLines() {
        #expect(PerplexitySuite.passages("a b\nc\n\n\n  d  \n\n\n\ne") == ["a b\nc", "d", "e"])
        // a whitespace-only line separates passages too, as in the demo model's split
        #expect(PerplexitySuite.passages("a\n \t\nb\r\n\r\nc") == ["a", "b", "c"])
    }

    @Test func csvQuotesAndNewlines() throws {
        let rows = try CSV.parse("x,y\n\"a, \"\"b\"\"\",\"c\nd\"\n1,2\n", file: "t.csv")
        #expect(rows.count == 3)
        #expect(rows[1].fields == ["a, \"b\"", "c\nd"])
        #expect(rows[2].line == 4)
        #expect(throws: SuiteError.self) { try CSV.parse("a,\"b\n", file: "t.csv") }
    }
}

@Suite struct CorrelationTests {
    @Test func pearsonByHand() {
        // x = [1,2,3,4], y = [2,4,5,9]: x̄ = 2.5, ȳ = 5; dx = [-1.5,-0.5,0.5,1.5], dy = [-3,-1,0,4]
        // Σdxdy = 11, Σdx² = 5, Σdy² = 26 -> r = 11 / sqrt(130) = 0.964763821238... (tolerance 1e-12)
        let r = Metrics.pearson([1, 2, 3, 4], [2, 4, 5, 9])
        #expect(abs(r - 0.9647638212377322) < 1e-12)
        #expect(abs(Metrics.pearson([1, 2, 3], [3, 2, 1]) + 1) < 1e-12)
        #expect(Metrics.pearson([1, 1, 1], [1, 2, 3]).isNaN)     // a constant side has no correlation
        #expect(Metrics.pearson([1], [2]).isNaN)
    }

    @Test func averageRanksAndSpearmanWithTies() {
        #expect(Metrics.averageRanks([10, 20, 20, 5]) == [2, 3.5, 3.5, 1])
        #expect(Metrics.averageRanks([3, 3, 3]) == [2, 2, 2])
        // x = [1,2,2,3] -> ranks [1,2.5,2.5,4]; y = [1,3,2,4] -> ranks [1,3,2,4]
        // ranks: x̄ = ȳ = 2.5; dx = [-1.5,0,0,1.5], dy = [-1.5,0.5,-0.5,1.5]
        // Σdxdy = 4.5, Σdx² = 4.5, Σdy² = 5 -> rho = 4.5 / sqrt(22.5) = 0.9486832980505138
        // (scipy.stats.spearmanr([1,2,2,3],[1,3,2,4]).statistic = 0.9486832980505138)
        #expect(abs(Metrics.spearman([1, 2, 2, 3], [1, 3, 2, 4]) - 4.5 / 22.5.squareRoot()) < 1e-12)
        // monotone but non-linear: rho = 1, r < 1
        #expect(abs(Metrics.spearman([1, 2, 3, 4], [1, 8, 27, 64]) - 1) < 1e-12)
        #expect(Metrics.pearson([1, 2, 3, 4], [1, 8, 27, 64]) < 0.99)
    }
}
