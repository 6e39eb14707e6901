import BackpackIO
import Foundation

/// What the report shows of a run: provenance, headline metrics, per-noun bias.
struct ReportData {
    struct SuiteData {
        var name: String; var metrics: [(String, Double)]; var nouns: [String]; var nounBias: [Double]
        /// Signed mean log p(he)/p(she) per noun and the share of women (percent, NaN unknown); empty when absent.
        var nounLogRatio: [Double] = []; var nounPctWomen: [Double] = []
        /// (pearson, spearman, n nouns) against the share of women, when the suite had statistics.
        var correlations: (pearson: Double, spearman: Double, n: Int)?
    }
    struct VariantData { var name: String; var editSHA: String; var suites: [SuiteData] }
    var runID: String
    var provenance: [(String, String)]
    var variants: [VariantData]

    init(_ r: RunRecord) {
        runID = r.id
        let p = r.provenance
        provenance = [("created", p.created), ("model_path", p.modelPath), ("model_sha256", p.modelSHA256),
                      ("git_commit", p.gitCommit), ("tool_version", p.toolVersion), ("host", p.host),
                      ("command_line", r.commandLine)].filter { !$0.1.isEmpty }
        variants = r.variants.map { v in
            VariantData(name: v.variant, editSHA: v.editSHA256, suites: v.suites.map { s in
                var nouns: [String] = [], bias: [Double] = []
                if case .strings(let n)? = s.dataset("nouns"), case .doubles(let b)? = s.dataset("noun_bias") { nouns = n; bias = b }
                var d = SuiteData(name: s.suiteName, metrics: s.headlineValues, nouns: nouns, nounBias: bias)
                if case .doubles(let l)? = s.dataset("noun_log_ratio"), l.count == nouns.count { d.nounLogRatio = l }
                if case .doubles(let p)? = s.dataset("noun_pct_women"), p.count == nouns.count { d.nounPctWomen = p }
                if let r = s["pearson_pct_women"]?.doubleValue, let rho = s["spearman_pct_women"]?.doubleValue {
                    var n = 0
                    if case .int(let k)? = s["n_nouns_with_stats"] { n = k }
                    d.correlations = (r, rho, n)
                }
                return d
            })
        }
    }
}

/// A self-contained HTML page of a run: tables and inline SVG charts.
public enum ReportHTML {
    static let colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
    static func f(_ x: Double) -> String { x.isFinite ? String(format: "%.4g", x) : "nan" }

    public static func render(_ record: RunRecord) -> String { render(ReportData(record)) }

    /// The provenance lines shown above the tables.
    public static func provenance(_ record: RunRecord) -> [(String, String)] { ReportData(record).provenance }

    static func render(_ data: ReportData) -> String {
        var body = "<h1>backpack-edit evaluation report</h1>\n<p>Run <code>\(esc(data.runID))</code></p>\n<table class=prov>"
        for (k, v) in data.provenance { body += "<tr><th>\(esc(k))</th><td><code>\(esc(v))</code></td></tr>" }
        body += "</table>\n<h2>Before / after</h2>\n" + table(data)
        // Per-noun bias charts, one per pronoun suite.
        if let base = data.variants.first {
            for s in base.suites where !s.nouns.isEmpty {
                body += "<h2>Per-noun bias: \(esc(s.name))</h2>\n"
                if s.correlations != nil { body += correlationTable(data, suite: s.name) }
                let order = nounOrder(s)
                body += "<div style=\"display:flex;flex-wrap:wrap;gap:1em\">"
                if !s.nounLogRatio.isEmpty { body += signedNounChart(data, suite: s.name, order: order) }
                body += nounChart(data, suite: s.name, order: order) + "</div>\n"
            }
        }
        if data.variants.count > 1 { body += "<h2>Metric deltas vs base (bias gain beside perplexity cost)</h2>\n" + deltaChart(data) }
        return """
            <!DOCTYPE html><html><head><meta charset="utf-8"><title>backpack-edit report \(esc(data.runID))</title>
            <style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}
            td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}.prov td,.prov th{text-align:left}
            td.l{text-align:left}svg text{font-size:11px}</style></head><body>
            \(body)
            </body></html>
            """
    }

