import Foundation

/// The tables of `backpack report --format table|markdown|latex` (and `eval`'s table): the kept
/// variants × the selected headline metrics, each value with its 95 % interval, each edited
/// variant's Δ (variant − base) marked `*` when the chosen correction's value is below alpha.
public enum ReportTables {
    /// What the table of a run shows.
    public struct Options: Sendable {
        public var selection: ReportSelection
        public var significance: Significance
        /// The terminal table's width limit (characters).
        public var width: Int
        public init(selection: ReportSelection = ReportSelection(), significance: Significance = Significance(), width: Int = 100) {
            self.selection = selection; self.significance = significance; self.width = width
        }
    }

    // MARK: cells

    static func fmt(_ x: Double) -> String { x.isFinite ? String(format: "%.4f", x) : "nan" }
    static func fmtSigned(_ x: Double) -> String { x.isFinite ? String(format: "%+.4f", x) : "nan" }
    static func short(_ x: Double) -> String { x.isFinite ? String(format: "%.4g", x) : "nan" }
    static func pText(_ x: Double) -> String { x.isFinite ? String(format: "%.2g", x) : "nan" }
    static func value(_ s: SuiteResult, _ m: String) -> String {
        guard let v = s[m]?.doubleValue else { return "-" }
        guard let ci = s.interval(m) else { return fmt(v) }
        return "\(fmt(v)) [\(short(ci.low)), \(short(ci.high))]"
    }
    static func delta(_ s: SuiteResult, _ m: String, base: SuiteResult?) -> Double? {
        guard let v = s[m]?.doubleValue, let b = base?[m]?.doubleValue else { return nil }
        return v - b
    }

    /// A row label of the terminal table: a sweep point is indented under its family's row.
    struct Line { var label: String; var variant: VariantResults?; var isBase: Bool }
    static func lines(_ variants: [VariantResults]) -> [Line] {
        var out: [Line] = [], family: String?
        for v in variants {
            if let g = v.grid, g.isSweep {
                if family != g.family { out.append(Line(label: g.family, variant: nil, isBase: false)); family = g.family }
                out.append(Line(label: "  " + zip(g.axes, g.values).map { "\($0)=\($1)" }.joined(separator: ","), variant: v, isBase: false))
            } else {
                family = nil
                out.append(Line(label: v.variant, variant: v, isBase: v.variant == "base"))
            }
        }
        return out
    }

    /// Cuts `s` to `n` characters with `…` in the middle (both ends usually carry the meaning).
    public static func fit(_ s: String, _ n: Int) -> String {
        guard s.count > n, n > 1 else { return s }
        let head = (n - 1) / 2, tail = n - 1 - head
        return String(s.prefix(head)) + "…" + String(s.suffix(tail))
    }

    // MARK: terminal

