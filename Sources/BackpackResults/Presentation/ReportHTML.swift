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
        /// The sense-by-position attribution, when the suite stored it (AttributionChart.swift).
        var attribution: AttributionData?
    }
    struct VariantData {
        var name: String; var editSHA: String; var suites: [SuiteData]
        /// A point of a sweep (drawn on the trade-off curve, not in the per-variant charts).
        var isSweepPoint = false
    }
    var runID: String
    var provenance: [(String, String)]
    var variants: [VariantData]
    /// Bias against perplexity change, or what the run lacks for it.
    var tradeOff: Result<TradeOff, TradeOff.Missing>
    /// The run's variants as read, for the per-suite tables.
    var results: [VariantResults]
    var significance: Significance

    init(_ r: RunRecord, significance: Significance = Significance()) {
        runID = r.id
        results = r.variants
        self.significance = significance
        tradeOff = TradeOff.make(r.variants)
        let p = r.provenance
        provenance = [("created", p.created), ("model_path", p.modelPath), ("model_sha256", p.modelSHA256),
                      ("git_commit", p.gitCommit), ("tool_version", p.toolVersion), ("host", p.host),
                      ("command_line", r.commandLine)].filter { !$0.1.isEmpty }
        if let shard = r.shard { provenance.insert(("shard", "\(shard.index) of \(shard.count) (backpack merge joins the shards)"), at: 0) }
        if r.status == "running" {
            // A killed run, or one still being written: say so before any number is read as final.
            let stored = r.variants.reduce(0) { $0 + $1.suites.count }
            provenance.insert(("status", "running: unfinished, \(stored) result(s) stored so far; `backpack eval --resume` with the same inputs computes the rest"), at: 0)
        }
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
                d.attribution = AttributionData(s)
                return d
            }, isSweepPoint: v.grid?.isSweep ?? false)
        }
    }

    /// The variants drawn bar by bar: base and the single edits. A sweep's points are many (one
    /// bar each per noun would be unreadable); they are on the trade-off curve and in the tables.
    var charted: ReportData {
        var d = self
        d.variants = variants.filter { !$0.isSweepPoint }
        return d
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

    /// The page; a significant Δ is marked by `significance` (`report --correction`, `--alpha`).
    public static func render(_ record: RunRecord, significance: Significance = Significance()) -> String {
        render(ReportData(record, significance: significance))
    }

    /// The provenance lines shown above the tables.
    public static func provenance(_ record: RunRecord) -> [(String, String)] { ReportData(record).provenance }

    static func render(_ data: ReportData) -> String {
        var body = "<h1>backpack-edit evaluation report</h1>\n<p>Run <code>\(esc(data.runID))</code></p>\n<table class=prov>"
        for (k, v) in data.provenance { body += "<tr><th>\(esc(k))</th><td><code>\(esc(v))</code></td></tr>" }
        body += "</table>\n<h2>Before / after</h2>\n" + suiteTables(data)
        if data.variants.count > 1 {
            body += "<h2 id=\"trade-off\">Bias / perplexity trade-off</h2>\n"
            switch data.tradeOff {
            case .success(let t): body += tradeOffChart(t) + tradeOffTable(t)
            case .failure(let m): body += "<p class=missing>No trade-off curve: \(esc(m.reason)).</p>\n"
            }
        }
        let charted = data.charted
        let omitted = data.variants.count - charted.variants.count
        let omittedNote = omitted > 0 ? "<p>The \(omitted) sweep points are left out of the bar charts below; they are on the trade-off curve and in the tables.</p>\n" : ""
        // Per-noun bias charts, one per pronoun suite.
        if let base = data.variants.first {
            for s in base.suites where !s.nouns.isEmpty {
                body += "<h2>Per-noun bias: \(esc(s.name))</h2>\n"
                if s.correlations != nil { body += correlationTable(data, suite: s.name) }
                let order = nounOrder(s)
                body += omittedNote + "<div style=\"display:flex;flex-wrap:wrap;gap:1em\">"
                if !s.nounLogRatio.isEmpty { body += signedNounChart(charted, suite: s.name, order: order) }
                body += nounChart(charted, suite: s.name, order: order) + "</div>\n"
            }
        }
        // The attribution of every pronoun suite that stored it: heatmaps of base and each edit.
        if let base = data.variants.first {
            for s in base.suites {
                guard let a = s.attribution else { continue }
                let order = s.nouns.isEmpty ? a.nouns : nounOrder(s)
                body += omittedNote + attributionSection(charted, suite: s.name, order: order)
            }
        }
        if charted.variants.count > 1 {
            body += "<h2>Metric deltas vs base (bias gain beside perplexity cost)</h2>\n" + omittedNote + deltaChart(charted)
        }
        return """
            <!DOCTYPE html><html><head><meta charset="utf-8"><title>backpack-edit report \(esc(data.runID))</title>
            <style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1180px}table{border-collapse:collapse;margin:1em 0}
            td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}.prov td,.prov th{text-align:left}
            .prov td code{overflow-wrap:anywhere}td.l{text-align:left}svg text{font-size:11px}
            .scroll{overflow-x:auto;max-width:100%}.scroll table{margin:0.3em 0 1em}h3{margin:1.2em 0 0.2em}
            td.sig{font-weight:bold;background:#fff3c4}.meta{color:#555;font-size:90%;margin:0}.legend{font-size:90%}
            td.l.point{padding-left:1.6em}table.metrics td{white-space:nowrap}table.metrics th:first-child{text-align:left}</style></head><body>
            \(body)
            </body></html>
            """
    }

    /// Headline metrics, one table per suite (each in a box that scrolls sideways if it must):
    /// a row per variant, per metric the value with its 95 % interval, Δ vs base (marked when the
    /// chosen correction's value is below alpha) and that value.
    static func suiteTables(_ data: ReportData) -> String {
        let sig = data.significance
        let variants = data.results
        let base = variants.first { $0.variant == "base" }
        var suites: [String] = []
        for v in variants { for s in v.suites where !suites.contains(s.suiteName) { suites.append(s.suiteName) } }
        let pName = sig.correction.valueName
        var h = ""
        for suite in suites {
            let first = variants.compactMap { $0.suite(suite) }.first
            let metrics = first?.headline.filter { first?[$0]?.doubleValue != nil } ?? []
            var sub: [String] = []
            if let k = first?.kind { sub.append("kind \(k)") }
            if case .string(let u)? = first?[ResultsKeys.ciUnit] { sub.append("bootstrap unit: \(u)") }
            h += "<h3 id=\"suite-\(esc(suite))\">\(esc(suite))</h3>"
            if !sub.isEmpty { h += "<p class=meta>\(esc(sub.joined(separator: "; ")))</p>" }
            for m in metrics {
                guard let info = first?.metric(m) else { continue }
                var meta = [info.unit, info.better == .closerToIdeal ? "closer to ideal is better" : "\(info.better.rawValue) is better"]
                if let ideal = info.ideal { meta.append("ideal \(f(ideal))") }
                h += "<p class=meta><b>\(esc(m))</b>: \(esc(info.description)) [\(esc(meta.joined(separator: "; ")))]</p>"
            }
            h += "<div class=scroll><table class=\"metrics\" data-suite=\"\(esc(suite))\"><tr><th>variant</th>"
                + metrics.map { "<th>\(esc($0)) [95 % CI]</th><th>Δ</th><th>\(pName)</th>" }.joined() + "</tr>"
            for v in variants {
                guard let s = v.suite(suite) else { continue }
                let point = v.grid?.isSweep == true
                h += "<tr><td class=\"l\(point ? " point" : "")\">\(esc(v.variant))</td>"
                for m in metrics {
                    guard let x = s[m]?.doubleValue else { h += "<td>-</td><td></td><td></td>"; continue }
                    var cell = String(format: "%.4f", x)
                    if let ci = s.interval(m) { cell += " [\(f(ci.low)), \(f(ci.high))]" }
                    h += "<td>\(cell)</td>"
                    if v.variant != "base", let b = base?.suite(suite)?[m]?.doubleValue {
                        let significant = sig.isSignificant(s, m)
                        let d = String(format: "%+.4f", x - b)
                        h += significant ? "<td class=sig title=\"significant: \(esc(sig.correction.title)) \(pName) &lt; \(Significance.format(sig.alpha))\">\(d) *</td>" : "<td>\(d)</td>"
                        h += "<td>\(sig.value(s, m).map { String(format: "%.2g", $0) } ?? "")</td>"
                    } else { h += "<td></td><td></td>" }
                }
                h += "</tr>"
            }
            h += "</table></div>\n"
        }
        return h + "<p class=legend>Δ = variant − base; [low, high]: 95 % bootstrap interval. \(esc(sig.legend)); the raw p, Holm p and BH q are all in <code>backpack report --format csv</code>.</p>\n"
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

    /// Bias (y) against the perplexity change vs base (x, %): base, every edit, one line per sweep
    /// axis through the points that differ only in it, and the Pareto frontier (lower is better on both).
    static func tradeOffChart(_ t: TradeOff) -> String {
        let all = t.all.filter { $0.x.isFinite && $0.y.isFinite }
        guard !all.isEmpty else { return "<p>No finite bias and perplexity values to plot.</p>" }
        let left = 70.0, top = 20.0, plotW = 620.0, plotH = 420.0, legendW = 300.0
        func range(_ v: [Double]) -> (Double, Double) {
            let lo = v.min() ?? 0, hi = v.max() ?? 1
            let pad = hi > lo ? (hi - lo) * 0.08 : max(abs(hi) * 0.05, 1e-6)
            return (lo - pad, hi + pad)
        }
        // The axes take in the error bars (95 % bootstrap intervals) too.
        let xs = all.flatMap { [$0.x, $0.xInterval?.low, $0.xInterval?.high].compactMap { $0 }.filter(\.isFinite) }
        let ys = all.flatMap { [$0.y, $0.yInterval?.low, $0.yInterval?.high].compactMap { $0 }.filter(\.isFinite) }
        let (x0, x1) = range(xs), (y0, y1) = range(ys)
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * plotH }
        func n(_ v: Double) -> String { String(format: "%.1f", v) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(left + plotW + legendW))\" height=\"\(Int(top + plotH + 50))\">"
        svg += "<rect x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(plotW))\" height=\"\(n(plotH))\" fill=\"none\" stroke=\"#999\"/>"
        for k in 0...4 {
            let xv = x0 + (x1 - x0) * Double(k) / 4, yv = y0 + (y1 - y0) * Double(k) / 4
            svg += "<line x1=\"\(n(px(xv)))\" y1=\"\(n(top + plotH))\" x2=\"\(n(px(xv)))\" y2=\"\(n(top + plotH + 4))\" stroke=\"#999\"/>"
            svg += "<text x=\"\(n(px(xv)))\" y=\"\(n(top + plotH + 16))\" text-anchor=\"middle\">\(String(format: "%+.3g", xv))</text>"
            svg += "<line x1=\"\(n(left - 4))\" y1=\"\(n(py(yv)))\" x2=\"\(n(left))\" y2=\"\(n(py(yv)))\" stroke=\"#999\"/>"
            svg += "<text x=\"\(n(left - 6))\" y=\"\(n(py(yv) + 4))\" text-anchor=\"end\">\(f(yv))</text>"
        }
        if x0 < 0 && x1 > 0 {
            svg += "<line x1=\"\(n(px(0)))\" y1=\"\(n(top))\" x2=\"\(n(px(0)))\" y2=\"\(n(top + plotH))\" stroke=\"#bbb\" stroke-dasharray=\"4,3\"/>"
        }
        svg += "<text x=\"\(n(left + plotW / 2))\" y=\"\(n(top + plotH + 36))\" text-anchor=\"middle\">\(esc(t.perplexitySuite)) \(esc(t.perplexityMetric)): change vs base (%) → worse</text>"
        svg += "<text transform=\"translate(14,\(n(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(esc(t.biasSuite)) \(esc(t.biasMetric)) → worse</text>"
        // The frontier under the points: a thick pale line through them and a ring on each.
        let front = t.frontier
        let frontPoints = front.map { t.all[$0] }
        if frontPoints.count > 1 {
            svg += "<polyline points=\"" + frontPoints.map { "\(n(px($0.x))),\(n(py($0.y)))" }.joined(separator: " ")
                + "\" fill=\"none\" stroke=\"#f2c14e\" stroke-width=\"7\" stroke-linejoin=\"round\" opacity=\"0.7\"/>"
        }
        // Error bars: each point's 95 % bootstrap interval of bias (vertical) and of the
        // perplexity change (horizontal), under the points.
        for p in all {
            if let yi = p.yInterval, yi.low.isFinite, yi.high.isFinite {
                svg += "<line class=\"errorbar\" x1=\"\(n(px(p.x)))\" y1=\"\(n(py(yi.low)))\" x2=\"\(n(px(p.x)))\" y2=\"\(n(py(yi.high)))\" stroke=\"#888\" stroke-width=\"1\"/>"
            }
            if let xi = p.xInterval, xi.low.isFinite, xi.high.isFinite {
                svg += "<line class=\"errorbar\" x1=\"\(n(px(xi.low)))\" y1=\"\(n(py(p.y)))\" x2=\"\(n(px(xi.high)))\" y2=\"\(n(py(p.y)))\" stroke=\"#888\" stroke-width=\"1\"/>"
            }
        }
        for p in frontPoints { svg += "<circle cx=\"\(n(px(p.x)))\" cy=\"\(n(py(p.y)))\" r=\"8\" fill=\"none\" stroke=\"#d99a00\" stroke-width=\"2\"/>" }
        let dashes = ["", "6,3", "2,3", "8,3,2,3"]
        var legend = ""
        var placed: [(x: Double, y: Double, w: Double)] = [(px(t.base.x) + 7, py(t.base.y) + 14, 26)]
        let labels = TradeOffLabels(plot: (left, top, left + plotW, top + plotH))
        func label(_ text: String, at x: Double, _ y: Double, color: String) -> String {
            guard let spot = labels.place(text, at: (x, y), avoiding: &placed) else { return "" }
            var out = ""
            if let a = spot.leader {
                out += "<line class=\"leader\" x1=\"\(n(x))\" y1=\"\(n(y))\" x2=\"\(n(a.x))\" y2=\"\(n(a.y))\" stroke=\"\(color)\" stroke-width=\"0.8\" opacity=\"0.7\"/>"
            }
            return out + "<text x=\"\(n(spot.x))\" y=\"\(n(spot.y))\" fill=\"\(color)\">\(esc(text))</text>"
        }
        for (fi, family) in t.families.enumerated() {
            let color = colors[(fi + 1) % colors.count]
            for (ai, l) in t.lines(family: family.points).enumerated() {
                let axisIndex = t.edits[family.points[0]].grid?.axes.firstIndex(of: l.axis) ?? ai
                svg += "<polyline points=\"" + l.line.map { "\(n(px(t.edits[$0].x))),\(n(py(t.edits[$0].y)))" }.joined(separator: " ")
                    + "\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" stroke-dasharray=\"\(dashes[axisIndex % dashes.count])\"/>"
            }
            for i in family.points {
                let p = t.edits[i]
                guard p.x.isFinite && p.y.isFinite else { continue }
                let text = p.grid.map { $0.isSweep ? $0.values.joined(separator: ",") : p.variant } ?? p.variant
                svg += "<circle cx=\"\(n(px(p.x)))\" cy=\"\(n(py(p.y)))\" r=\"4\" fill=\"\(color)\"><title>\(esc(p.variant)): \(esc(t.biasMetric)) \(f(p.y)), \(esc(t.perplexityMetric)) \(f(p.perplexity)) (\(String(format: "%+.3g", p.x)) %)</title></circle>"
                svg += label(text, at: px(p.x), py(p.y), color: color)
            }
            let axes = t.edits[family.points[0]].grid.map { $0.axes.joined(separator: ", ") } ?? ""
            let y = top + 10 + Double(fi + 1) * 18
            svg += "<circle cx=\"\(n(left + plotW + 20))\" cy=\"\(n(y - 4))\" r=\"4\" fill=\"\(color)\"/>"
            legend += "<text x=\"\(n(left + plotW + 30))\" y=\"\(n(y))\">\(esc(family.name))\(axes.isEmpty ? "" : " (" + esc(axes) + ")")</text>"
        }
        svg += "<rect x=\"\(n(px(t.base.x) - 4.5))\" y=\"\(n(py(t.base.y) - 4.5))\" width=\"9\" height=\"9\" fill=\"#000\"><title>base: \(esc(t.biasMetric)) \(f(t.base.y)), \(esc(t.perplexityMetric)) \(f(t.base.perplexity))</title></rect>"
        svg += "<text x=\"\(n(px(t.base.x) + 7))\" y=\"\(n(py(t.base.y) + 14))\" font-weight=\"bold\">base</text>"
        svg += "<rect x=\"\(n(left + plotW + 15.5))\" y=\"\(n(top + 1.5))\" width=\"9\" height=\"9\" fill=\"#000\"/><text x=\"\(n(left + plotW + 30))\" y=\"\(n(top + 10))\">base</text>"
        let ly = top + 10 + Double(t.families.count + 1) * 18 + 8
        svg += "<circle cx=\"\(n(left + plotW + 20))\" cy=\"\(n(ly - 4))\" r=\"7\" fill=\"none\" stroke=\"#d99a00\" stroke-width=\"2\"/><text x=\"\(n(left + plotW + 30))\" y=\"\(n(ly))\">Pareto frontier</text>"
        return svg + legend + "</svg>\n<p>Each point is one variant, labelled with its sweep values (a thin line leads to a label moved away from a crowd of points; a point left unlabelled for want of room shows its name on hover for the name and numbers; the table below lists all; lines join the points of a sweep that differ in one axis; dashes tell the axes apart). Grey bars are 95 % bootstrap intervals (eval --bootstrap) of bias and of the perplexity change. Lower and further left is better: the ringed points are the Pareto frontier, where no other variant has both lower bias and a lower perplexity change.</p>\n"
    }

    /// The curve's numbers: one row per variant, frontier marked.
    static func tradeOffTable(_ t: TradeOff) -> String {
        let front = Set(t.frontier)
        var h = "<table class=tradeoff><tr><th>variant</th><th>\(esc(t.biasSuite)) \(esc(t.biasMetric))</th><th>\(esc(t.perplexitySuite)) \(esc(t.perplexityMetric))</th><th>Δ perplexity %</th><th>Pareto</th></tr>"
        for (i, p) in t.all.enumerated() {
            h += "<tr><td class=l>\(esc(p.variant))</td><td>\(String(format: "%.4f", p.y))</td><td>\(String(format: "%.4f", p.perplexity))</td><td>\(String(format: "%+.4f", p.x))</td><td>\(front.contains(i) ? "✓" : "")</td></tr>"
        }
        return h + "</table>\n"
    }
}

