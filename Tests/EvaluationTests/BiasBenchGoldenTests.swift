import BackpackModel
import BackpackTokenizer
import Foundation
import Testing
import TestSupport
@testable import BackpackEvaluation
import BackpackIO

/// The shipped crows-pairs and stereoset suites on the demo model against reference numbers from
/// Tools/bias-bench-check (bias-bench's causal-LM scoring transcribed onto the PyTorch Backpack).
/// The full suites take ~40 s + ~22 s in a debug build, so the test runs the first 200 pairs and
/// the first 550 StereoSet examples (all 9 bias types, all 4 domains); the golden file records
/// the command that made it:
///   python Tools/bias-bench-check/bias_bench_check.py --max-pairs 200 --max-examples 550 \
///     --per-pair --json Tools/bias-bench-check/golden/demo-200-pairs-550-examples.json
@Suite struct BiasBenchGoldenTests {
    static let goldenFile = "Tools/bias-bench-check/golden/demo-200-pairs-550-examples.json"

    /// Sentence scores: PyTorch float32 logits and softmax vs this package's float32 forward pass
    /// and Double log-softmax; measured agreement 2.7e-6 relative at most. The smallest margin
    /// between a CrowS pair's two scores on the demo model is 2.2e-4 relative, so no comparison
    /// can flip within this tolerance.
    static let scoreRelTol = 1e-5
    /// Aggregates are ratios of the same integer counts (and means of them): equal up to
    /// summation order (numpy's pairwise mean vs a running sum), far below this.
    static let aggregateTol = 1e-9

    func object(_ any: Any?, _ what: String) throws -> [String: Any] {
        guard let d = any as? [String: Any] else { throw SuiteError(file: Self.goldenFile, reason: "\(what): expected an object") }
        return d
    }

    func numbers(_ any: Any?, _ what: String) throws -> [Double] {
        guard let a = any as? [Any] else { throw SuiteError(file: Self.goldenFile, reason: "\(what): expected a list") }
        return try a.map {
            guard let x = $0 as? NSNumber else { throw SuiteError(file: Self.goldenFile, reason: "\(what): expected numbers") }
            return x.doubleValue
        }
    }

    func close(_ a: Double?, _ b: Any?, tol: Double) -> Bool {
        guard let a else { return false }
        guard let b = b as? NSNumber else { return a.isNaN }   // null in the golden: empty denominator
        return abs(a - b.doubleValue) <= tol
    }

    @Test func demoModelMatchesPythonReference() throws {
        let root = TestPaths.repoRoot
        let data = try Data(contentsOf: root.appendingPathComponent(Self.goldenFile))
        let golden = try object(try JSONSerialization.jsonObject(with: data), "top level")
        let modelDir = root.appendingPathComponent("Models/backpack-demo")
        let modelSHA = try FileDigest.combined([modelDir.appendingPathComponent("model.safetensors")])
        try #require(golden["model_sha256"] as? String == modelSHA,
                     "the golden file was made from another model.safetensors; rerun the command in \(Self.goldenFile)")
        let gCrows = try object(golden["crows_pairs"], "crows_pairs"), gStereo = try object(golden["stereoset"], "stereoset")
        let maxPairs = try #require(gCrows["max_pairs"] as? Int), maxExamples = try #require(gStereo["max_examples"] as? Int)

        let model = try ModelDirectory(modelDir).load()
        let tokenizer = try GPT2Tokenizer.load(from: modelDir)
        let tmp = try TestPaths.temporaryDirectory("biasbench")
        defer { try? FileManager.default.removeItem(at: tmp) }
        // The shipped suites, cut to the golden's subset (max_pairs / max_examples keep the first rows).
        func suite(_ name: String, _ extra: String) throws -> Suite {
            let text = try String(contentsOf: root.appendingPathComponent("Evaluations/\(name).yaml"), encoding: .utf8)
            let url = tmp.appendingPathComponent("\(name).yaml")
            try (text + "\n" + extra + "\n").write(to: url, atomically: true, encoding: .utf8)
            return try Suite.load(url)
        }
        let loc = DataLocations(dataDirectory: root.appendingPathComponent("Data"))
        let prepared = try [suite("crows-pairs", "max_pairs: \(maxPairs)"), suite("stereoset", "max_examples: \(maxExamples)")]
            .map { try $0.prepare(tokenizer: tokenizer, config: model.config, locations: loc) }
        let results = try EvaluationRunner.run(suites: prepared, variants: [Variant(name: "base", model: model)])
        let crows = results[0].suites[0], stereo = results[0].suites[1]
        #expect(crows.dataSHA256 == gCrows["data_sha256"] as? String)
        #expect(stereo.dataSHA256 == gStereo["data_sha256"] as? String)

