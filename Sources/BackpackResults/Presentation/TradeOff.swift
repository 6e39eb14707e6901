import Foundation

/// The bias / perplexity trade-off of a run's edits: per variant, the bias (the metric with role
/// `bias`, e.g. pronoun-bias's `bias`; lower is better) against the change of the cost (role
/// `cost`, a perplexity) relative to base (lower is better), grouped by edit file (family) so
/// that a sweep's grid points form curves. The suites' kinds declare the roles (`SuiteKind.schema`, BackpackEvaluation).
public struct TradeOff: Sendable {
    public struct Point: Sendable {
        public var variant: String
        /// nil for base; the family and coordinates otherwise (a variant stored without a grid
        /// point is a family of its own).
        public var grid: GridPoint?
        /// Perplexity change relative to base, in percent.
        public var x: Double
        /// Bias.
        public var y: Double
        public var perplexity: Double
        /// 95 % bootstrap intervals of x (as % change vs base's point value) and y; nil when not stored.
        public var xInterval: (low: Double, high: Double)? = nil
        public var yInterval: (low: Double, high: Double)? = nil
        public var family: String { grid?.family ?? variant }
    }
    public var biasSuite: String, biasMetric: String
    public var perplexitySuite: String, perplexityMetric: String
    public var base: Point
    public var edits: [Point]
    public var all: [Point] { [base] + edits }
    /// Indices into `all` of the points on the Pareto frontier, by increasing x.
    public var frontier: [Int] { Self.paretoFrontier(all.map { ($0.x, $0.y) }) }

    /// What the run lacks for a trade-off curve, or the curve's data. `variants` begins with base.
    public static func make(_ variants: [VariantResults]) -> Result<TradeOff, Missing> {
        guard let baseResults = variants.first else { return .failure(Missing(reason: "the run has no variants")) }
        let headline = { (v: VariantResults, suite: String, metric: String) -> Double? in
            v.suites.first { $0.suiteName == suite }?.headlineValues.first { $0.0 == metric }?.1
        }
        let biasSuite = baseResults.suites.lazy.compactMap { s in s.roles[.bias].map { (s.suiteName, $0) } }.first
        let pplSuite = baseResults.suites.lazy.compactMap { s in s.roles[.cost].map { (s.suiteName, $0) } }.first
        var missing: [String] = []
        if biasSuite == nil { missing.append("no pronoun-bias suite (a suite with a bias metric, e.g. --suite pronoun-bias)") }
        if pplSuite == nil { missing.append("no perplexity suite (a suite with a cost metric, e.g. --suite perplexity)") }
        guard let (biasName, biasMetric) = biasSuite, let (pplName, pplMetric) = pplSuite,
              let baseBias = headline(baseResults, biasName, biasMetric),
              let basePPL = headline(baseResults, pplName, pplMetric) else {
            return .failure(Missing(reason: missing.isEmpty ? "base has no bias or perplexity value" : "the run has " + missing.joined(separator: " and ")))
        }
        func point(_ v: VariantResults, grid: GridPoint?) -> Point? {
            guard let b = headline(v, biasName, biasMetric), let p = headline(v, pplName, pplMetric) else { return nil }
            let x = { (q: Double) in 100 * (q - basePPL) / basePPL }
            let pi = v.suites.first { $0.suiteName == pplName }?.interval(pplMetric)
            return Point(variant: v.variant, grid: grid, x: x(p), y: b, perplexity: p,
                         xInterval: pi.map { (x($0.low), x($0.high)) },
                         yInterval: v.suites.first { $0.suiteName == biasName }?.interval(biasMetric))
        }
        guard let base = point(baseResults, grid: nil) else { return .failure(Missing(reason: "base has no bias or perplexity value")) }
        _ = baseBias
        return .success(TradeOff(biasSuite: biasName, biasMetric: biasMetric, perplexitySuite: pplName,
                                 perplexityMetric: pplMetric, base: base, edits: variants.dropFirst().compactMap { point($0, grid: $0.grid) }))
    }

    public struct Missing: Error, Sendable { public var reason: String }

    /// The points no other point dominates (another is at most as high in x and y and lower in
    /// one), by increasing x then y; points with a non-finite coordinate are never on it. Equal
    /// points are all on it.
    public static func paretoFrontier(_ points: [(x: Double, y: Double)]) -> [Int] {
        let finite = points.indices.filter { points[$0].x.isFinite && points[$0].y.isFinite }
        let front = finite.filter { i in
            !finite.contains { j in
                points[j].x <= points[i].x && points[j].y <= points[i].y && (points[j].x < points[i].x || points[j].y < points[i].y)
            }
        }
        return front.sorted { (points[$0].x, points[$0].y) < (points[$1].x, points[$1].y) }
    }

    /// The families in order of first appearance, each with its points (indices into `edits`).
    public var families: [(name: String, points: [Int])] {
        var out: [(name: String, points: [Int])] = []
        for (i, p) in edits.enumerated() {
            if let k = out.firstIndex(where: { $0.name == p.family }) { out[k].points.append(i) } else { out.append((p.family, [i])) }
        }
        return out
    }

    /// For each axis of a family's grid, the lines of points that differ only in that axis, in
    /// axis-value order (numeric when every value is a number, else the order of the grid).
    public func lines(family points: [Int]) -> [(axis: String, line: [Int])] {
        guard let axes = points.first.flatMap({ edits[$0].grid?.axes }), !axes.isEmpty else { return [] }
        var out: [(axis: String, line: [Int])] = []
        for (a, axis) in axes.enumerated() {
            var groups: [[String]: [Int]] = [:], order: [[String]] = []
            for i in points {
                guard let g = edits[i].grid, g.axes == axes else { continue }
                var rest = g.values; rest.remove(at: a)
                if groups[rest] == nil { order.append(rest) }
                groups[rest, default: []].append(i)
            }
            for key in order {
                guard var line = groups[key], line.count > 1 else { continue }
                let numbers = line.map { Double(edits[$0].grid?.values[a] ?? "") }
                if numbers.allSatisfy({ $0 != nil }) {
                    line = zip(line, numbers).sorted { $0.1! < $1.1! }.map(\.0)
                }
                out.append((axis, line))
            }
        }
        return out
    }
}
