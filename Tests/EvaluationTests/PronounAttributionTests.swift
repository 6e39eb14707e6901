import BackpackModel
import BackpackResults
import BackpackTokenizer
import Foundation
import Testing
import TestSupport
@testable import BackpackEvaluation

/// The pronoun suite stores the exact attribution of every prompt: the noun position's
/// contribution per sense plus the other positions' total is log p(he) - log p(she).
@Suite struct PronounAttributionTests {
    @Test func storedAttributionAddsUpToTheLogRatio() throws {
        let tmp = try TestPaths.temporaryDirectory("pronoun-attribution")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let url = tmp.appendingPathComponent("tiny.yaml")
        try TinySuites.pronouns.write(to: url, atomically: true, encoding: .utf8)
        let base = try ModelDirectory(TestPaths.tinyModel).load()
        let tokenizer = try GPT2Tokenizer.load(from: TestPaths.toyTokenizer)
        let prepared = try #require(try Suite.load(url).prepare(tokenizer: tokenizer, config: base.config) as? PronounBiasSuite)
        // A word-level edit of the first kept noun: sense 1 scaled to 0.
        let noun = prepared.promptNounIDs[0], d = base.config.nEmbd, k = base.config.senses
        var senses = try #require(base.senseVectors([noun])[noun])
        for e in 0..<d { senses[d + e] = 0 }
        let edited = base.withSenseOverrides([noun: senses])
        let results = try prepared.evaluate(VariantSet([base, edited])) { _ in }
        for (v, r) in results.enumerated() {
            guard case .doubles(let pHe)? = r.dataset("p_he"), case .doubles(let pShe)? = r.dataset("p_she"),
                  case .doubles(let nounSenses)? = r.dataset("attribution_noun_senses"),
                  case .doubles(let context)? = r.dataset("attribution_context"),
                  case .doubles(let perNoun)? = r.dataset("noun_attribution_senses"),
                  case .doubles(let perNounContext)? = r.dataset("noun_attribution_context") else {
                Issue.record("missing attribution datasets"); return
            }
            #expect(r["attribution_senses"] == .int(k))
            let P = prepared.prompts.count
            #expect(nounSenses.count == P * k && context.count == P)
            #expect(perNoun.count == prepared.keptNouns.count * k && perNounContext.count == prepared.keptNouns.count)
            var worst = 0.0
            for i in 0..<P {
                let total = nounSenses[(i * k)..<((i + 1) * k)].reduce(0, +) + context[i]
                let logRatio = log(pHe[i]) - log(pShe[i])
                worst = max(worst, abs(total - logRatio))
                if v == 1 && prepared.promptNounIDs[i] == noun { #expect(nounSenses[i * k + 1] == 0) }
            }
            // float32 logits against a float64 sum of float32 terms
            #expect(worst <= 1e-4, "variant \(v): max |sum - log ratio| \(worst)")
            // per noun: the mean over the noun's prompts
            for (n, name) in prepared.keptNouns.enumerated() {
                let idx = prepared.promptNouns.indices.filter { prepared.promptNouns[$0] == name }
                for l in 0..<k {
                    let mean = idx.map { nounSenses[$0 * k + l] }.reduce(0, +) / Double(idx.count)
                    #expect(abs(perNoun[n * k + l] - mean) <= 1e-12)
                }
            }
            print("pronoun attribution, variant \(v): max |noun + context - log p(he)/p(she)| \(worst)")
        }
    }
}
