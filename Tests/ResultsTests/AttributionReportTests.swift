import Foundation
import Testing
@testable import BackpackResults

/// The report's attribution section: a heatmap per charted variant with the stored numbers, one
/// colour scale, the noun / context share bars. (Tools/report-check checks the same section as
/// Chromium draws it, pixel by pixel, on a real run: `make test-report`.)
@Suite struct AttributionReportTests {
    /// k = 2 senses, nouns a and b, 2 prompts each; `zeroed` puts 0 in noun a's sense 1.
    static func suite(zeroed: Bool, contextScale: Double = 1) -> SuiteResult {
        var s = SuiteResult(suiteName: "pronoun-bias", suiteVersion: "2", dataSHA256: "00")
        s.set("bias", 3, headline: true)
        s.set("pair", "he,she")
        s.add("nouns", strings: ["a", "b"])
        s.add("noun_bias", [3, 3])
        let perPrompt: [Double] = [0.5, zeroed ? 0 : -0.25, 0.5, zeroed ? 0 : -0.75, -0.125, 0.25, -0.375, 0.25]   // (P=4, k=2)
        let context = [0.5, 1.5, -1.0, 2.0].map { $0 * contextScale }
        s.set(ResultsKeys.attributionSenses, 2)
        s.set(ResultsKeys.attributionNounMeanAbs, 0.5)
        s.set(ResultsKeys.attributionContextMeanAbs, 1.5)
        s.add(ResultsKeys.attributionNounSenses, perPrompt)
        s.add(ResultsKeys.attributionContext, context)
        // per noun: mean of its two prompts
        s.add(ResultsKeys.nounAttributionSenses, [0.5, zeroed ? 0 : -0.5, -0.25, 0.25])
        s.add(ResultsKeys.nounAttributionContext, [(context[0] + context[1]) / 2, (context[2] + context[3]) / 2])
        return s
    }

    static func record(sweep: Bool = false) -> RunRecord {
        var variants = [VariantResults(variant: "base", editText: "", editSHA256: "", suites: [suite(zeroed: false)]),
                        VariantResults(variant: "remove", editText: "x", editSHA256: "s", grid: GridPoint(family: "remove"),
                                       suites: [suite(zeroed: true, contextScale: 2)])]
        if sweep {
            variants.append(VariantResults(variant: "sw[top=1]", editText: "y", editSHA256: "t",
                                           grid: GridPoint(family: "sw", axes: ["top"], values: ["1"]), suites: [suite(zeroed: true)]))
        }
        return RunRecord(id: "r1", provenance: RunProvenance(toolVersion: "t", gitCommit: "g", modelPath: "m", modelSHA256: "s",
                                                             host: "h", created: "c"),
                         commandLine: "backpack eval", elapsedSeconds: 1, variants: variants)
    }

    static func cells(_ html: String, variant: String) -> [String] {
        guard let start = html.range(of: "data-variant=\"\(variant)\" data-scale=") else { return [] }
        let rest = html[start.upperBound...]
        let svg = rest.range(of: "</svg>").map { rest[..<$0.lowerBound] } ?? rest
        return svg.components(separatedBy: "<rect class=\"cell\"").dropFirst().map { String($0.prefix { $0 != ">" }) }
    }

    @Test func heatmapCarriesTheStoredNumbers() throws {
        let html = ReportHTML.render(Self.record(sweep: true))
        #expect(html.contains("Where the bias sits: sense-by-position attribution, pronoun-bias"))
        // A heatmap for base and the single edit, none for the sweep point.
        #expect(html.components(separatedBy: "<svg class=\"heatmap\"").count - 1 == 2)
        #expect(!html.contains("data-variant=\"sw[top=1]\" data-scale"))
        // One scale for both: the largest |number| (remove's context of noun a: 2 * (0.5 + 1.5) / 2 = 2).
        #expect(html.components(separatedBy: "data-scale=\"2.0\"").count - 1 == 2)
        let base = Self.cells(html, variant: "base"), remove = Self.cells(html, variant: "remove")
        #expect(base.count == 6 && remove.count == 6)           // 2 nouns x (2 senses + context)
        #expect(base.contains { $0.contains("data-noun=\"a\" data-column=\"1\" data-value=\"-0.5\"") && $0.contains("fill=\"#c8d9ea\"") })
        // The zeroed sense is white in the edit, the context column doubled.
        #expect(remove.contains { $0.contains("data-noun=\"a\" data-column=\"1\" data-value=\"0.0\"") && $0.contains("fill=\"#ffffff\"") })
        #expect(remove.contains { $0.contains("data-noun=\"a\" data-column=\"context\" data-value=\"2.0\"") && $0.contains("fill=\"#b2182b\"") })
        // The share bar: noun 0.5 of 0.5 + 1.5.
        #expect(html.contains("class=\"share-noun\" data-variant=\"base\" data-share=\"0.25\""))
        #expect(html.contains("width=\"90\" height=\"16\""))       // 25 % of 360 px
    }

    @Test func divergingScale() {
        #expect(ReportHTML.divergingColor(0, scale: 1) == "#ffffff")
        #expect(ReportHTML.divergingColor(1, scale: 1) == "#b2182b")
        #expect(ReportHTML.divergingColor(-3, scale: 1) == "#2166ac")              // clamped
        #expect(ReportHTML.divergingColor(0.5, scale: 1) == "#d98c95")             // halfway to (178, 24, 43)
        #expect(ReportHTML.divergingColor(.nan, scale: 1) == "#cccccc")
    }

    @Test func noAttributionNoSection() {
        var r = Self.record()
        for v in r.variants.indices {
            r.variants[v].suites[0].attributes.removeAll { $0.name == ResultsKeys.attributionSenses }
        }
        let html = ReportHTML.render(r)
        #expect(!html.contains("sense-by-position attribution"))
        #expect(!html.contains("class=\"heatmap\""))
    }
}
