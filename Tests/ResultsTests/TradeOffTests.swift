import Foundation
import Testing
import TestSupport
@testable import BackpackResults

/// Grid points stored on variant groups and read back; the Pareto frontier; the report's
/// trade-off curve.
@Suite struct TradeOffTests {
    static func suite(_ name: String, _ metric: String, _ value: Double, role: MetricRole? = nil) -> SuiteResult {
        var s = SuiteResult(suiteName: name, suiteVersion: "1", dataSHA256: "00")
        s.set(metric, value, headline: true)
        if let role { s.roles[role] = metric }
        return s
    }

    /// base, a two-point sweep of `remove` over top, and a single edit `project`.
    static func record() -> RunRecord {
        func v(_ name: String, _ grid: GridPoint?, bias: Double, ppl: Double) -> VariantResults {
            VariantResults(variant: name, editText: grid == nil ? "" : "text of \(name)", editSHA256: grid == nil ? "" : "sha-\(name)",
                           grid: grid, suites: [suite("pronoun-bias", "bias", bias, role: .bias), suite("perplexity", "token_perplexity", ppl, role: .cost)])
        }
        let variants = [
            v("base", nil, bias: 6.0, ppl: 100),
            v("remove[top=1]", GridPoint(family: "remove", axes: ["top"], values: ["1"]), bias: 5.0, ppl: 100.5),
            v("remove[top=16]", GridPoint(family: "remove", axes: ["top"], values: ["16"]), bias: 2.0, ppl: 110),
            v("remove[top=4]", GridPoint(family: "remove", axes: ["top"], values: ["4"]), bias: 4.0, ppl: 103),
            v("project", GridPoint(family: "project"), bias: 5.5, ppl: 101),
        ]
        return RunRecord(id: "r1", provenance: RunProvenance(toolVersion: "t", gitCommit: "g", modelPath: "m", modelSHA256: "s",
                                                             host: "h", created: "c"),
                         commandLine: "backpack eval", elapsedSeconds: 1, variants: variants)
    }

    @Test func gridPointsRoundTrip() throws {
        let dir = try TestPaths.temporaryDirectory("grid")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("r.h5")
        let id = try ResultsFile.append(Self.record(), to: url)
        let back = try ResultsFile(opening: url).record(id)
        #expect(back.variants.map(\.variant) == ["base", "remove[top=1]", "remove[top=16]", "remove[top=4]", "project"])
        #expect(back.variants[0].grid == nil)
        #expect(back.variants[2].grid == GridPoint(family: "remove", axes: ["top"], values: ["16"]))
        #expect(back.variants[4].grid == GridPoint(family: "project"))
        // As h5py sees it: 1-D string attributes on the variant group.
        let g = try ResultsFile(opening: url).run(id).group("remove[top=16]")
        #expect(try g.attribute(ResultsKeys.gridAxes) == .strings(["top"]))
        #expect(try g.attribute(ResultsKeys.gridValues) == .strings(["16"]))
        #expect(try g.stringAttribute(ResultsKeys.editFamily) == "remove")
        #expect(!(try ResultsFile(opening: url).run(id).group("project")).hasAttribute(ResultsKeys.gridAxes))
        let json = try JSONSerialization.jsonObject(with: Data(RunJSON.json(runID: id, back.variants).utf8)) as? [String: Any]
        let entries = json?["variants"] as? [[String: Any]] ?? []
        #expect(entries.count == 5)
        #expect(entries[2]["edit_family"] as? String == "remove")
        #expect(entries[2]["grid"] as? [String: String] == ["top": "16"])
        #expect(entries[0]["grid"] == nil)
    }

