import BackpackModel
import BackpackResults
import BackpackTokenizer
import Foundation
import Testing
import TestSupport
@testable import BackpackEvaluation

/// Intervals and paired tests (Bootstrap) against a bootstrap written here from the stored
/// per-prompt datasets, on the demo model with an edit (sense 10 of the profession nouns
/// scaled to 0, as the paper's remove-sense edit).
@Suite struct BootstrapTests {
    static let evaluations = TestPaths.repoRoot.appendingPathComponent("Evaluations")

    /// Base and one edited variant of the demo model on pronoun-bias and pronoun-retention.
    static func demoResults(bootstrap: BootstrapSettings?) throws -> [VariantResults] {
        let base = try ModelDirectory(TestPaths.demoModel).load()
        let tokenizer = try GPT2Tokenizer.load(from: TestPaths.demoModel)
        let suites = try ["pronoun-bias", "pronoun-retention"].map {
            try Suite.resolve($0, evaluationsDirectory: evaluations).prepare(tokenizer: tokenizer, config: base.config,
                                                                               locations: DataLocations(dataDirectory: TestPaths.data))
        }
        let bias = try #require(suites[0] as? PronounBiasSuite)
        let ids = bias.keptNouns.map { tokenizer.encode(" " + $0)[0] }
        let d = base.config.nEmbd
        var overrides: [Int: [Float]] = [:]
        for (id, v) in base.senseVectors(ids) { var w = v; for j in 0..<d { w[10 * d + j] = 0 }; overrides[id] = w }
        let edited = Variant(name: "remove10", model: base.withSenseOverrides(overrides), editText: "x", editSHA256: "y")
        var results = try EvaluationRunner.run(suites: suites, variants: [Variant(name: "base", model: base), edited], bootstrap: bootstrap)
        // The paired tests, as eval stores them once every result is there.
        for p in Bootstrap.pairedDifferences(results) {
            let v = try #require(results.firstIndex { $0.variant == p.variant })
            let s = try #require(results[v].suites.firstIndex { $0.suiteName == p.suite })
            for a in p.attributes { results[v].suites[s].set(a.name, a.value) }
        }
        return results
    }

    // The independent bootstrap: resample nouns, take every prompt of each drawn noun, mean over
    // the prompts; percentile interval by numpy's "linear" rule written out; paired difference
    // on the same draws; p = 2 min(#(d<=0)+1, #(d>=0)+1) / (B+1), capped at 1.
    static func percentile(_ values: [Double], _ q: Double) -> Double {
        let s = values.sorted()
        let pos = q * Double(s.count - 1)
        let i = Int(pos)
        return i + 1 < s.count ? s[i] * (1 - (pos - Double(i))) + s[i + 1] * (pos - Double(i)) : s[i]
    }

    static func meanOverPrompts(_ values: [Double], nouns: [String], draw: [Int], order: [String]) -> Double {
        var total = 0.0, count = 0
        for u in draw {
            for (i, n) in nouns.enumerated() where n == order[u] { total += values[i]; count += 1 }
        }
        return total / Double(count)
    }

    func doubles(_ r: SuiteResult, _ name: String) throws -> [Double] {
        guard case .doubles(let d)? = r.dataset(name) else { throw SuiteError(file: r.suiteName, reason: "no dataset \(name)") }
        return d
    }
    func strings(_ r: SuiteResult, _ name: String) throws -> [String] {
        guard case .strings(let d)? = r.dataset(name) else { throw SuiteError(file: r.suiteName, reason: "no dataset \(name)") }
        return d
    }

