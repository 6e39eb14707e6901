import Foundation

/// A before/after table: one row per (suite, metric), one column per variant, with deltas vs base.
public enum SummaryTable {
    public typealias Row = (variant: String, suites: [(suite: String, metrics: [(String, Double)])])
    /// Up to this many variants, one column each; more (a sweep), one row each.
    public static let maxColumns = 4

    public static func render(_ rows: [Row]) -> String {
        guard let base = rows.first else { return "" }
        if rows.count > maxColumns { return renderLong(rows) }
        var header = ["suite", "metric"] + rows.map(\.variant)
        if rows.count > 1 { header += rows.dropFirst().map { "Δ " + $0.variant } }
        var table: [[String]] = [header]
        for (si, s) in base.suites.enumerated() {
            for (mi, m) in s.metrics.enumerated() {
                var line = [s.suite, m.0]
                var values: [Double?] = []
                for r in rows {
                    let v = si < r.suites.count && mi < r.suites[si].metrics.count ? r.suites[si].metrics[mi].1 : nil
                    values.append(v); line.append(v.map(fmt) ?? "-")
                }
                for v in values.dropFirst() { line.append(v.map { fmtSigned($0 - m.1) } ?? "-") }
                table.append(line)
            }
        }
        return layout(table, textColumns: 2)
    }

    /// One row per variant: each (suite, metric) and its change vs base.
    static func renderLong(_ rows: [Row]) -> String {
        guard let base = rows.first else { return "" }
        var header = ["variant"]
        for s in base.suites { for m in s.metrics { header += ["\(s.suite) \(m.0)", "Δ"] } }
        var table: [[String]] = [header]
        for r in rows {
            var line = [r.variant]
            for (si, s) in base.suites.enumerated() {
                for (mi, m) in s.metrics.enumerated() {
                    let v = si < r.suites.count && mi < r.suites[si].metrics.count ? r.suites[si].metrics[mi].1 : nil
                    line += [v.map(fmt) ?? "-", v.map { fmtSigned($0 - m.1) } ?? "-"]
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
