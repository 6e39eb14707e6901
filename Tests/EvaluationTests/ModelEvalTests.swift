import BackpackModel
import BackpackModelFolder
import BackpackTokenizer
import BackpackResults
import Foundation
import Testing
import TestSupport
@testable import BackpackEvaluation

/// Suites evaluated on the tiny fixture (vocab 512, toy tokenizer) and on a small random model
/// with GPT-2's tokenizer.
@Suite struct ModelEvalTests {
    static let tinySuite = TinySuites.pronouns

    func write(_ text: String, _ name: String, in dir: URL) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test func pronounProbabilitiesMatchFullForward() throws {
        let tmp = try TestPaths.temporaryDirectory("pronoun")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let model = try ModelDirectory(TestPaths.tinyModel).load()
        let tokenizer = try GPT2Tokenizer.load(from: TestPaths.toyTokenizer)
        let suite = try Suite.load(try write(Self.tinySuite, "tiny.yaml", in: tmp))
        let prepared = try #require(try suite.prepare(tokenizer: tokenizer, config: model.config) as? PronounBiasSuite)
        #expect(prepared.skippedNouns == ["man", "cook"])      // ' man', ' cook' are two toy tokens
        #expect(prepared.keptNouns == ["the", "was", "an"])    // one toy token each, in the suite's order
        let result = try prepared.evaluate(model) { _ in }
        guard case .doubles(let pHe)? = result.dataset("p_he"), case .doubles(let pShe)? = result.dataset("p_she"),
              case .doubles(let ratio)? = result.dataset("ratio"), case .doubles(let nounBias)? = result.dataset("noun_bias") else {
            Issue.record("missing datasets"); return
        }
        let V = model.config.vocabSize
        for (i, ids) in prepared.tokenized.enumerated() {
            let full = try model.forward(ids, options: ForwardOptions(logits: .all))
            let row = Array(full.logits[((ids.count - 1) * V)..<(ids.count * V)])
            let m = row.max() ?? 0
            let z = row.reduce(0.0) { $0 + exp(Double($1 - m)) }
            let he = exp(Double(row[263] - m)) / z, she = exp(Double(row[262] - m)) / z
            // The suite scores the prompts as one batch (other product shapes than this single
            // forward): logits agree to ~1e-6 absolute, so probabilities to ~1e-6 relative; 1e-5 with margin.
            #expect(abs(pHe[i] - he) <= 1e-5 * max(he, 1e-30) + 1e-12)
            #expect(abs(pShe[i] - she) <= 1e-5 * max(she, 1e-30) + 1e-12)
            #expect(abs(ratio[i] - max(he / she, she / he)) <= 1e-5 * ratio[i])
        }
        let bias = try #require(result["bias"]?.doubleValue)
        #expect(abs(bias - ratio.reduce(0, +) / Double(ratio.count)) < 1e-9)
        #expect(nounBias.count == prepared.keptNouns.count)
        #expect(abs(nounBias[0] - ratio[0..<3].reduce(0, +) / 3) < 1e-9)
    }

    @Test func signedNounBiasAndOccupationCorrelation() throws {
        let tmp = try TestPaths.temporaryDirectory("pronoun-stats")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let model = try ModelDirectory(TestPaths.tinyModel).load()
        let tokenizer = try GPT2Tokenizer.load(from: TestPaths.toyTokenizer)
        // 'the' and 'an' have statistics (AN by case; 'was' through no row), 'was' has none
        try "job,percent_women\nthe,10\nAN,80\nnurse,90\n".write(to: tmp.appendingPathComponent("jobs.csv"), atomically: true, encoding: .utf8)
        let text = Self.tinySuite + "\noccupation_stats: {data_file: jobs.csv}\n"
        let suite = try Suite.load(try write(text, "tiny.yaml", in: tmp))
        let prepared = try #require(try suite.prepare(tokenizer: tokenizer, config: model.config, locations: DataLocations(dataDirectory: tmp)) as? PronounBiasSuite)
        let result = try prepared.evaluate(model) { _ in }
        guard case .doubles(let pHe)? = result.dataset("p_he"), case .doubles(let pShe)? = result.dataset("p_she"),
              case .doubles(let signed)? = result.dataset("noun_log_ratio"), case .doubles(let pct)? = result.dataset("noun_pct_women") else {
            Issue.record("missing datasets"); return
        }
        #expect(prepared.keptNouns == ["the", "was", "an"])
        #expect(pct[0] == 10 && pct[1].isNaN && pct[2] == 80)
        #expect(result["n_nouns_with_stats"] == .int(2))
        // per noun: mean over its 3 prompts of log p(he) - log p(she) (tolerance 1e-9, Double sums)
        for n in 0..<3 {
            let want = (3 * n..<3 * n + 3).map { log(pHe[$0]) - log(pShe[$0]) }.reduce(0, +) / 3
            #expect(abs(signed[n] - want) < 1e-9)
        }
        // two points: r and rho are the sign of (signed[2] - signed[0]) * (80 - 10)
        let sign: Double = signed[2] > signed[0] ? 1 : -1
        #expect(abs(try #require(result["pearson_pct_women"]?.doubleValue) - sign) < 1e-12)
        #expect(abs(try #require(result["spearman_pct_women"]?.doubleValue) - sign) < 1e-12)
        // the statistics file is part of the data digest
        let plain = try #require(try Suite.load(try write(Self.tinySuite, "plain.yaml", in: tmp)).prepare(tokenizer: tokenizer, config: model.config) as? PronounBiasSuite)
        #expect(plain.dataSHA256 != prepared.dataSHA256 && plain.percentWomen == nil)
        // a missing file is a clear error naming it
        let bad = try Suite.load(try write(Self.tinySuite + "\noccupation_stats: {data_file: nope.csv}\n", "bad.yaml", in: tmp))
        #expect(throws: SuiteError.self) { try bad.prepare(tokenizer: tokenizer, config: model.config, locations: DataLocations(dataDirectory: tmp)) }
    }

