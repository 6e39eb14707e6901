import BackpackResults
import Foundation

// Uncertainty of every headline aggregate (docs/EVALUATION.md, "Intervals and paired tests"):
// a 95 % percentile bootstrap over the suite's independent units, and for each variant other than
// base the same resamples applied to base and the variant (paired), giving an interval for the
// difference and a two-sided p-value. Everything is computed from a result's stored per-item
// datasets (ResamplingPlan.make), so a result read back from a file is resampled exactly as the
// one just computed: intervals when a result is computed, paired tests once base and the
// variants are all stored (eval, merge).

/// How many resamples and from which seed (`backpack eval --bootstrap N`; 0 = off).
public struct BootstrapSettings: Sendable, Equatable {
    public var resamples: Int
    public var seed: UInt64
    public static let defaultResamples = 1000
    public static let defaultSeed: UInt64 = 20230709
    public init(resamples: Int = BootstrapSettings.defaultResamples, seed: UInt64 = BootstrapSettings.defaultSeed) {
        self.resamples = resamples; self.seed = seed
    }
}

/// A suite's headline aggregates as a function of a multiset of its independent units (nouns,
/// occupations, pairs, examples, documents): `statistic(all units once)` is the stored value.
public struct ResamplingPlan: Sendable {
    public var unit: String
    public var unitCount: Int
    /// Headline aggregate names, in the order `statistic` returns them.
    public var metrics: [String]
    public var statistic: @Sendable ([Int]) -> [Double]
    /// The headline metrics that are a mean over the units' items, or a monotone function of one
    /// whose denominator is the same for every variant (a perplexity): per unit, the sum of its
    /// items' values. The paired test of such a metric is a sign-flip permutation test of the
    /// per-unit differences (Bootstrap.signFlipP); the others keep the paired bootstrap.
    public var unitSums: [String: [Double]]
    public init(unit: String, unitCount: Int, metrics: [String], unitSums: [String: [Double]] = [:],
                statistic: @escaping @Sendable ([Int]) -> [Double]) {
        self.unit = unit; self.unitCount = unitCount; self.metrics = metrics; self.unitSums = unitSums; self.statistic = statistic
    }
}

