import Foundation

/// A before/after table: one row per (suite, metric), one column per variant, with deltas vs base.
public enum SummaryTable {
    public typealias Row = (variant: String, suites: [(suite: String, metrics: [(String, Double)])])
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
                let values = rows.map { value($0, s.suite, m) }
                var line = [s.suite, m] + values.map { $0.map(fmt) ?? "-" }
                for v in values.dropFirst() {
                    line.append(v.flatMap { v in values[0].map { fmtSigned(v - $0) } } ?? "-")
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
            for s in r.suites where !suites.contains(where: { $0.suite == s.suite }) { suites.append((s.suite, s.metrics.map(\.0))) }
        }
        return suites
    }

    static func value(_ r: Row, _ suite: String, _ metric: String) -> Double? {
        r.suites.first { $0.suite == suite }?.metrics.first { $0.0 == metric }?.1
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
                    let v = value(r, s.suite, m), b = value(base, s.suite, m)
                    line += [v.map(fmt) ?? "-", v.flatMap { v in b.map { fmtSigned(v - $0) } } ?? "-"]
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
}

extension SummaryTable {
    /// The table of a run: headline metrics of every suite, one column per variant.
    public static func render(_ variants: [VariantResults]) -> String {
        render(variants.map { v in (v.variant, v.suites.map { s in (s.suiteName, s.headlineValues) }) })
    }
}