    @Test func intervalsAndPairedTestsMatchAnIndependentBootstrap() throws {
        let settings = BootstrapSettings(resamples: 400, seed: 7)
        let results = try Self.demoResults(bootstrap: settings)
        for (suite, metric, series) in [("pronoun-bias", "bias", "ratio"), ("pronoun-retention", "mean_log_ratio", "log_ratio")] {
            let base = try #require(results[0].suites.first { $0.suiteName == suite })
            let edit = try #require(results[1].suites.first { $0.suiteName == suite })
            let nouns = try strings(base, "prompt_nouns")
            var order: [String] = []
            for n in nouns where !order.contains(n) { order.append(n) }
            let draws = Bootstrap.resamples(n: order.count, count: settings.resamples, seed: settings.seed)
            #expect(draws.count == 400 && draws.allSatisfy { $0.count == order.count && $0.allSatisfy { (0..<order.count).contains($0) } })
            let vb = try doubles(base, series), ve = try doubles(edit, series)
            let sb = draws.map { Self.meanOverPrompts(vb, nouns: nouns, draw: $0, order: order) }
            let se = draws.map { Self.meanOverPrompts(ve, nouns: nouns, draw: $0, order: order) }
            let diff = zip(se, sb).map { $0 - $1 }
            // Sums in another order than the library's per-unit sums: equal to rounding.
            let tol = 1e-10
            for (r, s) in [(base, sb), (edit, se)] {
                let low = try #require(r[metric + "_ci_low"]?.doubleValue), high = try #require(r[metric + "_ci_high"]?.doubleValue)
                #expect(abs(low - Self.percentile(s, 0.025)) < tol, "\(suite) \(metric) low")
                #expect(abs(high - Self.percentile(s, 0.975)) < tol, "\(suite) \(metric) high")
                let point = try #require(r[metric]?.doubleValue)
                #expect(low <= point && point <= high)
                #expect(r["ci_unit"] == .string("noun") && r["ci_resamples"] == .int(400) && r["ci_seed"] == .int(7))
            }
            #expect(base[metric + "_diff_p"] == nil, "base is not compared with itself")
            let dl = try #require(edit[metric + "_diff_ci_low"]?.doubleValue), dh = try #require(edit[metric + "_diff_ci_high"]?.doubleValue)
            #expect(abs(dl - Self.percentile(diff, 0.025)) < tol && abs(dh - Self.percentile(diff, 0.975)) < tol)
            // M_diff_p is the sign-flip test of the per-noun differences of the summed values: an
            // independent Monte Carlo with other random signs (xorshift) agrees within 4 standard
            // errors of the two estimates.
            let du = order.map { n in nouns.indices.filter { nouns[$0] == n }.reduce(0.0) { $0 + ve[$1] - vb[$1] } }
            var x: UInt64 = 88_172_645_463_325_252, hits = 0
            let draws2 = 20_000, observed = abs(du.reduce(0, +))
            for _ in 0..<draws2 {
                var t = 0.0
                for d in du { x ^= x << 13; x ^= x >> 7; x ^= x << 17; t += (x >> 32) & 1 == 1 ? d : -d }
                if abs(t) >= observed - 1e-9 { hits += 1 }
            }
            let independent = Double(hits + 1) / Double(draws2 + 1)
            let got = try #require(edit[metric + "_diff_p"]?.doubleValue)
            let stdErr = (max(independent * (1 - independent), 1e-4) * (1.0 / 10_000 + 1.0 / Double(draws2))).squareRoot()
            #expect(abs(got - independent) <= 4 * stdErr, "\(suite) \(metric): p \(got) vs independent \(independent)")
            // Up to 16 nouns, every sign vector is enumerated.
            let exact = order.count <= 16
            #expect(edit[metric + "_test"] == .string(exact ? "sign_flip_exact" : "sign_flip_monte_carlo"), "\(suite): \(order.count) nouns")
            #expect(edit[metric + "_test_resamples"] == .int(exact ? 1 << order.count : 10_000))
            // One edited variant: the family is one p-value, so both corrections leave it as it is.
            #expect(edit[metric + "_diff_p_holm"]?.doubleValue == got && edit[metric + "_diff_q"]?.doubleValue == got)
        }
    }