    /// The table within `options.width` columns: one block per suite, its metrics side by side
    /// as far as they fit (further metrics in further blocks), per metric the value with its
    /// interval, Δ with its mark and the corrected value; sweep points indented under their edit
    /// file. Every line is at most `width` characters.
    public static func terminal(_ record: RunRecord, options: Options = Options()) throws -> String {
        try terminal(record.variants, runID: record.id, options: options)
    }
    public static func terminal(_ all: [VariantResults], runID: String, options: Options = Options()) throws -> String {
        let variants = try options.selection.variants(of: all, runID: runID)
        let columns = try options.selection.columns(variants)
        let base = variants.first { $0.variant == "base" }
        let rows = lines(variants)
        let width = max(options.width, 40)
        var suites: [(suite: String, metrics: [String])] = []
        for c in columns {
            if let i = suites.firstIndex(where: { $0.suite == c.suite }) { suites[i].metrics.append(c.metric) } else { suites.append((c.suite, [c.metric])) }
        }
        let pName = options.significance.correction.valueName
        var out: [String] = []
        for (suite, metrics) in suites {
            // Per metric: three columns (value [interval], Δ, corrected p), right-aligned.
            var groups: [(metric: String, cells: [[String]], widths: [Int])] = []
            let tested = variants.contains { v in metrics.contains { v.suite(suite)?[$0 + ResultsKeys.diffPSuffix] != nil } }
            for m in metrics {
                var cells: [[String]] = [[m, "Δ", tested ? pName : ""]]
                for r in rows {
                    guard let v = r.variant, let s = v.suite(suite) else { cells.append(["", "", ""]); continue }
                    let d = r.isBase ? nil : delta(s, m, base: base?.suite(suite))
                    let mark = options.significance.mark(s, m)
                    let dText = d.map { fmtSigned($0) + (mark.isEmpty ? " " : mark) } ?? ""
                    let p = r.isBase ? nil : options.significance.value(s, m)
                    cells.append([s[m] == nil ? "-" : value(s, m), dText, p.map(pText) ?? ""])
                }
                groups.append((m, cells, (0..<3).map { c in cells.map { $0[c].count }.max() ?? 0 }))
            }
            func groupWidth(_ g: (metric: String, cells: [[String]], widths: [Int])) -> Int { g.widths.reduce(0, +) + 2 * 3 }
            let widest = groups.map(groupWidth).max() ?? 0
            let labelWidth = min(max(rows.map(\.label.count).max() ?? 0, "variant".count), max(12, width - widest))
            // Metrics side by side while the line fits.
            var chunks: [[Int]] = []
            for gi in groups.indices {
                if var last = chunks.last, labelWidth + last.reduce(0, { $0 + groupWidth(groups[$1]) }) + groupWidth(groups[gi]) <= width {
                    last.append(gi); chunks[chunks.count - 1] = last
                } else { chunks.append([gi]) }
            }
            let first = variants.compactMap { $0.suite(suite) }.first
            var title = suite
            if let k = first?.kind { title += "  (kind \(k)" + (first.flatMap { s -> String? in
                if case .string(let u)? = s[ResultsKeys.ciUnit] { return ", unit \(u)" }; return nil } ?? "") + ")" }
            out.append(fit(title, width))
            for m in metrics {
                guard let info = first?.metric(m) else { continue }
                var meta = [info.unit, info.better == .closerToIdeal ? "closer to ideal is better" : "\(info.better.rawValue) is better"]
                if let ideal = info.ideal { meta.append("ideal \(short(ideal))") }
                out.append(fit("  \(m): \(info.description) [\(meta.joined(separator: "; "))]", width))
            }
            for (ci, chunk) in chunks.enumerated() {
                if ci > 0 { out.append("") }
                for (ri, _) in ([Line(label: "variant", variant: nil, isBase: false)] + rows).enumerated() {
                    let label = ri == 0 ? "variant" : rows[ri - 1].label
                    var line = fit(label, labelWidth).padding(toLength: labelWidth, withPad: " ", startingAt: 0)
                    for gi in chunk {
                        let g = groups[gi]
                        for c in 0..<3 {
                            let cell = g.cells[ri][c]
                            line += "  " + String(repeating: " ", count: max(0, g.widths[c] - cell.count)) + cell
                        }
                    }
                    while line.hasSuffix(" ") { line.removeLast() }
                    out.append(line)
                    if ri == 0 { out.append(String(repeating: "-", count: min(width, line.count))) }
                }
            }
            out.append("")
        }
        // The legend names only what the table shows: intervals and tests exist when the run was
        // evaluated with the bootstrap on.
        let suitesShown = variants.flatMap(\.suites)
        let hasIntervals = suitesShown.contains { $0[ResultsKeys.ciResamples] != nil }
        let hasTests = suitesShown.contains { s in s.headline.contains { s[$0 + ResultsKeys.diffPSuffix] != nil } }
        var legend = ["Δ = variant - base"]
        if hasIntervals { legend.append("[low, high]: 95 % bootstrap interval") }
        if hasTests { legend.append("\(pName): \(options.significance.correction.title)") }
        out.append(fit(legend.joined(separator: "; ") + ".", width))
        if hasTests { out.append(fit(options.significance.legend, width)) }
        return out.joined(separator: "\n")
    }

    // MARK: markdown

    static func mdEscape(_ s: String) -> String {
        var t = ""
        for c in s {
            if "\\|*_`<>".contains(c) { t.append("\\") }
            t.append(c)
        }
        return t
    }