    static func smallRandomModel() throws -> (LanguageModel, GPT2Tokenizer) {
        var config = BackpackConfig.backpackGPT2
        config.nEmbd = 32; config.nLayer = 2; config.nHead = 2; config.numSenses = 4; config.nPositions = 64
        let model = LanguageModel(parameters: RandomInitializer.parameters(config: config, seed: 7))
        return (model, try GPT2Tokenizer.load(from: TestPaths.gpt2Tokenizer))
    }

    @Test func variantResultsDoNotDependOnOtherVariants() throws {
        let (base, tokenizer) = try Self.smallRandomModel()
        let dir = TestPaths.repoRoot.appendingPathComponent("Evaluations")
        let suite = try Suite.resolve("pronoun-fit", evaluationsDirectory: dir)
        let prepared = try suite.prepare(tokenizer: tokenizer, config: base.config)
        // an edit: zero sense 2 of ' nurse' and ' mechanic'
        let ids = [tokenizer.encode(" nurse")[0], tokenizer.encode(" mechanic")[0]]
        let k = base.config.senses, d = base.config.nEmbd
        var overrides: [Int: [Float]] = [:]
        for (id, v) in base.senseVectors(ids) { var w = v; for j in 0..<d { w[2 * d + j] = 0 }; overrides[id] = w }
        #expect(overrides.count == 2 && k == 4)
        let edited = Variant(name: "zero2", model: base.withSenseOverrides(overrides), editText: "x", editSHA256: "y")
        let together = try EvaluationRunner.run(suites: [prepared], variants: [Variant(name: "base", model: base), edited])
        let (fresh, _) = try Self.smallRandomModel()
        var freshOverrides: [Int: [Float]] = [:]
        for (id, v) in fresh.senseVectors(ids) { var w = v; for j in 0..<d { w[2 * d + j] = 0 }; freshOverrides[id] = w }
        let alone = try EvaluationRunner.run(suites: [prepared], variants: [Variant(name: "zero2", model: fresh.withSenseOverrides(freshOverrides))])
        let baseAlone = try EvaluationRunner.run(suites: [prepared], variants: [Variant(name: "base", model: fresh)])
        func values(_ r: SuiteResult) -> [Double] {
            guard case .doubles(let v)? = r.dataset("ratio") else { return [] }
            return v
        }
        #expect(values(together[1].suites[0]) == values(alone[0].suites[0]))
        #expect(values(together[0].suites[0]) == values(baseAlone[0].suites[0]))
        #expect(values(together[0].suites[0]) != values(together[1].suites[0]))
        #expect(prepared.itemCount == 150)   // 5 prompts x the 30 nouns that are one GPT-2 token
    }

    @Test func crowsStereoSetAndPerplexityRunOnSmallModel() throws {
        let (model, tokenizer) = try Self.smallRandomModel()
        let tmp = try TestPaths.temporaryDirectory("small")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let dir = TestPaths.repoRoot.appendingPathComponent("Evaluations")
        let crowsText = try String(contentsOf: dir.appendingPathComponent("crows-pairs.yaml"), encoding: .utf8) + "max_pairs: 20\n"
        // (a copy with max_pairs written into a temp Evaluations/ folder ; the data come from the repository's Data/ via dataDirectory)
        let evals = tmp.appendingPathComponent("Evaluations")
        try FileManager.default.createDirectory(at: evals, withIntermediateDirectories: true)
        let crows = try Suite.load(try write(crowsText, "crows.yaml", in: evals))
        let stereoText = try String(contentsOf: dir.appendingPathComponent("stereoset.yaml"), encoding: .utf8) + "max_examples: 12\n"
        let stereo = try Suite.load(try write(stereoText, "stereo.yaml", in: evals))
        let ppl = try Suite.load(try write("suite: p\nversion: 1\nkind: perplexity\ntext: \"The cat sat on the mat. It was a sunny day in the park.\"\nmax_length: 8\nstride: 4\n", "p.yaml", in: evals))
        let loc = DataLocations(dataDirectory: TestPaths.data)
        let results = try EvaluationRunner.run(suites: [crows, stereo, ppl].map { try $0.prepare(tokenizer: tokenizer, config: model.config, locations: loc) },
                                               variants: [Variant(name: "base", model: model)])
        let c = results[0].suites[0], s = results[0].suites[1], p = results[0].suites[2]
        #expect(c["n_pairs"] == .int(20))
        let score = try #require(c["metric_score"]?.doubleValue)
        #expect(score >= 0 && score <= 100)
        #expect((try #require(s["lms"]?.doubleValue)) >= 0)
        let ss = try #require(s["ss"]?.doubleValue), lms = try #require(s["lms"]?.doubleValue)
        #expect(abs(try #require(s["icat"]?.doubleValue) - lms * min(ss, 100 - ss) / 50) < 1e-9)
        // perplexity: every token scored exactly once; windows agree with one full pass
        let ids = [tokenizer.endOfTextID ?? 0] + tokenizer.encode("The cat sat on the mat. It was a sunny day in the park.")
        #expect(p["n_tokens"] == .int(ids.count - 1))
        let tokenPPL = try #require(p["token_perplexity"]?.doubleValue)
        #expect(tokenPPL > 1 && tokenPPL.isFinite)
        let bpb = try #require(p["bits_per_byte"]?.doubleValue), nll = try #require(p["nll_sum"]?.doubleValue)
        #expect(abs(bpb - nll / (Double("The cat sat on the mat. It was a sunny day in the park.".utf8.count) * log(2))) < 1e-12)
    }
}