    /// The sign-flip test, exact for few units (every sign vector by hand), and the corrections
    /// against values worked out by hand from their definitions (statsmodels' multipletests
    /// gives the same: Holm [0.04, 0.09, 0.09, 0.09], BH [0.04, 0.0533, 0.0533, 0.09] for the p below).
    @Test func signFlipAndCorrections() {
        // d = (1, 2, 3): T = 6; the 8 sign vectors give |T*| in {6, 4, 2, 0, 0, 2, 4, 6}: 2 of 8 reach 6.
        let exact = Bootstrap.signFlipP([1, 2, 3], seed: 1)
        #expect(exact.p == 0.25 && exact.test == .signFlipExact && exact.count == 8)
        #expect(Bootstrap.signFlipP([0, 0, 0], seed: 1).p == 1)
        // 20 units all positive: only the all-plus and all-minus vectors reach |T|, p = 2 / 2^20,
        // below what 10^4 Monte Carlo draws can show: (0 + 1) / (10^4 + 1).
        let mc = Bootstrap.signFlipP([Double](repeating: 1, count: 20), seed: 3)
        #expect(mc.test == .signFlipMonteCarlo && mc.count == 10_000 && mc.p == 1.0 / 10_001)
        let p = [0.01, 0.04, 0.03, 0.09]
        #expect(zip(Bootstrap.holm(p), [0.04, 0.09, 0.09, 0.09]).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(zip(Bootstrap.benjaminiHochberg(p), [0.04, 0.16 / 3, 0.16 / 3, 0.09]).allSatisfy { abs($0 - $1) < 1e-12 })
        let withNaN = Bootstrap.holm([0.02, .nan, 0.5])
        #expect(withNaN[0] == 0.04 && withNaN[1].isNaN && withNaN[2] == 0.5)
    }

    /// The Monte Carlo sign-flip test sums eight resamples at once; each sum must be the one a
    /// scalar loop over the same draws makes (resample r: the next ceil(n / 64) words of the
    /// generator, unit u flipped when bit u % 64 of word u / 64 is set), so every p is unchanged.
    /// Units across word boundaries, and resample counts that are not a multiple of 8.
    @Test func signFlipMonteCarloEqualsTheScalarLoop() {
        func scalar(_ d: [Double], resamples: Int, seed: UInt64) -> Double {
            let n = d.count
            let observed = abs(d.reduce(0, +)), margin = 1e-12 * d.reduce(0) { $0 + abs($1) }
            var g = Bootstrap.Generator(state: seed ^ 0x5851_F42D_4C95_7F2D ^ (UInt64(n) &* 0xD1B5_4A32_D192_ED03))
            var hits = 0
            for _ in 0..<resamples {
                var t = 0.0, bits = 0 as UInt64, left = 0
                for u in 0..<n {
                    if left == 0 { bits = g.next(); left = 64 }
                    t += bits & 1 == 1 ? -d[u] : d[u]
                    bits >>= 1; left -= 1
                }
                if abs(t) >= observed - margin { hits += 1 }
            }
            return Double(hits + 1) / Double(resamples + 1)
        }
        var g = Bootstrap.Generator(state: 7)
        for (n, resamples) in [(17, 10_000), (64, 1_003), (65, 997), (130, 2_001), (200, 10_000)] {
            // small differences around a shift, so that p is neither 1 nor its floor
            let d = (0..<n).map { _ in Double(g.below(2_001)) / 1_000 - 0.97 }
            let got = Bootstrap.signFlipP(d, resamples: resamples, seed: UInt64(n))
            let want = scalar(d, resamples: resamples, seed: UInt64(n))
            #expect(got.test == .signFlipMonteCarlo && got.count == resamples)
            #expect(got.p == want, "n = \(n), \(resamples) resamples: p \(got.p), the scalar loop's \(want)")
            #expect(want > 1.0 / Double(resamples + 1) && want < 1, "n = \(n): p \(want) tells nothing")
        }
    }