    @Test func paretoFrontier() {
        // (x, y), lower is better on both.
        let points: [(x: Double, y: Double)] = [
            (0, 6),     // 0: on it (lowest x)
            (0.5, 5),   // 1: on it
            (1, 5.5),   // 2: dominated by 1
            (3, 4),     // 3: on it
            (10, 2),    // 4: on it (lowest y)
            (10, 3),    // 5: dominated by 4 (same x, higher y)
            (3, 4),     // 6: equal to 3: both on it
            (.nan, 1),  // 7: not finite: never on it
            (12, 2),    // 8: dominated by 4 (same y, higher x)
        ]
        #expect(TradeOff.paretoFrontier(points) == [0, 1, 3, 6, 4])
        #expect(TradeOff.paretoFrontier([]) == [])
        #expect(TradeOff.paretoFrontier([(1, 1)]) == [0])
    }

    @Test func curveOfASweepRun() throws {
        guard case .success(let t) = TradeOff.make(Self.record().variants) else { Issue.record("no trade-off"); return }
        #expect(t.biasSuite == "pronoun-bias" && t.perplexitySuite == "perplexity" && t.perplexityMetric == "token_perplexity")
        // x: perplexity change relative to base in %, tolerance 1e-9.
        #expect(abs(t.edits[2].x - 3.0) < 1e-9 && t.edits[2].y == 4.0)
        #expect(t.families.map(\.name) == ["remove", "project"])
        // The top line in numeric order (1, 4, 16), not the order of the variants (1, 16, 4).
        let lines = t.lines(family: t.families[0].points)
        #expect(lines.count == 1 && lines[0].axis == "top")
        #expect(lines[0].line.map { t.edits[$0].variant } == ["remove[top=1]", "remove[top=4]", "remove[top=16]"])
        #expect(t.lines(family: t.families[1].points).isEmpty)
        // All but project (5.5 at +1 %, dominated by top=1: 5.0 at +0.5 %) are on the frontier.
        #expect(t.frontier.map { t.all[$0].variant } == ["base", "remove[top=1]", "remove[top=4]", "remove[top=16]"])

        let html = ReportHTML.render(Self.record())
        #expect(html.contains("Bias / perplexity trade-off"))
        #expect(html.contains("Pareto frontier"))
        // One polyline for the top axis, one for the frontier; the points labelled with their values.
        #expect(html.components(separatedBy: "<polyline").count - 1 == 2)
        #expect(html.contains(">16</text>") && html.contains(">project</text>") && html.contains("remove (top)"))
        #expect(html.contains("<td class=l>remove[top=4]</td><td>4.0000</td><td>103.0000</td><td>+3.0000</td><td>✓</td>"))
    }

    @Test func curveSaysWhatIsMissing() {
        var r = Self.record()
        for i in r.variants.indices { r.variants[i].suites.removeAll { $0.suiteName == "perplexity" } }
        let html = ReportHTML.render(r)
        #expect(html.contains("No trade-off curve: the run has no perplexity suite"))
        #expect(!html.contains("Pareto frontier"))
        for i in r.variants.indices { r.variants[i].suites.removeAll() }
        #expect(ReportHTML.render(r).contains("no pronoun-bias suite") && ReportHTML.render(r).contains("and no perplexity suite"))
    }
}

/// More variants than fit as columns (a sweep): one row per variant.
@Suite struct SummaryTableTests {
    @Test func manyVariantsAreRows() {
        let table = SummaryTable.render(TradeOffTests.record().variants)
        let lines = table.split(separator: "\n").map(String.init)
        #expect(lines.count == 2 + 5, "\(table)")
        #expect(lines[0].hasPrefix("variant") && lines[0].contains("pronoun-bias bias") && lines[0].contains("perplexity token_perplexity"))
        // remove[top=4]: bias 4 (Δ -2 vs base 6), perplexity 103 (Δ +3).
        let row = lines.first { $0.hasPrefix("remove[top=4] ") } ?? ""
        #expect(row.split(separator: " ").map(String.init) == ["remove[top=4]", "4.0000", "-2.0000", "103.0000", "+3.0000"], "\(row)")
        // Up to four variants: one column each, as before.
        let few = SummaryTable.render(Array(TradeOffTests.record().variants.prefix(2)))
        #expect(few.split(separator: "\n").first?.hasPrefix("suite") == true && few.contains("Δ remove[top=1]"), "\(few)")
    }
}
