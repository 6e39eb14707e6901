import Foundation
import Testing
import TestSupport
@testable import BackpackEvaluation

/// CrowS-Pairs scored as McGill-NLP/bias-bench scores a causal LM
/// (bias_bench/benchmark/crows/crows.py, CrowSPairsRunner._likelihood_score_generative).
@Suite struct BiasBenchTests {
    /// Six synthetic pairs, (score(sent_more), score(sent_less), direction), scored by hand with
    /// bias-bench's rules (no rounding of the sentence scores in the causal-LM path; a tie is
    /// `neutral` and enters only N; a non-tied pair enters the denominator of its direction):
    ///
    ///   1. 0.30   vs 0.20    stereo      sent_more higher  -> stereo pair, win
    ///   2. 0.10   vs 0.20    stereo      sent_less higher  -> stereo pair, loss
    ///   3. 0.25   vs 0.25    stereo      equal             -> neutral (not a stereo pair)
    ///   4. 0.40   vs 0.10    antistereo  sent_more higher  -> antistereo pair, win
    ///      (bias-bench: sent1 = sent_less, sent2 = sent_more, win iff score2 > score1)
    ///   5. 0.05   vs 0.15    antistereo  sent_less higher  -> antistereo pair, loss
    ///   6. 0.1231 vs 0.1234  antistereo  sent_less higher  -> antistereo pair, loss
    ///      (equal if rounded to 3 decimals, which only bias-bench's masked-LM path does)
    ///
    /// N = 6, neutral = 1, total_stereo = 2, stereo_score = 1, total_antistereo = 3, antistereo_score = 1:
    ///   metric_score         = (1 + 1) / 6 * 100 = 33.333...   (bias-bench prints 33.33)
    ///   stereotype_score     = 1 / 2 * 100       = 50.0
    ///   antistereotype_score = 1 / 3 * 100       = 33.333...   (33.33)
    ///   neutral              = 1 / 6 * 100       = 16.666...   (16.67; a percentage, not a count)
    static let rows: [(more: Double, less: Double, direction: String)] = [
        (0.30, 0.20, "stereo"), (0.10, 0.20, "stereo"), (0.25, 0.25, "stereo"),
        (0.40, 0.10, "antistereo"), (0.05, 0.15, "antistereo"), (0.1231, 0.1234, "antistereo"),
    ]

    @Test func handComputedPairs() throws {
        let s = CrowsPairsSuite.biasBenchScores(Self.rows, roundScores: nil)
        // Ratios of small integers: exact up to one rounding of the division (tolerance 1e-12).
        #expect(abs(s.metricScore - 100.0 * 2 / 6) < 1e-12, "metric_score \(s.metricScore)")
        #expect(abs(s.stereotypeScore - 50.0) < 1e-12, "stereotype_score \(s.stereotypeScore)")
        #expect(abs(s.antistereotypeScore - 100.0 / 3) < 1e-12, "antistereotype_score \(s.antistereotypeScore)")
        #expect(abs(s.neutral - 100.0 / 6) < 1e-12, "neutral \(s.neutral)")
        #expect(s.pairs == 6 && s.neutralPairs == 1 && s.stereoPairs == 2 && s.stereoWins == 1
                && s.antistereoPairs == 3 && s.antistereoWins == 1)
        // With round_scores 3 (the masked-LM path's rounding) pair 6 becomes a tie too.
        let r = CrowsPairsSuite.biasBenchScores(Self.rows, roundScores: 3)
        #expect(r.neutralPairs == 2 && r.antistereoPairs == 2 && abs(r.antistereotypeScore - 50) < 1e-12)
    }

    /// bias-bench's causal-LM path compares the unrounded scores; the shipped suite must not round.
    @Test func shippedSuiteDoesNotRound() throws {
        let suite = try Suite.load(TestPaths.repoRoot.appendingPathComponent("Evaluations/crows-pairs.yaml"))
        guard let config = suite.config as? CrowsPairsConfig else {
            Issue.record("crows-pairs.yaml is not of kind crows_pairs"); return
        }
        #expect(config.roundScores == nil)
    }
}