public enum Bootstrap {
    /// SplitMix64 (Steele et al. 2014): the same stream on every platform, for a given seed.
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        /// Uniform in 0..<n (Lemire's multiply-shift; the bias is below 2^-50 for any n here).
        mutating func below(_ n: Int) -> Int { Int(next().multipliedFullWidth(by: UInt64(n)).high) }
    }

    /// `count` resamples of `n` unit indices drawn with replacement; resample b is the same for
    /// every variant of a suite (the pairing) and depends only on (seed, n, b).
    public static func resamples(n: Int, count: Int, seed: UInt64) -> [[Int]] {
        var g = Generator(state: seed ^ (UInt64(n) &* 0xD1B5_4A32_D192_ED03))
        return (0..<count).map { _ in (0..<n).map { _ in g.below(n) } }
    }

    /// The q-quantile of sorted values with linear interpolation (numpy's default "linear").
    public static func quantile(sorted x: [Double], _ q: Double) -> Double {
        guard !x.isEmpty else { return .nan }
        let h = q * Double(x.count - 1), lo = Int(h.rounded(.down)), hi = min(lo + 1, x.count - 1)
        return x[lo] + (h - Double(lo)) * (x[hi] - x[lo])
    }

    /// 95 % percentile interval of the finite values (a resample can make a correlation 0/0).
    public static func interval(_ values: [Double]) -> (low: Double, high: Double) {
        let s = values.filter(\.isFinite).sorted()
        return (quantile(sorted: s, 0.025), quantile(sorted: s, 0.975))
    }

    /// Two-sided p-value of "no difference" from the paired bootstrap differences d*: twice the
    /// smaller tail share of d* at zero, each counted with the observed sample (+1 / B+1), at most 1.
    public static func pValue(_ differences: [Double]) -> Double {
        let d = differences.filter(\.isFinite)
        guard !d.isEmpty else { return .nan }
        let below = d.filter { $0 <= 0 }.count, above = d.filter { $0 >= 0 }.count
        return min(1, 2 * Double(min(below, above) + 1) / Double(d.count + 1))
    }

    /// Adds `M_ci_low`, `M_ci_high` for every headline aggregate `M` of the result, and
    /// `ci_unit`, `ci_resamples`, `ci_seed`; nothing when its kind has no plan or B = 0. Depends
    /// only on the result and the settings (so a shard computes what an unsharded run does).
    public static func addIntervals(_ r: inout SuiteResult, settings: BootstrapSettings) {
        guard settings.resamples > 0, let plan = ResamplingPlan.make(r), plan.unitCount > 0 else { return }
        let s = resamples(n: plan.unitCount, count: settings.resamples, seed: settings.seed).map(plan.statistic)
        r.set(ResultsKeys.ciUnit, plan.unit)
        r.set(ResultsKeys.ciResamples, settings.resamples)
        r.set(ResultsKeys.ciSeed, Int(truncatingIfNeeded: settings.seed))
        for (m, name) in plan.metrics.enumerated() {
            let ci = interval(s.map { $0[m] })
            r.set(name + ResultsKeys.ciLowSuffix, ci.low)
            r.set(name + ResultsKeys.ciHighSuffix, ci.high)
        }
    }

    /// The settings a result's intervals were made with (nil: none).
    static func settings(of r: SuiteResult) -> BootstrapSettings? {
        guard case .int(let b)? = r[ResultsKeys.ciResamples], case .int(let seed)? = r[ResultsKeys.ciSeed], b > 0 else { return nil }
        return BootstrapSettings(resamples: b, seed: UInt64(truncatingIfNeeded: seed))
    }

    /// Relative size below which a paired difference counts as a tie (float32 resolution).
    public static let tieTolerance = 1e-6
    /// Resamples of a Monte Carlo test (sign flips, or the paired bootstrap of a metric that is not
    /// a mean over units): at least this many, so that a p-value can be as small as 1e-4 and
    /// survive a correction over a run's variants.
    public static let testResamples = 10_000
    /// Sign-flip tests enumerate all 2^n sign vectors when there are at most this many.
    public static let exactLimit = 100_000

    /// Which test made a p-value (stored as `M_test`).
    public enum Test: String, Sendable {
        case signFlipExact = "sign_flip_exact"
        case signFlipMonteCarlo = "sign_flip_monte_carlo"
        case pairedBootstrap = "paired_bootstrap"
    }

    /// Two-sided sign-flip permutation test of "the mean per-unit difference is 0": T = Σ_u d_u
    /// against T* = Σ_u ε_u d_u, ε_u = ±1 equally likely, independent. Exact (all 2^n vectors, the
    /// share with |T*| >= |T|) when 2^n <= `exactLimit`; otherwise `resamples` random vectors from
    /// `seed`, p = (1 + #{|T*| >= |T|}) / (resamples + 1). |T*| >= |T| is judged with a margin of
    /// 1e-12 Σ|d_u|, so that sums of the same terms in another order count as equal.
    public static func signFlipP(_ d: [Double], resamples: Int = testResamples, seed: UInt64) -> (p: Double, test: Test, count: Int) {
        let n = d.count
        let observed = abs(d.reduce(0, +)), margin = 1e-12 * d.reduce(0) { $0 + abs($1) }
        if n <= 16 && (1 << n) <= exactLimit {
            var hits = 0
            for mask in 0..<(1 << n) {
                var t = 0.0
                for u in 0..<n { t += mask & (1 << u) != 0 ? -d[u] : d[u] }
                if abs(t) >= observed - margin { hits += 1 }
            }
            return (Double(hits) / Double(1 << n), .signFlipExact, 1 << n)
        }
        // Resample r takes the next ceil(n / 64) words of the generator; unit u's sign is bit u % 64
        // of word u / 64 (1: flipped). Eight resamples are summed at once, one per lane, each in
        // unit order with its sign set by flipping the sign bit (exact): every T* is the sum a
        // scalar loop makes, bit for bit, without its unpredictable branch per unit (13 ms of a
        // perplexity variant's 4 metrics at 200 documents, a third of a sweep point's cost).
        var g = Generator(state: seed ^ 0x5851_F42D_4C95_7F2D ^ (UInt64(n) &* 0xD1B5_4A32_D192_ED03))
        let words = (n + 63) / 64, lanes = 8
        var signs = [SIMD8<UInt64>](repeating: .zero, count: words)   // word w of each lane's resample
        let patterns = d.map { SIMD8<UInt64>(repeating: $0.bitPattern) }
        let one = SIMD8<UInt64>(repeating: 1)
        var hits = 0, done = 0
        while done < resamples {
            let m = min(lanes, resamples - done)
            for l in 0..<lanes {
                for w in 0..<words { signs[w][l] = l < m ? g.next() : 0 }
            }
            var t = SIMD8<Double>(repeating: 0)
            for u in 0..<n {
                let flip = ((signs[u >> 6] &>> UInt64(u & 63)) & one) &<< 63
                t += unsafeBitCast(patterns[u] ^ flip, to: SIMD8<Double>.self)
            }
            for l in 0..<m where abs(t[l]) >= observed - margin { hits += 1 }
            done += m
        }
        return (Double(hits + 1) / Double(resamples + 1), .signFlipMonteCarlo, resamples)
    }

    /// The paired test of `variant` against `base` (one suite), from the resamples their intervals
    /// were made with (the settings stored with them, which must agree): per headline aggregate
    /// `M_diff_ci_low`, `M_diff_ci_high` (percentile interval of M(variant) - M(base) over the
    /// same bootstrap draws), `M_diff_p` and `M_test` (which test made it): a sign-flip test of the
    /// per-unit differences for a metric that is a mean over units (`ResamplingPlan.unitSums`),
    /// else the paired bootstrap with at least `testResamples` draws. Empty when either has no
    /// intervals or the two have different units.
    public static func pairedDifferences(base: SuiteResult, variant: SuiteResult) -> [(name: String, value: ResultScalar)] {
        guard let stored = settings(of: variant), settings(of: base) == stored,
              let bp = ResamplingPlan.make(base), let vp = ResamplingPlan.make(variant),
              bp.unitCount == vp.unitCount, bp.metrics == vp.metrics, bp.unit == vp.unit, bp.unitCount > 0 else { return [] }
        // The first `stored.resamples` draws are the intervals'; a bootstrap test draws on to `testResamples`.
        let needsMore = vp.metrics.contains { vp.unitSums[$0] == nil || bp.unitSums[$0] == nil }
        let testCount = needsMore ? max(testResamples, stored.resamples) : stored.resamples
        let draws = resamples(n: bp.unitCount, count: testCount, seed: stored.seed)
        let sb = draws.map(bp.statistic), sv = draws.map(vp.statistic)
        var out: [(name: String, value: ResultScalar)] = []
        for (m, name) in vp.metrics.enumerated() {
            // Differences below the resolution of float32 logits (1e-6 of the statistic's size) are
            // ties, not evidence: the same variant computed in another grouping (a resumed run, a
            // shard) moves a statistic by ~1e-8 relative, which must not turn p = 1 into p = 0.002.
            let scale = sb.prefix(stored.resamples).reduce(0.0) { max($0, abs($1[m])) }
            let d = zip(sv, sb).map { abs($0[m] - $1[m]) <= Self.tieTolerance * scale ? 0 : $0[m] - $1[m] }
            let ci = interval(Array(d.prefix(stored.resamples)))
            out += [(name + ResultsKeys.diffCILowSuffix, .double(ci.low)), (name + ResultsKeys.diffCIHighSuffix, .double(ci.high))]
            if let ub = bp.unitSums[name], let uv = vp.unitSums[name], ub.count == uv.count {
                let du = zip(uv, ub).map { v, b in abs(v - b) <= Self.tieTolerance * max(abs(v), abs(b)) ? 0 : v - b }
                let t = signFlipP(du, seed: stored.seed)
                out += [(name + ResultsKeys.diffPSuffix, .double(t.p)), (name + ResultsKeys.testSuffix, .string(t.test.rawValue)),
                        (name + ResultsKeys.testResamplesSuffix, .int(t.count))]
            } else {
                out += [(name + ResultsKeys.diffPSuffix, .double(pValue(d))), (name + ResultsKeys.testSuffix, .string(Test.pairedBootstrap.rawValue)),
                        (name + ResultsKeys.testResamplesSuffix, .int(d.count))]
            }
        }
        return out
    }

    /// Holm's step-down adjusted p-values (statsmodels' `multipletests(method="holm")`): with the
    /// m p-values sorted ascending, adj_(i) = max_{j<=i} min(1, (m - j + 1) p_(j)). NaN p-values
    /// are left out of the family and stay NaN.
    public static func holm(_ p: [Double]) -> [Double] {
        let idx = p.indices.filter { !p[$0].isNaN }.sorted { p[$0] < p[$1] }
        var out = [Double](repeating: .nan, count: p.count), running = 0.0
        for (rank, i) in idx.enumerated() {
            running = max(running, min(1, Double(idx.count - rank) * p[i]))
            out[i] = running
        }
        return out
    }

    /// Benjamini-Hochberg q-values (statsmodels' `multipletests(method="fdr_bh")`): with the m
    /// p-values sorted ascending, q_(i) = min_{j>=i} min(1, m / j p_(j)). NaN p-values are left out.
    public static func benjaminiHochberg(_ p: [Double]) -> [Double] {
        let idx = p.indices.filter { !p[$0].isNaN }.sorted { p[$0] < p[$1] }
        var out = [Double](repeating: .nan, count: p.count), running = 1.0
        for rank in idx.indices.reversed() {
            let i = idx[rank]
            running = min(running, min(1, Double(idx.count) / Double(rank + 1) * p[i]))
            out[i] = running
        }
        return out
    }

    /// Every variant other than `base` paired with base, suite by suite (the suites both have);
    /// then, per (suite, metric), the family of the run's edited variants' p-values corrected:
    /// `M_diff_p_holm` and `M_diff_q`.
    public static func pairedDifferences(_ variants: [VariantResults]) -> [(variant: String, suite: String, attributes: [(name: String, value: ResultScalar)])] {
        guard let base = variants.first(where: { $0.variant == "base" }) else { return [] }
        var out: [(variant: String, suite: String, attributes: [(name: String, value: ResultScalar)])] = []
        for v in variants where v.variant != "base" {
            for s in v.suites {
                guard let b = base.suites.first(where: { $0.suiteName == s.suiteName }) else { continue }
                let d = pairedDifferences(base: b, variant: s)
                if !d.isEmpty { out.append((v.variant, s.suiteName, d)) }
            }
        }
        // Families: the p-values of one (suite, metric) across the variants, in first-seen order.
        struct Family: Hashable { var suite: String, metric: String }
        var families: [Family: [(row: Int, p: Double)]] = [:], order: [Family] = []
        for (row, entry) in out.enumerated() {
            for a in entry.attributes where a.name.hasSuffix(ResultsKeys.diffPSuffix) {
                let key = Family(suite: entry.suite, metric: String(a.name.dropLast(ResultsKeys.diffPSuffix.count)))
                if families[key] == nil { order.append(key) }
                families[key, default: []].append((row, a.value.doubleValue ?? .nan))
            }
        }
        for key in order {
            let family = families[key]!
            let holm = holm(family.map(\.p)), bh = benjaminiHochberg(family.map(\.p))
            for (k, member) in family.enumerated() {
                out[member.row].attributes += [(key.metric + ResultsKeys.diffPHolmSuffix, .double(holm[k])),
                                               (key.metric + ResultsKeys.diffQSuffix, .double(bh[k]))]
            }
        }
        return out
    }

    /// Stores the paired tests of run `id` of a results file (eval, before it marks the run
    /// complete; merge, after joining the shards): from the stored per-item datasets and
    /// intervals, so a resumed or merged run gets the same numbers as one run in one piece.
    public static func storePairedDifferences(in url: URL, run id: String, lockTimeout: Double = ResultsFile.defaultLockTimeout) throws {
        let pairs = pairedDifferences(try ResultsFile(opening: url).record(id).variants)
        guard !pairs.isEmpty else { return }
        try ResultsFile.update(url, runID: id, lockTimeout: lockTimeout) { run in
            for p in pairs {
                let g = try run.group(p.variant).group(p.suite)
                for a in p.attributes { try g.setAttribute(a.name, a.value) }
            }
        }
    }
}