/// Where the trade-off chart puts a point's label: beside the point where it overlaps no earlier
/// label (boxes of about 6.5 px per character, 11 px high), else staggered further up or down
/// (and left or right) within the plot, joined to its point by a leader line; nil where no spot
/// is free (the point keeps its name in the tooltip and the table).
struct TradeOffLabels {
    var plot: (left: Double, top: Double, right: Double, bottom: Double)
    static let charWidth = 6.5, lineHeight = 11.0

    struct Spot { var x: Double, y: Double; var leader: (x: Double, y: Double)? }

    func place(_ text: String, at p: (x: Double, y: Double), avoiding placed: inout [(x: Double, y: Double, w: Double)]) -> Spot? {
        let w = Self.charWidth * Double(text.count)
        func free(_ lx: Double, _ ly: Double) -> Bool {
            !placed.contains { lx < $0.x + $0.w && $0.x < lx + w && abs(ly - $0.y) < Self.lineHeight }
        }
        // Beside the point, as before: right above, right below, left above, left below.
        for (dx, dy) in [(6.0, -5.0), (6.0, 12.0), (-6.0 - w, -5.0), (-6.0 - w, 12.0)] where free(p.x + dx, p.y + dy) {
            placed.append((p.x + dx, p.y + dy, w))
            return Spot(x: p.x + dx, y: p.y + dy, leader: nil)
        }
        // Staggered: rows of 13 px above and below, pushed right (then left) of the crowd.
        for step in 1...12 {
            let dy = 13.0 * Double(step)
            for (dx, sy) in [(18.0, -1.0), (18.0, 1.0), (-18.0 - w, -1.0), (-18.0 - w, 1.0), (40.0, -1.0), (40.0, 1.0), (-40.0 - w, -1.0), (-40.0 - w, 1.0)] {
                let lx = p.x + dx, ly = p.y + sy * dy + 4
                guard lx >= plot.left + 2, lx + w <= plot.right - 2, ly - Self.lineHeight >= plot.top, ly <= plot.bottom - 2, free(lx, ly) else { continue }
                placed.append((lx, ly, w))
                // The leader ends at the label's near edge, at mid-height.
                return Spot(x: lx, y: ly, leader: (dx > 0 ? lx - 2 : lx + w + 2, ly - 4))
            }
        }
        return nil
    }
}