    /// With its own random draws (a xorshift generator, not the library's), the same bootstrap gives
    /// the same interval up to Monte Carlo error: with B = 4000 both 2.5 / 97.5 % points are within
    /// about 1.5 % of the interval's width of each other (one standard error); 10 % is allowed.
    @Test func agreesWithOtherRandomDraws() throws {
        let results = try Self.demoResults(bootstrap: BootstrapSettings(resamples: 4000, seed: 1))
        let base = try #require(results[0].suites.first { $0.suiteName == "pronoun-bias" })
        let nouns = try strings(base, "prompt_nouns"), ratio = try doubles(base, "ratio")
        var order: [String] = []
        for n in nouns where !order.contains(n) { order.append(n) }
        var x: UInt64 = 0x2545F4914F6CDD1D
        func next() -> Int { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return Int(x % UInt64(order.count)) }
        let stats = (0..<4000).map { _ in Self.meanOverPrompts(ratio, nouns: nouns, draw: (0..<order.count).map { _ in next() }, order: order) }
        let low = try #require(base["bias_ci_low"]?.doubleValue), high = try #require(base["bias_ci_high"]?.doubleValue)
        let width = high - low
        #expect(width > 0)
        #expect(abs(Self.percentile(stats, 0.025) - low) < 0.1 * width && abs(Self.percentile(stats, 0.975) - high) < 0.1 * width,
                "\(Self.percentile(stats, 0.025))...\(Self.percentile(stats, 0.975)) vs \(low)...\(high)")
    }

    @Test func reproducibleWithTheSeed() throws {
        func intervals(_ seed: UInt64) throws -> [Double] {
            let r = try Self.demoResults(bootstrap: BootstrapSettings(resamples: 200, seed: seed))
            return try r.flatMap { v in try v.suites.flatMap { s in
                try s.headline.flatMap { m in [try #require(s[m + "_ci_low"]?.doubleValue), try #require(s[m + "_ci_high"]?.doubleValue)] }
            } }
        }
        let a = try intervals(11), b = try intervals(11), c = try intervals(12)
        #expect(a == b)
        #expect(a != c)
        #expect(Bootstrap.resamples(n: 30, count: 5, seed: 3) == Bootstrap.resamples(n: 30, count: 5, seed: 3))
    }

    @Test func offLeavesTheResultsAsBefore() throws {
        let off = try Self.demoResults(bootstrap: BootstrapSettings(resamples: 0))
        let none = try Self.demoResults(bootstrap: nil)
        for (a, b) in zip(off, none) {
            for (x, y) in zip(a.suites, b.suites) {
                #expect(x.attributes.map(\.name) == y.attributes.map(\.name))
                #expect(!x.attributes.contains { $0.name.hasSuffix("_ci_low") })
            }
        }
    }

    /// The plan's statistic over all units once is the stored aggregate (the unit and the
    /// aggregate agree), for every suite kind that the demo runs.
    @Test func planOfAllUnitsIsTheStoredValue() throws {
        let base = try ModelDirectory(TestPaths.demoModel).load()
        let tokenizer = try GPT2Tokenizer.load(from: TestPaths.demoModel)
        for name in ["pronoun-bias", "pronoun-retention", "winogender", "crows-pairs", "stereoset"] {
            var s = try Suite.resolve(name, evaluationsDirectory: Self.evaluations)
            // CrowS-Pairs and StereoSet cut to their first rows (a copy of the file) to keep the test short.
            let tmp = try TestPaths.temporaryDirectory("plan")
            defer { try? FileManager.default.removeItem(at: tmp) }
            if let extra = ["crows-pairs": "max_pairs: 100", "stereoset": "max_examples: 150"][name] {
                let url = tmp.appendingPathComponent("\(name).yaml")
                try (try String(contentsOf: s.file, encoding: .utf8) + "\n" + extra + "\n").write(to: url, atomically: true, encoding: .utf8)
                s = try Suite.load(url)
            }
            let prepared = try s.prepare(tokenizer: tokenizer, config: base.config, locations: DataLocations(dataDirectory: TestPaths.data))
            let r = try prepared.evaluate(base) { _ in }
            let plan = try #require(ResamplingPlan.make(r), "\(name) has no resampling plan")
            #expect(Set(plan.metrics) == Set(r.headline), "\(name): the plan covers the headline aggregates")
            let all = plan.statistic(Array(0..<plan.unitCount))
            for (m, v) in zip(plan.metrics, all) {
                let stored = try #require(r[m]?.doubleValue)
                #expect(abs(v - stored) <= 1e-9 * max(1, abs(stored)), "\(name) \(m): \(v) vs \(stored)")
            }
        }
    }

    @Test func pValueAndQuantile() {
        #expect(Bootstrap.pValue([Double](repeating: 0, count: 99)) == 1)
        #expect(Bootstrap.pValue([Double](repeating: 1, count: 99)) == 0.02)       // 2 * 1 / 100
        #expect(Bootstrap.quantile(sorted: [1, 2, 3, 4, 5], 0.025) == 1.1)           // numpy.quantile(..., 0.025)
        #expect(abs(Bootstrap.quantile(sorted: [1, 2, 3, 4, 5], 0.975) - 4.9) < 1e-12)
    }
}

/// `backpack eval` stores intervals on every result and the paired tests on every edit, the same
/// whether the run went in one piece or was killed and resumed; `--bootstrap 0` stores none.
@Suite(.serialized) struct BootstrapCLITests {
    @Test func evalStoresIntervalsAndPairedTests() throws {
        let tmp = try TestPaths.temporaryDirectory("bootstrap-cli")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let suite = tmp.appendingPathComponent("pronouns.yaml")
        try TinySuites.pronouns.write(to: suite, atomically: true, encoding: .utf8)
        let edit = TestPaths.repoRoot.appendingPathComponent("Tests/EditingTests/Edits/scale0.yaml").path
        func eval(_ out: String, _ extra: [String]) throws -> BackpackRun {
            try BackpackRun.run(["eval", "--model", TestPaths.tinyModel.path, "--tokenizer", TestPaths.toyTokenizer.path,
                                 "--suite", suite.path, "--edit", edit, "--out", tmp.appendingPathComponent(out).path] + extra)
        }
        let on = try eval("on.h5", ["--bootstrap", "300"])
        try #require(on.status == 0, "\(on.err)")
        // The table shows intervals and the corrected p of the paired test, and says so.
        #expect(on.out.contains(" [") && on.out.contains("q: Benjamini-Hochberg"), "\(on.out)")
        let record = try ResultsFile(opening: tmp.appendingPathComponent("on.h5")).record(try #require(try ResultsFile.runs(in: tmp.appendingPathComponent("on.h5")).last))
        let base = record.variants[0].suites[0], edited = record.variants[1].suites[0]
        #expect(base["ci_resamples"] == .int(300) && base["ci_unit"] == .string("noun") && base["bias_ci_low"] != nil)
        #expect(base["bias_diff_p"] == nil && edited["bias_diff_p"] != nil && edited["bias_diff_ci_low"] != nil)
        // The same numbers from the library on the stored results.
        let again = Bootstrap.pairedDifferences(record.variants)
        #expect(again.count == 1 && again[0].attributes.allSatisfy { edited[$0.name] == $0.value })

        let off = try eval("off.h5", ["--bootstrap", "0"])
        try #require(off.status == 0, "\(off.err)")
        #expect(!off.out.contains("bootstrap interval") && !off.out.contains("Benjamini") && !off.out.contains(" [2."), "\(off.out)")
        let offRecord = try ResultsFile(opening: tmp.appendingPathComponent("off.h5")).record(try #require(try ResultsFile.runs(in: tmp.appendingPathComponent("off.h5")).last))
        #expect(offRecord.variants.allSatisfy { $0.suites.allSatisfy { $0["ci_resamples"] == nil && $0["bias_diff_p"] == nil } })

        let bad = try eval("bad.h5", ["--bootstrap", "-1"])
        #expect(bad.status != 0 && bad.err.contains("--bootstrap"), "\(bad.err)")
    }
}
