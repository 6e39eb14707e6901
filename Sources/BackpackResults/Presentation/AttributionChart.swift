import Foundation

// The report's view of the pronoun suites' attribution (LAYOUT.md): per variant, a signed heatmap
// of nouns x senses (each cell the mean over the noun's prompts of
// alpha[l, n-1, noun] (E_he - E_she) . C(noun)_l, its exact share of log p(he) - log p(she)),
// with the context's total beside it, and a bar of how the absolute mass splits between the
// noun's position and its context. One colour scale for every variant of a suite, so that an
// edit's heatmap shows what it removed from base's.

extension ReportData {
    /// What a pronoun suite stored of its attribution; nil when it stored none (plain GPT-2).
    struct AttributionData {
        var pair: (String, String)
        var senses: Int
        var nouns: [String]
        /// (N, k) row-major: noun n's sense l at n*k + l.
        var nounSenses: [Double]
        /// (N): the other positions' total per noun.
        var nounContext: [Double]
        /// Mean over prompts of |noun part| and |context part|.
        var nounMeanAbs: Double, contextMeanAbs: Double
        /// Mean over prompts of the signed noun part and context part (their sum is the mean log-ratio).
        var meanNoun: Double, meanContext: Double

        init?(_ s: SuiteResult) {
            guard case .int(let k)? = s[ResultsKeys.attributionSenses], k > 0,
                  case .strings(let nouns)? = s.dataset("nouns"),
                  case .doubles(let ns)? = s.dataset(ResultsKeys.nounAttributionSenses), ns.count == nouns.count * k,
                  case .doubles(let nc)? = s.dataset(ResultsKeys.nounAttributionContext), nc.count == nouns.count,
                  case .doubles(let ps)? = s.dataset(ResultsKeys.attributionNounSenses), !ps.isEmpty, ps.count % k == 0,
                  case .doubles(let pc)? = s.dataset(ResultsKeys.attributionContext), pc.count == ps.count / k,
                  let na = s[ResultsKeys.attributionNounMeanAbs]?.doubleValue,
                  let ca = s[ResultsKeys.attributionContextMeanAbs]?.doubleValue else { return nil }
            var words = ("he", "she")
            if case .string(let p)? = s["pair"] {
                let parts = p.split(separator: ",").map(String.init)
                if parts.count == 2 { words = (parts[0], parts[1]) }
            }
            pair = words; senses = k; self.nouns = nouns; nounSenses = ns; nounContext = nc
            nounMeanAbs = na; contextMeanAbs = ca
            meanNoun = ps.reduce(0, +) / Double(pc.count); meanContext = pc.reduce(0, +) / Double(pc.count)
        }

        func cell(noun: String, column: Int) -> Double? {
            guard let n = nouns.firstIndex(of: noun) else { return nil }
            return column < senses ? nounSenses[n * senses + column] : nounContext[n]
        }
    }
}

extension ReportHTML {
    /// The ends of the diverging scale: the pair's first word (he) red, the second (she) blue,
    /// white at 0. Linear in each channel from white; Tools/report-check recomputes it.
    static let firstColor = (178, 24, 43), secondColor = (33, 102, 172)

    static func divergingColor(_ value: Double, scale: Double) -> String {
        guard value.isFinite, scale > 0 else { return "#cccccc" }
        let t = min(1, abs(value) / scale)
        let end = value >= 0 ? firstColor : secondColor
        func channel(_ e: Int) -> Int { Int((255 - Double(255 - e) * t).rounded()) }
        return String(format: "#%02x%02x%02x", channel(end.0), channel(end.1), channel(end.2))
    }

    /// The section for one pronoun suite: text, the noun / context share bars, a heatmap per
    /// charted variant (base and single edits), nouns in `order`.
    static func attributionSection(_ data: ReportData, suite: String, order: [String]) -> String {
        let entries = data.variants.compactMap { v in
            v.suites.first { $0.name == suite }?.attribution.map { (name: v.name, a: $0) }
        }
        guard let first = entries.first?.a else { return "" }
        let (he, she) = first.pair
        let k = first.senses
        let scale = max(1e-9, entries.flatMap { e in e.a.nounSenses + e.a.nounContext }.filter(\.isFinite).map(abs).max() ?? 1)
        var h = "<h2 id=\"attribution-\(esc(suite))\">Where the bias sits: sense-by-position attribution, \(esc(suite))</h2>\n"
        h += "<p>log p(\(esc(he))) − log p(\(esc(she))) after each prompt is exactly Σ<sub>l</sub> Σ<sub>j</sub> α[l, n−1, j] (E<sub>\(esc(he))</sub> − E<sub>\(esc(she))</sub>)·C(x<sub>j</sub>)<sub>l</sub>: one number per sense l and position j (<code>backpack attribute</code>). "
        h += "Each heatmap cell is sense l of the noun's own position, averaged over the noun's prompts; the last column is every other position (the context) summed. Red leans to “\(esc(he))”, blue to “\(esc(she))”; one scale, ±\(f(scale)), for every variant, so a cell an edit removed turns white.</p>\n"
        h += shareChart(entries)
        h += "<div style=\"display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start\">"
        let base = entries.first { $0.name == data.variants.first?.name }?.a
        for e in entries { h += heatmap(e.name, e.a, base: e.name == data.variants.first?.name ? nil : base, order: order, senses: k, scale: scale, suite: suite) }
        h += "</div>\n" + heatmapLegend(scale: scale, pair: first.pair)
        return h
    }

