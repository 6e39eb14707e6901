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
    public init(unit: String, unitCount: Int, metrics: [String], statistic: @escaping @Sendable ([Int]) -> [Double]) {
        self.unit = unit; self.unitCount = unitCount; self.metrics = metrics; self.statistic = statistic
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

    /// The paired test of `variant` against `base` (one suite): the same resamples (the settings
    /// stored with their intervals, which must agree) applied to both; per headline aggregate
    /// `M_diff_ci_low`, `M_diff_ci_high`, `M_diff_p`. Empty when either has no intervals or the
    /// two have different units.
    /// Relative size below which a paired difference counts as a tie (float32 resolution).
    public static let tieTolerance = 1e-6

    public static func pairedDifferences(base: SuiteResult, variant: SuiteResult) -> [(name: String, value: Double)] {
        guard let stored = settings(of: variant), settings(of: base) == stored,
              let bp = ResamplingPlan.make(base), let vp = ResamplingPlan.make(variant),
              bp.unitCount == vp.unitCount, bp.metrics == vp.metrics, bp.unit == vp.unit, bp.unitCount > 0 else { return [] }
        let draws = resamples(n: bp.unitCount, count: stored.resamples, seed: stored.seed)
        let sb = draws.map(bp.statistic), sv = draws.map(vp.statistic)
        var out: [(name: String, value: Double)] = []
        for (m, name) in vp.metrics.enumerated() {
            // Differences below the resolution of float32 logits (1e-6 of the statistic's size) are
            // ties, not evidence: the same variant computed in another grouping (a resumed run, a
            // shard) moves a statistic by ~1e-8 relative, which must not turn p = 1 into p = 0.002.
            let scale = sb.reduce(0.0) { max($0, abs($1[m])) }
            let d = zip(sv, sb).map { abs($0[m] - $1[m]) <= Self.tieTolerance * scale ? 0 : $0[m] - $1[m] }
            let ci = interval(d)
            out += [(name + ResultsKeys.diffCILowSuffix, ci.low), (name + ResultsKeys.diffCIHighSuffix, ci.high),
                    (name + ResultsKeys.diffPSuffix, pValue(d))]
        }
        return out
    }

    /// Every variant other than `base` paired with base, suite by suite (the suites both have).
    public static func pairedDifferences(_ variants: [VariantResults]) -> [(variant: String, suite: String, attributes: [(name: String, value: Double)])] {
        guard let base = variants.first(where: { $0.variant == "base" }) else { return [] }
        var out: [(variant: String, suite: String, attributes: [(name: String, value: Double)])] = []
        for v in variants where v.variant != "base" {
            for s in v.suites {
                guard let b = base.suites.first(where: { $0.suiteName == s.suiteName }) else { continue }
                let d = pairedDifferences(base: b, variant: s)
                if !d.isEmpty { out.append((v.variant, s.suiteName, d)) }
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