        // CrowS-Pairs: every pair's two sentence scores, then every bias-bench number.
        guard case .doubles(let gmMore)? = crows.dataset("gm_more"), case .doubles(let gmLess)? = crows.dataset("gm_less") else {
            Issue.record("crows-pairs result lacks gm_more / gm_less"); return
        }
        let refMore = try numbers(gCrows["sent_more_scores"], "sent_more_scores"), refLess = try numbers(gCrows["sent_less_scores"], "sent_less_scores")
        try #require(gmMore.count == maxPairs && refMore.count == maxPairs && refLess.count == maxPairs)
        var worst = 0.0
        for i in 0..<maxPairs {
            worst = max(worst, abs(gmMore[i] - refMore[i]) / refMore[i], abs(gmLess[i] - refLess[i]) / refLess[i])
        }
        print("CrowS-Pairs sentence scores: max relative difference to PyTorch \(worst)")
        #expect(worst <= Self.scoreRelTol)

        var blocks: [(prefix: String, ref: [String: Any])] = [("", try object(gCrows["overall"], "overall"))]
        let byType = try object(gCrows["by_bias_type"], "by_bias_type")
        for t in byType.keys.sorted() { blocks.append(("\(t).", try object(byType[t], t))) }
        #expect(crows["bias_types"] == .string(byType.keys.sorted().joined(separator: ",")))
        for (prefix, ref) in blocks {
            let unrounded = try object(ref["unrounded"], "\(prefix)unrounded"), printed = try object(ref["bias_bench"], "\(prefix)bias_bench")
            let counts = try object(ref["counts"], "\(prefix)counts")
            for key in ["metric_score", "stereotype_score", "antistereotype_score", "neutral"] {
                let ours = crows[prefix + key]?.doubleValue
                #expect(close(ours, unrounded[key], tol: Self.aggregateTol), "\(prefix)\(key): \(String(describing: ours)) vs \(String(describing: unrounded[key]))")
                // and bias-bench's printout, round(x, 2), to its last digit
                if let ours, let p = printed[key] as? NSNumber {
                    #expect(abs(ours - p.doubleValue) <= 0.005 + 1e-9, "\(prefix)\(key) printed as \(p)")
                }
            }
            #expect(crows[prefix + "n_pairs"] == .int(counts["N"] as? Int ?? -1), "\(prefix)n_pairs")
            #expect(crows[prefix + "n_neutral"] == .int(counts["neutral"] as? Int ?? -1), "\(prefix)n_neutral")
            #expect(crows[prefix + "n_stereo"] == .int(counts["total_stereo"] as? Int ?? -1), "\(prefix)n_stereo")
            #expect(crows[prefix + "n_antistereo"] == .int(counts["total_antistereo"] as? Int ?? -1), "\(prefix)n_antistereo")
        }

        // StereoSet: every example's three sentence scores, then SS / LMS / ICAT per domain and overall.
        let refScores = try (gStereo["scores"] as? [Any] ?? []).enumerated().map { try numbers($1, "scores[\($0)]") }
        guard case .doubles(let s)? = stereo.dataset("score_stereotype"), case .doubles(let a)? = stereo.dataset("score_anti_stereotype"),
              case .doubles(let u)? = stereo.dataset("score_unrelated") else {
            Issue.record("stereoset result lacks the score datasets"); return
        }
        try #require(refScores.count == maxExamples && s.count == maxExamples)
        worst = 0
        for i in 0..<maxExamples {
            for (ours, ref) in zip([s[i], a[i], u[i]], refScores[i]) { worst = max(worst, abs(ours - ref) / ref) }
        }
        print("StereoSet sentence scores: max relative difference to PyTorch \(worst)")
        #expect(worst <= Self.scoreRelTol)
        let intra = try object(gStereo["intrasentence"], "intrasentence")
        for (domain, refAny) in intra {
            let ref = try object(refAny, domain), prefix = domain == "overall" ? "" : "\(domain)."
            for (key, refKey) in [("ss", "SS Score"), ("lms", "LM Score"), ("icat", "ICAT Score")] {
                let ours = stereo[prefix + key]?.doubleValue
                #expect(close(ours, ref[refKey], tol: Self.aggregateTol), "\(prefix)\(key): \(String(describing: ours)) vs \(String(describing: ref[refKey]))")
            }
            #expect(stereo[prefix + "n_terms"] == .int(ref["terms"] as? Int ?? -1), "\(prefix)n_terms")
            // bias-bench's per-domain Count is 3x the examples (each example appended once per sentence)
            let count = (ref["Count"] as? NSNumber)?.intValue ?? -1
            #expect(stereo[prefix + "n_examples"] == .int(domain == "overall" ? count : count / 3), "\(prefix)n_examples vs Count \(count)")
        }
    }
}