    /// A GitHub-flavoured Markdown table: one row per variant, per metric a value column
    /// (`value [low, high]`) and a Δ column (`Δ (q=…)` and `*` when significant), then a legend.
    public static func markdown(_ record: RunRecord, options: Options = Options()) throws -> String {
        try markdown(record.variants, runID: record.id, options: options)
    }
    public static func markdown(_ all: [VariantResults], runID: String, options: Options = Options()) throws -> String {
        let variants = try options.selection.variants(of: all, runID: runID)
        let columns = try options.selection.columns(variants)
        let base = variants.first { $0.variant == "base" }
        let pName = options.significance.correction.valueName
        var header = ["variant"], align = ["---"]
        for c in columns { header += ["\(c.suite).\(c.metric)", "Δ"]; align += ["---:", "---:"] }
        var lines = ["| " + header.map(mdEscape).joined(separator: " | ") + " |", "| " + align.joined(separator: " | ") + " |"]
        for v in variants {
            var cells = [mdEscape(v.variant)]
            for c in columns {
                guard let s = v.suite(c.suite), s[c.metric] != nil else { cells += ["", ""]; continue }
                cells.append(mdEscape(value(s, c.metric)))
                var d = ""
                if v.variant != "base", let x = delta(s, c.metric, base: base?.suite(c.suite)) {
                    d = fmtSigned(x)
                    if let p = options.significance.value(s, c.metric) { d += " (\(pName)=\(pText(p)))" }
                    if options.significance.isSignificant(s, c.metric) { d += "\\*" }
                }
                cells.append(d)
            }
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        lines.append("")
        lines.append("Δ = variant − base; [low, high]: 95 % bootstrap interval; "
                     + mdEscape(options.significance.legend) + ".")
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: LaTeX

    /// Text with LaTeX's special characters escaped.
    public static func latexEscape(_ s: String) -> String {
        var t = ""
        for c in s {
            switch c {
            case "\\": t += "\\textbackslash{}"
            case "&", "%", "$", "#", "_", "{", "}": t += "\\" + String(c)
            case "~": t += "\\textasciitilde{}"
            case "^": t += "\\textasciicircum{}"
            case "<": t += "\\textless{}"
            case ">": t += "\\textgreater{}"
            default: t.append(c)
            }
        }
        return t
    }
    static func texNumber(_ s: String) -> String { s.hasPrefix("-") ? "$-$" + s.dropFirst() : s }

    /// A booktabs table (`\usepackage{booktabs}`): one row per variant, per metric the value with
    /// its interval and Δ, `$^{*}$` when significant; the legend below the table.
    public static func latex(_ record: RunRecord, options: Options = Options()) throws -> String {
        try latex(record.variants, runID: record.id, options: options)
    }
    public static func latex(_ all: [VariantResults], runID: String, options: Options = Options()) throws -> String {
        let variants = try options.selection.variants(of: all, runID: runID)
        let columns = try options.selection.columns(variants)
        let base = variants.first { $0.variant == "base" }
        var lines = ["% backpack report --format latex (run \(latexEscape(runID))); needs \\usepackage{booktabs}",
                     "\\begin{tabular}{l" + String(repeating: "rr", count: columns.count) + "}", "\\toprule"]
        lines.append(" & " + columns.map { "\\multicolumn{2}{c}{\(latexEscape($0.suite)): \(latexEscape($0.metric))}" }.joined(separator: " & ") + " \\\\")
        lines.append(columns.indices.map { "\\cmidrule(lr){\(2 + 2 * $0)-\(3 + 2 * $0)}" }.joined())
        lines.append("variant & " + columns.map { _ in "value [95\\,\\% CI] & $\\Delta$" }.joined(separator: " & ") + " \\\\")
        lines.append("\\midrule")
        for v in variants {
            var cells = [latexEscape(v.variant)]
            for c in columns {
                guard let s = v.suite(c.suite), let x = s[c.metric]?.doubleValue else { cells += ["", ""]; continue }
                var cell = texNumber(fmt(x))
                if let ci = s.interval(c.metric) { cell += " [\(texNumber(short(ci.low))), \(texNumber(short(ci.high)))]" }
                cells.append(cell)
                var d = ""
                if v.variant != "base", let dx = delta(s, c.metric, base: base?.suite(c.suite)) {
                    d = texNumber(fmtSigned(dx)) + (options.significance.isSignificant(s, c.metric) ? "$^{*}$" : "")
                }
                cells.append(d)
            }
            lines.append(cells.joined(separator: " & ") + " \\\\")
        }
        lines += ["\\bottomrule", "\\end{tabular}", "",
                  "{\\footnotesize $\\Delta$ = variant $-$ base; [low, high]: 95\\,\\% bootstrap interval; "
                  + latexEscape(options.significance.legend).replacingOccurrences(of: "* ", with: "$^{*}$ ", options: .anchored) + ".}"]
        return lines.joined(separator: "\n") + "\n"
    }
}
