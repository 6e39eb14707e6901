import Foundation

/// A before/after table: one row per (suite, metric), one column per variant, with deltas vs base.
/// A value with a bootstrap interval prints as `5.8890 [5.712, 6.05]`, a delta with the paired
/// test's p as `-0.3700 p=0.002`.
public enum SummaryTable {
    /// A headline metric with its 95 % interval and, for a variant other than base, the p of its
    /// paired difference from base (nil: not computed).
    public struct Metric: Sendable {
        public var name: String, value: Double
        public var interval: (low: Double, high: Double)?
        public var diffP: Double?
        /// The difference from base is significant by the chosen correction (marked `*`).
        public var significant = false
        public init(_ name: String, _ value: Double, interval: (low: Double, high: Double)? = nil, diffP: Double? = nil, significant: Bool = false) {
            self.name = name; self.value = value; self.interval = interval; self.diffP = diffP; self.significant = significant
        }
    }
    public typealias Row = (variant: String, suites: [(suite: String, metrics: [Metric])])
    /// Up to this many variants, one column each; more (a sweep), one row each.
    public static let maxColumns = 4

    public static func render(_ rows: [Row]) -> String {
        guard !rows.isEmpty else { return "" }
        if rows.count > maxColumns { return renderLong(rows) }
        var header = ["suite", "metric"] + rows.map(\.variant)
        if rows.count > 1 { header += rows.dropFirst().map { "Δ " + $0.variant } }
        var table: [[String]] = [header]
        let suites = Self.suites(rows)
        for s in suites {
            for m in s.metrics {
                let values = rows.map { metric($0, s.suite, m) }
                var line = [s.suite, m] + values.map { $0.map(fmtCell) ?? "-" }
                for v in values.dropFirst() {
                    line.append(v.flatMap { v in values[0].map { fmtDelta(v, base: $0) } } ?? "-")
                }
                table.append(line)
            }
        }
        return layout(table, textColumns: 2)
    }

    /// Cells are matched by suite and metric name, not position: a shard's run (--shard) holds
    /// other suites for different variants, the base perhaps none. Suites in order of first appearance.
    static func suites(_ rows: [Row]) -> [(suite: String, metrics: [String])] {
        var suites: [(suite: String, metrics: [String])] = []
        for r in rows {
            for s in r.suites where !suites.contains(where: { $0.suite == s.suite }) { suites.append((s.suite, s.metrics.map(\.name))) }
        }
        return suites
    }

    static func metric(_ r: Row, _ suite: String, _ metric: String) -> Metric? {
        r.suites.first { $0.suite == suite }?.metrics.first { $0.name == metric }
    }

    /// One row per variant: each (suite, metric) and its change vs base.
    static func renderLong(_ rows: [Row]) -> String {
        guard let base = rows.first else { return "" }
        let suites = Self.suites(rows)
        var header = ["variant"]
        for s in suites { for m in s.metrics { header += ["\(s.suite) \(m)", "Δ"] } }
        var table: [[String]] = [header]
        for r in rows {
            var line = [r.variant]
            for s in suites {
                for m in s.metrics {
                    let v = metric(r, s.suite, m), b = metric(base, s.suite, m)
                    line += [v.map(fmtCell) ?? "-", v.flatMap { v in b.map { fmtDelta(v, base: $0) } } ?? "-"]
                }
            }
            table.append(line)
        }
        return layout(table, textColumns: 1)
    }

    /// Columns padded to their widest cell: text left-aligned, numbers right-aligned.
    static func layout(_ table: [[String]], textColumns: Int) -> String {
        guard let header = table.first else { return "" }
        let widths = header.indices.map { c in table.map { $0[c].count }.max() ?? 0 }
        return table.enumerated().map { i, line in
            let text = line.enumerated().map { c, cell in c < textColumns ? cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[c] - cell.count) + cell }.joined(separator: "  ")
            return i == 0 ? text + "\n" + String(repeating: "-", count: text.count) : text
        }.joined(separator: "\n")
    }
    static func fmt(_ x: Double) -> String { x.isFinite ? String(format: "%.4f", x) : "nan" }
    static func fmtSigned(_ x: Double) -> String { x.isFinite ? String(format: "%+.4f", x) : "nan" }
    static func fmtCell(_ m: Metric) -> String {
        guard let ci = m.interval else { return fmt(m.value) }
        func b(_ x: Double) -> String { x.isFinite ? String(format: "%.4g", x) : "nan" }
        return "\(fmt(m.value)) [\(b(ci.low)), \(b(ci.high))]"
    }
    static func fmtDelta(_ m: Metric, base: Metric) -> String {
        let d = fmtSigned(m.value - base.value)
        guard let p = m.diffP else { return d }
        return d + (p.isFinite ? String(format: " p=%.3f", p) : " p=nan") + (m.significant ? "*" : "")
    }
}

extension SummaryTable {
    /// The wide table of a run (`--wide`): headline metrics of every suite, one column per
    /// variant (one row per variant for a sweep); a Δ whose corrected p is below alpha is marked
    /// `*`, and a legend line says by which correction when the run has paired tests.
    public static func render(_ variants: [VariantResults], significance: Significance = Significance()) -> String {
        let table = render(variants.map { v in (v.variant, v.suites.map { s in (s.suiteName, s.headlineValues.map { name, value in
            Metric(name, value, interval: s.interval(name), diffP: s[name + ResultsKeys.diffPSuffix]?.doubleValue,
                   significant: significance.isSignificant(s, name))
        }) }) })
        let tested = variants.contains { v in v.suites.contains { s in s.headline.contains { s[$0 + ResultsKeys.diffPSuffix] != nil } } }
        return tested ? table + "\n" + significance.legend + "; p: the raw p of the paired test" : table
    }
}