    static func table(_ data: ReportData) -> String {
        guard let base = data.variants.first else { return "" }
        var h = "<table><tr><th>suite</th><th>metric</th>" + data.variants.map { "<th>\(esc($0.name))</th>" }.joined()
            + data.variants.dropFirst().map { "<th>Δ \(esc($0.name))</th>" }.joined() + "</tr>"
        for s in base.suites {
            for (m, bv) in s.metrics {
                h += "<tr><td class=l>\(esc(s.name))</td><td class=l>\(esc(m))</td>"
                let vals = data.variants.map { v in v.suites.first { $0.name == s.name }?.metrics.first { $0.0 == m }?.1 }
                h += vals.map { "<td>\($0.map(f) ?? "-")</td>" }.joined()
                h += vals.dropFirst().map { "<td>\($0.map { f($0 - bv) } ?? "-")</td>" }.joined() + "</tr>"
            }
        }
        return h + "</table>"
    }

    /// Nouns with a known share of women first, from fewest to most women; the rest in file order.
    static func nounOrder(_ s: ReportData.SuiteData) -> [String] {
        guard s.nounPctWomen.count == s.nouns.count else { return s.nouns }
        let known = s.nouns.indices.filter { s.nounPctWomen[$0].isFinite }.sorted { s.nounPctWomen[$0] < s.nounPctWomen[$1] }
        return known.map { s.nouns[$0] } + s.nouns.indices.filter { !s.nounPctWomen[$0].isFinite }.map { s.nouns[$0] }
    }

    /// Correlation of the signed per-noun bias with the share of women, one row per variant.
    static func correlationTable(_ data: ReportData, suite: String) -> String {
        var h = "<table><tr><th>variant</th><th>Pearson r (log p(he)/p(she), % women)</th><th>Spearman ρ</th><th>nouns with statistics</th></tr>"
        for v in data.variants {
            guard let c = v.suites.first(where: { $0.name == suite })?.correlations else { continue }
            h += "<tr><td class=l>\(esc(v.name))</td><td>\(f(c.pearson))</td><td>\(f(c.spearman))</td><td>\(c.n)</td></tr>"
        }
        return h + "</table><p>Negative: nouns whose occupations employ more women lean more to “she”, as the statistics do. An edit that removes the model's gender association moves both toward 0.</p>\n"
    }

    /// Signed bias per noun: log p(he)/p(she) averaged over its prompts; right leans "he", left "she".
    static func signedNounChart(_ data: ReportData, suite: String, order nouns: [String]) -> String {
        let base = data.variants.first?.suites.first { $0.name == suite }
        let series = data.variants.map { v -> [Double] in
            let s = v.suites.first { $0.name == suite }
            return nouns.map { n in s.flatMap { s in s.nouns.firstIndex(of: n).flatMap { $0 < s.nounLogRatio.count ? s.nounLogRatio[$0] : nil } } ?? .nan }
        }
        let maxAbs = max(1e-9, series.flatMap { $0 }.filter(\.isFinite).map(abs).max() ?? 1)
        let rowH = 6 + 5 * data.variants.count, left = 150, half = 200
        let height = nouns.count * rowH + 40
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(left + 2 * half + 10)\" height=\"\(height)\">"
        for (i, n) in nouns.enumerated() {
            let y = 20 + i * rowH
            var label = n
            if let b = base, let k = b.nouns.firstIndex(of: n), k < b.nounPctWomen.count, b.nounPctWomen[k].isFinite { label += " (\(f(b.nounPctWomen[k])) %)" }
            svg += "<text x=\"\(left - 5)\" y=\"\(y + rowH / 2 + 3)\" text-anchor=\"end\">\(esc(label))</text>"
            for (vi, s) in series.enumerated() where s[i].isFinite {
                let w = Int(Double(half) * abs(s[i]) / maxAbs)
                let x = s[i] < 0 ? left + half - w : left + half
                svg += "<rect x=\"\(x)\" y=\"\(y + vi * 5)\" width=\"\(max(w, 1))\" height=\"4\" fill=\"\(colors[vi % colors.count])\"><title>\(esc(data.variants[vi].name)) \(esc(n)): \(f(s[i]))</title></rect>"
            }
        }
        svg += "<line x1=\"\(left + half)\" y1=\"15\" x2=\"\(left + half)\" y2=\"\(height - 20)\" stroke=\"#333\"/>"
        svg += "<text x=\"\(left)\" y=\"12\">← she</text><text x=\"\(left + 2 * half)\" y=\"12\" text-anchor=\"end\">he →</text>"
        svg += "<text x=\"\(left)\" y=\"\(height - 5)\">mean log p(he)/p(she); axis ±\(f(maxAbs)); nouns by % women</text>"
        return svg + "</svg>"
    }