    /// Per variant: the share of the absolute attribution at the noun's position and in its
    /// context (mean |part| over prompts), with the signed means.
    static func shareChart(_ entries: [(name: String, a: ReportData.AttributionData)]) -> String {
        let left = 190, width = 360, rowH = 22
        let height = entries.count * rowH + 30
        var svg = "<svg class=\"shares\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(left + width + 520)\" height=\"\(height)\">"
        svg += "<text x=\"\(left)\" y=\"12\">share of |attribution|: noun's position</text><text x=\"\(left + width)\" y=\"12\" text-anchor=\"end\">context</text>"
        for (i, e) in entries.enumerated() {
            let total = e.a.nounMeanAbs + e.a.contextMeanAbs
            let share = total > 0 ? e.a.nounMeanAbs / total : 0
            let w = Int((Double(width) * share).rounded())
            let y = 20 + i * rowH
            svg += "<text x=\"\(left - 6)\" y=\"\(y + 13)\" text-anchor=\"end\">\(esc(e.name))</text>"
            svg += "<rect class=\"share-noun\" data-variant=\"\(esc(e.name))\" data-share=\"\(share)\" x=\"\(left)\" y=\"\(y + 2)\" width=\"\(w)\" height=\"16\" fill=\"#555555\"><title>\(esc(e.name)): noun \(String(format: "%.1f", 100 * share)) %</title></rect>"
            svg += "<rect class=\"share-context\" data-variant=\"\(esc(e.name))\" x=\"\(left + w)\" y=\"\(y + 2)\" width=\"\(width - w)\" height=\"16\" fill=\"#bbbbbb\"/>"
            svg += "<text x=\"\(left + width + 8)\" y=\"\(y + 14)\">noun \(String(format: "%.0f", 100 * share)) % (mean |·| \(f(e.a.nounMeanAbs)), signed \(String(format: "%+.3f", e.a.meanNoun))), context \(String(format: "%.0f", 100 * (1 - share))) % (\(f(e.a.contextMeanAbs)), \(String(format: "%+.3f", e.a.meanContext)))</text>"
        }
        return svg + "</svg>\n"
    }

    /// One variant's nouns x (k senses + context) grid.
    static func heatmap(_ variant: String, _ a: ReportData.AttributionData, base: ReportData.AttributionData?, order: [String],
                        senses k: Int, scale: Double, suite: String) -> String {
        let nouns = order.filter { a.nouns.contains($0) }
        let cw = 16, ch = 11, left = 96, top = 34, gap = 6
        let width = left + (k + 1) * cw + gap + 8, height = top + nouns.count * ch + 6
        var svg = "<svg class=\"heatmap\" data-suite=\"\(esc(suite))\" data-variant=\"\(esc(variant))\" data-scale=\"\(scale)\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\">"
        svg += "<text x=\"\(left)\" y=\"12\" font-weight=\"bold\">\(esc(variant))</text>"
        func x(_ column: Int) -> Int { left + column * cw + (column == k ? gap : 0) }
        for l in 0..<k { svg += "<text x=\"\(x(l) + cw / 2)\" y=\"\(top - 4)\" text-anchor=\"middle\" font-size=\"8\">\(l)</text>" }
        svg += "<text x=\"\(x(k) + cw / 2)\" y=\"\(top - 4)\" text-anchor=\"middle\" font-size=\"8\">ctx</text>"
        for (r, noun) in nouns.enumerated() {
            let y = top + r * ch
            svg += "<text x=\"\(left - 4)\" y=\"\(y + ch - 2)\" text-anchor=\"end\" font-size=\"10\">\(esc(noun))</text>"
            for column in 0...k {
                guard let v = a.cell(noun: noun, column: column) else { continue }
                let name = column < k ? "sense \(column)" : "context"
                var tip = "\(variant), \(noun), \(name): \(String(format: "%+.4f", v))"
                if let b = base?.cell(noun: noun, column: column) { tip += " (base \(String(format: "%+.4f", b)))" }
                svg += "<rect class=\"cell\" data-noun=\"\(esc(noun))\" data-column=\"\(column < k ? String(column) : "context")\" data-value=\"\(v)\" x=\"\(x(column))\" y=\"\(y)\" width=\"\(cw)\" height=\"\(ch)\" fill=\"\(divergingColor(v, scale: scale))\"><title>\(esc(tip))</title></rect>"
            }
        }
        return svg + "</svg>"
    }

    static func heatmapLegend(scale: Double, pair: (String, String)) -> String {
        let steps = 21, w = 12, left = 60
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(left + steps * w + 80)\" height=\"34\">"
        for i in 0..<steps {
            let v = scale * (Double(i) / Double(steps - 1) * 2 - 1)
            svg += "<rect x=\"\(left + i * w)\" y=\"2\" width=\"\(w)\" height=\"12\" fill=\"\(divergingColor(v, scale: scale))\"/>"
        }
        svg += "<text x=\"\(left - 4)\" y=\"12\" text-anchor=\"end\">← \(esc(pair.1))</text><text x=\"\(left + steps * w + 4)\" y=\"12\">\(esc(pair.0)) →</text>"
        svg += "<text x=\"\(left)\" y=\"28\">\(String(format: "%+.3g", -scale))</text><text x=\"\(left + steps * w / 2)\" y=\"28\" text-anchor=\"middle\">0</text><text x=\"\(left + steps * w)\" y=\"28\" text-anchor=\"end\">\(String(format: "%+.3g", scale))</text>"
        return svg + "</svg>\n"
    }
}