// MARK: - Each suite's unit and statistic, from the per-item datasets it stores.

extension SuiteResult {
    /// A per-item dataset by type (nil when absent or of another type), for the kinds' plans.
    public func doubles(_ name: String) -> [Double]? { if case .doubles(let d)? = dataset(name) { return d }; return nil }
    public func integers(_ name: String) -> [Int]? { if case .ints(let d)? = dataset(name) { return d.map(Int.init) }; return nil }
    public func texts(_ name: String) -> [String]? { if case .strings(let d)? = dataset(name) { return d }; return nil }
}

/// Sums of per-item values grouped by unit, so that a resample's mean over items is
/// Σ_u sum_u / Σ_u count_u (every item of a unit comes along with it).
public struct UnitSums: Sendable {
    var sums: [[Double]]      // [series][unit]
    var counts: [Double]      // [unit]
    /// Units in order of first appearance of `keys`.
    public init(keys: [String], series: [[Double]]) {
        var index: [String: Int] = [:]
        for k in keys where index[k] == nil { index[k] = index.count }
        sums = series.map { _ in [Double](repeating: 0, count: index.count) }
        counts = [Double](repeating: 0, count: index.count)
        for (i, k) in keys.enumerated() {
            let u = index[k]!
            counts[u] += 1
            for s in series.indices { sums[s][u] += series[s][i] }
        }
    }
    public var unitCount: Int { counts.count }
    public func means(_ units: [Int]) -> [Double] {
        var n = 0.0, t = [Double](repeating: 0, count: sums.count)
        for u in units { n += counts[u]; for s in sums.indices { t[s] += sums[s][u] } }
        return t.map { $0 / n }
    }
}

extension ResamplingPlan {
    /// The plan of a stored result: its kind's (SuiteKinds.of), built from its per-item datasets
    /// alone; nil for a kind without one.
    public static func make(_ r: SuiteResult) -> ResamplingPlan? {
        SuiteKinds.of(r)?.resamplingPlan(r)
    }
}
