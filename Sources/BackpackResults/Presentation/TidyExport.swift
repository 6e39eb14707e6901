import Foundation

/// One row of the tidy export: a headline metric of one suite on one variant of one run, with its
/// interval, its difference from base, the paired test and the metric's metadata
/// (`backpack report --format csv`; LAYOUT.md, "CSV export").
public struct TidyRow: Sendable, Equatable {
    public var run: String
    public var variant: String
    public var editFamily: String
    /// `axis=value;...` for a point of a sweep, "" otherwise.
    public var grid: String
    public var suite: String
    public var kind: String
    public var metric: String
    public var value: Double?
    public var ciLow: Double?, ciHigh: Double?
    /// value(variant) − value(base) of the same run; nil for base or when base lacks the metric.
    public var diff: Double?
    public var diffCILow: Double?, diffCIHigh: Double?
    public var p: Double?, pHolm: Double?, q: Double?
    public var test: String
    public var nUnits: Int?
    public var unit: String
    public var ideal: Double?
    public var better: String
    public var description: String
    /// The bootstrap's unit (`ci_unit`: noun, occupation, pair, ...), what `n_units` counts.
    public var ciUnit: String
}

public enum TidyExport {
    /// The CSV columns, in order.
    public static let columns = ["run", "variant", "edit_family", "grid", "suite", "kind", "metric", "value", "ci_low", "ci_high",
                                 "diff", "diff_ci_low", "diff_ci_high", "p", "p_holm", "q", "test", "n_units", "unit", "ideal",
                                 "better", "description", "ci_unit"]

    /// How many independent units a suite result has (the bootstrap's and the test's unit). The
    /// default reads the count attribute of `ci_unit` (`n_nouns` for `noun`, ...); `backpack
    /// report` passes the count of the kind's resampling plan.
    public typealias UnitCount = @Sendable (SuiteResult) -> Int?
    public static let storedUnitCount: UnitCount = { s in
        guard case .string(let u)? = s[ResultsKeys.ciUnit], case .int(let n)? = s["n_\(u)s"] else { return nil }
        return n
    }

    /// The rows of one run: its kept variants in order, each with the selected metrics.
    public static func rows(_ record: RunRecord, selection: ReportSelection = ReportSelection(),
                            unitCount: UnitCount = storedUnitCount) throws -> [TidyRow] {
        let variants = try selection.variants(of: record)
        let columns = try selection.columns(variants)
        let base = record.variants.first { $0.variant == "base" }
        var out: [TidyRow] = []
        for v in variants {
            let grid = v.grid.map { g in zip(g.axes, g.values).map { "\($0)=\($1)" }.joined(separator: ";") } ?? ""
            for c in columns {
                guard let s = v.suite(c.suite), s.headline.contains(c.metric), let value = s[c.metric]?.doubleValue else { continue }
                let info = s.metric(c.metric)
                func d(_ suffix: String) -> Double? { s[c.metric + suffix]?.doubleValue }
                var diff: Double?
                if v.variant != "base", let b = base?.suite(c.suite)?[c.metric]?.doubleValue { diff = value - b }
                var test = ""
                if case .string(let t)? = s[c.metric + ResultsKeys.testSuffix] { test = t }
                var ciUnit = ""
                if case .string(let u)? = s[ResultsKeys.ciUnit] { ciUnit = u }
                out.append(TidyRow(run: record.id, variant: v.variant, editFamily: v.grid?.family ?? "", grid: grid, suite: c.suite,
                                   kind: s.kind ?? "", metric: c.metric, value: value,
                                   ciLow: d(ResultsKeys.ciLowSuffix), ciHigh: d(ResultsKeys.ciHighSuffix), diff: diff,
                                   diffCILow: d(ResultsKeys.diffCILowSuffix), diffCIHigh: d(ResultsKeys.diffCIHighSuffix),
                                   p: d(ResultsKeys.diffPSuffix), pHolm: d(ResultsKeys.diffPHolmSuffix), q: d(ResultsKeys.diffQSuffix),
                                   test: test, nUnits: unitCount(s), unit: info?.unit ?? "", ideal: info?.ideal,
                                   better: info?.better.rawValue ?? "", description: info?.description ?? "", ciUnit: ciUnit))
            }
        }
        return out
    }

    /// RFC 4180 CSV (CRLF line ends, fields with `,` `"` CR or LF quoted, `"` doubled) of the
    /// rows, with a header. Numbers are Swift's shortest round-tripping form (`0.1`, `1e-05`);
    /// an absent or NaN number is an empty field, infinities `inf` / `-inf` (pandas reads all three).
    public static func csv(_ rows: [TidyRow]) -> String {
        var lines = [columns.map(field).joined(separator: ",")]
        for r in rows {
            let cells: [String] = [r.run, r.variant, r.editFamily, r.grid, r.suite, r.kind, r.metric, number(r.value),
                                   number(r.ciLow), number(r.ciHigh), number(r.diff), number(r.diffCILow), number(r.diffCIHigh),
                                   number(r.p), number(r.pHolm), number(r.q), r.test, r.nUnits.map(String.init) ?? "", r.unit,
                                   number(r.ideal), r.better, r.description, r.ciUnit]
            lines.append(cells.map(field).joined(separator: ","))
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    static func number(_ x: Double?) -> String {
        guard let x, !x.isNaN else { return "" }
        if x.isInfinite { return x > 0 ? "inf" : "-inf" }
        return x.description
    }

    static func field(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF or LF line ends) into rows of
    /// fields; for tests and tools that read the export back.
    public static func parseCSV(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = "", quoted = false, i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            if quoted {
                if c == "\"" {
                    let next = text.index(after: i)
                    if next < text.endIndex && text[next] == "\"" { field.append("\""); i = next } else { quoted = false }
                } else { field.append(c) }
            } else if c == "\"" { quoted = true }
            else if c == "," { row.append(field); field = "" }
            else if c == "\r\n" || c == "\n" || c == "\r" { row.append(field); rows.append(row); row = []; field = "" }
            else { field.append(c) }
            i = text.index(after: i)
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }
}