    static func nounChart(_ data: ReportData, suite: String, order: [String]? = nil) -> String {
        guard let nouns = order ?? data.variants.first?.suites.first(where: { $0.name == suite })?.nouns, !nouns.isEmpty else { return "" }
        let series = data.variants.map { v -> [Double] in
            let s = v.suites.first { $0.name == suite }
            return nouns.map { n in s.flatMap { s in s.nouns.firstIndex(of: n).map { s.nounBias[$0] } } ?? .nan }
        }
        let maxV = max(1.0, series.flatMap { $0 }.filter(\.isFinite).max() ?? 1)
        let rowH = 6 + 5 * data.variants.count, left = 110, width = 520
        let height = nouns.count * rowH + 40
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(left + width + 160)\" height=\"\(height)\">"
        for (i, n) in nouns.enumerated() {
            let y = 20 + i * rowH
            svg += "<text x=\"\(left - 5)\" y=\"\(y + rowH / 2 + 3)\" text-anchor=\"end\">\(esc(n))</text>"
            for (vi, s) in series.enumerated() where s[i].isFinite {
                let w = Int(Double(width) * s[i] / maxV)
                svg += "<rect x=\"\(left)\" y=\"\(y + vi * 5)\" width=\"\(w)\" height=\"4\" fill=\"\(colors[vi % colors.count])\"><title>\(esc(data.variants[vi].name)) \(esc(n)): \(f(s[i]))</title></rect>"
            }
        }
        let x1 = left + Int(Double(width) / maxV)
        svg += "<line x1=\"\(x1)\" y1=\"15\" x2=\"\(x1)\" y2=\"\(height - 20)\" stroke=\"#999\" stroke-dasharray=\"3,3\"/><text x=\"\(x1)\" y=\"12\">1 (no bias)</text>"
        svg += "<text x=\"\(left)\" y=\"\(height - 5)\">bias = mean max(p_he/p_she, p_she/p_he); axis 0 to \(f(maxV))</text>"
        for (vi, v) in data.variants.enumerated() {
            svg += "<rect x=\"\(left + width + 20)\" y=\"\(20 + vi * 16)\" width=\"10\" height=\"10\" fill=\"\(colors[vi % colors.count])\"/><text x=\"\(left + width + 35)\" y=\"\(29 + vi * 16)\">\(esc(v.name))</text>"
        }
        return svg + "</svg>"
    }

    /// One group per edit: bars for every headline metric's change relative to base (in %).
    static func deltaChart(_ data: ReportData) -> String {
        guard let base = data.variants.first else { return "" }
        var metrics: [(suite: String, metric: String, base: Double)] = []
        for s in base.suites { for (m, v) in s.metrics { metrics.append((s.name, m, v)) } }
        let edits = Array(data.variants.dropFirst())
        var rel: [[Double]] = edits.map { e in
            metrics.map { m in
                guard let v = e.suites.first(where: { $0.name == m.suite })?.metrics.first(where: { $0.0 == m.metric })?.1, m.base != 0 else { return .nan }
                return 100 * (v - m.base) / abs(m.base)
            }
        }
        let maxAbs = max(1e-9, rel.flatMap { $0 }.filter(\.isFinite).map(abs).max() ?? 1)
        let rowH = 14, left = 260, half = 250
        let height = edits.count * (metrics.count * rowH + 24) + 30
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(left + 2 * half + 80)\" height=\"\(height)\">"
        var y = 20
        for (ei, e) in edits.enumerated() {
            svg += "<text x=\"5\" y=\"\(y + 10)\" font-weight=\"bold\">\(esc(e.name))</text>"; y += 16
            for (mi, m) in metrics.enumerated() {
                let r = rel[ei][mi]
                svg += "<text x=\"\(left - 5)\" y=\"\(y + 10)\" text-anchor=\"end\">\(esc(m.suite)) \(esc(m.metric))</text>"
                if r.isFinite {
                    let w = Int(Double(half) * abs(r) / maxAbs)
                    let x = r < 0 ? left + half - w : left + half
                    svg += "<rect x=\"\(x)\" y=\"\(y + 2)\" width=\"\(max(w, 1))\" height=\"10\" fill=\"\(r < 0 ? "#55a868" : "#c44e52")\"><title>\(f(r)) %</title></rect>"
                    svg += "<text x=\"\(left + 2 * half + 5)\" y=\"\(y + 10)\">\(String(format: "%+.2f %%", r))</text>"
                }
                y += rowH
            }
            y += 8
        }
        rel.removeAll()
        svg += "<line x1=\"\(left + half)\" y1=\"15\" x2=\"\(left + half)\" y2=\"\(height - 10)\" stroke=\"#333\"/>"
        return svg + "</svg><p>Relative change vs base (green: lower, red: higher). Lower bias is a gain; higher perplexity or bits per byte is a cost.</p>"
    }
}
