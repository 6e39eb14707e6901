import BackpackIO
import BackpackModel
import BackpackResults
import BackpackTokenizer
import Foundation
import Testing
import TestSupport
@testable import BackpackEvaluation

/// The winogender suite on the demo model against Tools/winogender-check (the project's PyTorch
/// Backpack scoring <|endoftext|> + each sentence), and the pronoun-retention suite's numbers
/// against its own per-prompt datasets. The golden file records the command that made it:
///   python Tools/winogender-check/winogender_check.py --json Tools/winogender-check/golden/demo.json
@Suite struct WinogenderTests {
    static let goldenFile = "Tools/winogender-check/golden/demo.json"
    /// Per-sentence log-likelihood (sum of up to ~20 token log-probabilities): PyTorch float32
    /// logits vs this package's float32 forward, both reduced in Double; the issue's bound.
    static let logLikelihoodTol = 2e-3
    /// Aggregates of those values (gaps, correlations): the same bound, relative to 1.
    static let aggregateTol = 2e-3

    @Test func demoModelMatchesPyTorchReference() throws {
        let root = TestPaths.repoRoot
        let data = try Data(contentsOf: root.appendingPathComponent(Self.goldenFile))
        let golden = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let modelSHA = try FileDigest.sha256(TestPaths.demoModel.appendingPathComponent("model.safetensors"))
        try #require(golden["model_sha256"] as? String == modelSHA,
                     "the golden file was made from another model.safetensors; rerun the command in \(Self.goldenFile)")
        let ids = try #require(golden["sentence_ids"] as? [String])
        let ll = try #require((golden["log_likelihood"] as? [NSNumber])?.map(\.doubleValue))

        let model = try ModelDirectory(TestPaths.demoModel).load()
        let tokenizer = try GPT2Tokenizer.load(from: TestPaths.demoModel)
        let suite = try Suite.resolve("winogender", evaluationsDirectory: root.appendingPathComponent("Evaluations"))
        let prepared = try suite.prepare(tokenizer: tokenizer, config: model.config, locations: DataLocations(dataDirectory: TestPaths.data))
        let r = try prepared.evaluate(model) { _ in }
        guard case .strings(let sids)? = r.dataset("sentence_ids"), case .doubles(let mine)? = r.dataset("log_likelihood") else {
            Issue.record("missing sentence_ids or log_likelihood"); return
        }
        #expect(sids == ids)
        #expect(mine.count == 720)
        let worst = zip(mine, ll).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= Self.logLikelihoodTol, "largest difference \(worst)")
        for key in ["mean_abs_gap", "pct_prefers_male", "mean_gap", "pct_prefers_neutral", "pearson_bls_pct_female",
                    "spearman_bls_pct_female", "pearson_bergsma_pct_female", "spearman_bergsma_pct_female"] {
            let want = try #require((golden[key] as? NSNumber)?.doubleValue)
            let got = try #require(r[key]?.doubleValue)
            // pct_prefers_* count signs: a gap within the tolerance of 0 could flip one triple (1/240 = 0.42 %).
            let tol = key.hasPrefix("pct_") ? 100.0 / 240 + 1e-9 : Self.aggregateTol
            #expect(abs(got - want) <= tol, "\(key): \(got) vs \(want)")
        }
        #expect(r["n_triples"] == .int(240) && r["n_occupations"] == .int(60))
    }

    @Test func retentionAggregatesFromItsPrompts() throws {
        let model = try ModelDirectory(TestPaths.demoModel).load()
        let tokenizer = try GPT2Tokenizer.load(from: TestPaths.demoModel)
        let suite = try Suite.resolve("pronoun-retention", evaluationsDirectory: TestPaths.repoRoot.appendingPathComponent("Evaluations"))
        let prepared = try #require(try suite.prepare(tokenizer: tokenizer, config: model.config) as? PronounRetentionSuite)
        let r = try prepared.evaluate(model) { _ in }
        guard case .doubles(let pHe)? = r.dataset("p_he"), case .doubles(let pShe)? = r.dataset("p_she"),
              case .strings(let nouns)? = r.dataset("prompt_nouns"), case .strings(let kept)? = r.dataset("nouns"),
              case .strings(let expected)? = r.dataset("noun_expected") else { Issue.record("missing datasets"); return }
        #expect(kept.count % 2 == 0 && kept.count >= 10)
        #expect(expected == kept.indices.map { $0 % 2 == 0 ? "he" : "she" })
        #expect(nouns.count == 13 * kept.count)
        let lr = nouns.indices.map { i -> Double in
            let k = kept.firstIndex(of: nouns[i])!
            return expected[k] == "he" ? log(pHe[i] / pShe[i]) : log(pShe[i] / pHe[i])
        }
        let acc = Double(lr.filter { $0 > 0 }.count) / Double(lr.count)
        #expect(r["accuracy"]?.doubleValue == acc)
        #expect(abs((r["mean_log_ratio"]?.doubleValue ?? .nan) - lr.reduce(0, +) / Double(lr.count)) < 1e-9)
        #expect(r.headline == ["accuracy", "mean_log_ratio"])
        // The attribution, as pronoun-bias stores it: per prompt, the noun's senses plus the
        // context are log p(he) - log p(she) (float32 logits: 1e-4).
        let k = model.config.senses
        guard case .doubles(let nounSenses)? = r.dataset(ResultsKeys.attributionNounSenses),
              case .doubles(let context)? = r.dataset(ResultsKeys.attributionContext),
              case .doubles(let perNoun)? = r.dataset(ResultsKeys.nounAttributionSenses) else { Issue.record("no attribution stored"); return }
        #expect(r[ResultsKeys.attributionSenses] == .int(k))
        #expect(nounSenses.count == nouns.count * k && context.count == nouns.count && perNoun.count == kept.count * k)
        var worst = 0.0
        for i in nouns.indices {
            let total: Double = nounSenses[(i * k)..<((i + 1) * k)].reduce(0, +) + context[i]
            let logRatio: Double = log(pHe[i]) - log(pShe[i])
            worst = max(worst, abs(total - logRatio))
        }
        #expect(worst <= 1e-4, "max |noun + context - log p(he)/p(she)| \(worst)")
    }

    @Test func badWinogenderRowsNameTheLine() throws {
        let tmp = try TestPaths.temporaryDirectory("winogender")
        defer { try? FileManager.default.removeItem(at: tmp) }
        try "sentid\tsentence\nnurse.patient.0.male.txt\tThe nurse said he left.\nnurse.patient.0.other.txt\tx\n"
            .write(to: tmp.appendingPathComponent("s.tsv"), atomically: true, encoding: .utf8)
        try "occupation\tbergsma_pct_female\tbls_pct_female\nnurse\t90\t90\n".write(to: tmp.appendingPathComponent("o.tsv"), atomically: true, encoding: .utf8)
        let yaml = "suite: w\nversion: 1\nkind: winogender\ndata_file: s.tsv\noccupation_stats: {data_file: o.tsv}\n"
        try yaml.write(to: tmp.appendingPathComponent("w.yaml"), atomically: true, encoding: .utf8)
        let model = try ModelDirectory(TestPaths.demoModel).load()
        let tokenizer = try GPT2Tokenizer.load(from: TestPaths.demoModel)
        let suite = try Suite.load(tmp.appendingPathComponent("w.yaml"))
        #expect {
            _ = try suite.prepare(tokenizer: tokenizer, config: model.config, locations: DataLocations(dataDirectory: tmp))
        } throws: { error in
            let text = "\(error)"
            return text.contains("s.tsv") && text.contains(":3") && text.contains("occupation.participant.answer")
        }
    }
}
