import Foundation
import Testing
import TestSupport
@testable import BackpackResults

/// `backpack report --format csv|markdown|latex|table`: the tidy CSV against the HDF5 file, the
/// significance marks by the chosen correction, the 100-column terminal table.
@Suite struct ExportTests {
    /// A run of base, a single edit and a three-point sweep with long names, on `suites` suites of
    /// two metrics each, with intervals, paired tests, Holm and BH values and metric metadata.
    static func record(suites: Int = 2) -> RunRecord {
        let variants = ["base", "remove-gender-sense", "sweep-project-strength[strength=0.25]", "sweep-project-strength[strength=0.5]",
                        "sweep-project-strength[strength=1]"]
        var out: [VariantResults] = []
        for (vi, name) in variants.enumerated() {
            var list: [SuiteResult] = []
            for k in 0..<suites {
                var s = SuiteResult(suiteName: k == 0 ? "pronoun-bias" : "suite-number-\(k)", suiteVersion: "1", dataSHA256: "ab")
                s.kind = k == 0 ? "pronoun_bias" : "sentence_pairs"
                s.metrics = [MetricInfo("bias", "mean over prompts of max(p_he/p_she, p_she/p_he), \"quoted\", with commas", unit: "ratio", ideal: 1, better: .lower),
                             MetricInfo("pct_prefers_a", "share of pairs preferring a", unit: "%", ideal: 50, better: .closerToIdeal)]
                let bias = 6.123456789012345 - Double(vi) * 0.7 + Double(k) / 3, pct = 51.5 + Double(vi) * 1.1e-7
                s.set("bias", bias, headline: true)
                s.set("pct_prefers_a", pct, headline: true)
                s.set(ResultsKeys.ciUnit, "noun")
                s.set("n_nouns", 78 + k)
                for (m, x) in [("bias", bias), ("pct_prefers_a", pct)] {
                    s.set(m + ResultsKeys.ciLowSuffix, x - 0.25)
                    s.set(m + ResultsKeys.ciHighSuffix, x + 1e-9)
                    if vi > 0 {
                        s.set(m + ResultsKeys.diffCILowSuffix, -0.1 * Double(vi))
                        s.set(m + ResultsKeys.diffCIHighSuffix, 0.05)
                        // Raw p significant for every edit; Holm only for vi >= 2, BH for vi >= 3 on bias.
                        s.set(m + ResultsKeys.diffPSuffix, 0.01 / Double(vi))
                        s.set(m + ResultsKeys.diffPHolmSuffix, vi >= 2 ? 0.02 : 0.2)
                        s.set(m + ResultsKeys.diffQSuffix, m == "bias" && vi >= 3 ? 0.001 : 0.07)
                        s.set(m + ResultsKeys.testSuffix, m == "bias" ? "sign_flip_monte_carlo" : "paired_bootstrap")
                        s.set(m + ResultsKeys.testResamplesSuffix, 10_000)
                    }
                }
                list.append(s)
            }
            let grid: GridPoint? = vi == 0 ? nil : vi == 1 ? GridPoint(family: "remove-gender-sense")
                : GridPoint(family: "sweep-project-strength", axes: ["strength"], values: [["0.25", "0.5", "1"][vi - 2]])
            out.append(VariantResults(variant: name, editText: vi == 0 ? "" : "edit \(name)", editSHA256: vi == 0 ? "" : "sha\(vi)",
                                      grid: grid, suites: list))
        }
        return RunRecord(id: "run-1", provenance: RunProvenance(toolVersion: "t", gitCommit: "g", modelPath: "m", modelSHA256: "s",
                                                                host: "h", created: "c"),
                         commandLine: "backpack eval", elapsedSeconds: 1, variants: out)
    }

    /// Writes the run, exports the CSV from what `record` reads back, and checks every field
    /// against the HDF5 attributes read directly from the groups.
    @Test func csvEqualsTheHDF5File() throws {
        let dir = try TestPaths.temporaryDirectory("export-csv")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("r.h5")
        let id = try ResultsFile.append(Self.record(), to: url)
        let file = try ResultsFile(opening: url)
        let csv = TidyExport.csv(try TidyExport.rows(try file.record(id)))
        let table = TidyExport.parseCSV(csv)
        #expect(table.first == TidyExport.columns)
        let rows = table.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(TidyExport.columns, $0)) }
        #expect(rows.count == 5 * 2 * 2, "one row per variant, suite and metric")
        #expect(table.allSatisfy { $0.count == TidyExport.columns.count })
        var checked = 0
        func num(_ field: String?) -> Double? { field.flatMap { $0.isEmpty ? nil : Double($0) } }
        for r in rows {
            let run = try file.run(try #require(r["run"]))
            let vg = try run.group(try #require(r["variant"]))
            let sg = try vg.group(try #require(r["suite"]))
            let m = try #require(r["metric"])
            // Numbers: exactly the stored doubles (the CSV writes Swift's round-tripping form).
            for (column, key) in [("value", m), ("ci_low", m + "_ci_low"), ("ci_high", m + "_ci_high"), ("diff_ci_low", m + "_diff_ci_low"),
                                  ("diff_ci_high", m + "_diff_ci_high"), ("p", m + "_diff_p"), ("p_holm", m + "_diff_p_holm"), ("q", m + "_diff_q"),
                                  ("ideal", m + "_ideal")] {
                let stored: Double? = sg.hasAttribute(key) ? try sg.doubleAttribute(key) : nil
                #expect(num(r[column]) == stored, "\(column) of \(r["variant"]!)/\(r["suite"]!)/\(m): csv \(r[column] ?? "nil"), h5 \(String(describing: stored))")
                checked += 1
            }
            for (column, key) in [("kind", "kind"), ("test", m + "_test"), ("unit", m + "_unit"), ("better", m + "_better"),
                                  ("description", m + "_description"), ("ci_unit", "ci_unit")] {
                let stored = sg.hasAttribute(key) ? try sg.stringAttribute(key) : ""
                #expect(r[column] == stored, "\(column): csv \(r[column] ?? "nil"), h5 \(stored)")
                checked += 1
            }
            let base = try run.group("base").group(r["suite"]!).doubleAttribute(m)
            if r["variant"] == "base" { #expect(r["diff"] == "") } else { #expect(num(r["diff"]) == (try sg.doubleAttribute(m)) - base) }
            #expect(Int(r["n_units"] ?? "") == (try sg.intAttribute("n_\(try sg.stringAttribute("ci_unit"))s")))
            let family = vg.hasAttribute("edit_family") ? try vg.stringAttribute("edit_family") : ""
            #expect(r["edit_family"] == family)
            var grid = ""
            if vg.hasAttribute("grid_axes"), case .strings(let axes) = try vg.attribute("grid_axes"), case .strings(let values) = try vg.attribute("grid_values") {
                grid = zip(axes, values).map { "\($0)=\($1)" }.joined(separator: ";")
            }
            #expect(r["grid"] == grid)
            checked += 4
        }
        #expect(checked == 20 * 19)
        // The quoted description survives the round trip, commas and quotes included.
        #expect(rows.first?["description"] == "mean over prompts of max(p_he/p_she, p_she/p_he), \"quoted\", with commas")
        #expect(csv.contains("\"mean over prompts of max(p_he/p_she, p_she/p_he), \"\"quoted\"\", with commas\""))
        #expect(rows.first { $0["variant"] == "sweep-project-strength[strength=0.5]" }?["grid"] == "strength=0.5")
    }

    @Test func selectionByMetricAndGlob() throws {
        let r = Self.record()
        let rows = try TidyExport.rows(r, selection: ReportSelection(metrics: ["pronoun-bias.bias", "pct_prefers_a"], variants: "sweep-*"))
        #expect(Set(rows.map(\.variant)) == ["base", "sweep-project-strength[strength=0.25]", "sweep-project-strength[strength=0.5]",
                                              "sweep-project-strength[strength=1]"])
        #expect(Set(rows.map { "\($0.suite).\($0.metric)" }) == ["pronoun-bias.bias", "pronoun-bias.pct_prefers_a", "suite-number-1.pct_prefers_a"])
        // A name with brackets selects itself although [...] is a glob class.
        let one = try TidyExport.rows(r, selection: ReportSelection(variants: "sweep-project-strength[strength=0.5]"))
        #expect(Set(one.map(\.variant)) == ["base", "sweep-project-strength[strength=0.5]"])
        #expect(throws: ReportSelection.Invalid.self) { try TidyExport.rows(r, selection: ReportSelection(metrics: ["nope"])) }
        do { _ = try TidyExport.rows(r, selection: ReportSelection(variants: "zzz*")); Issue.record("no error") } catch {
            #expect("\(error)".contains("--variants 'zzz*'") && "\(error)".contains("remove-gender-sense"), "\(error)")
        }
    }

    /// A wide run: 6 suites, long sweep names; no line of the default table exceeds 100 characters.
    @Test func terminalTableFits100Columns() throws {
        let r = Self.record(suites: 6)
        let text = try ReportTables.terminal(r)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let widest = lines.map(\.count).max() ?? 0
        #expect(widest <= 100, "widest line \(widest): \(lines.first { $0.count == widest } ?? "")")
        // Everything is there: every suite, every point and every value.
        for k in 1..<6 { #expect(text.contains("suite-number-\(k)")) }
        #expect(text.contains("  strength=0.25") && text.contains("sweep-project-strength") && text.contains("remove-gender-sense"))
        #expect(text.contains(ReportTables.fmt(6.123456789012345 - 0.7 * 4)))
        // The wide layout is the old one, far wider.
        let wide = SummaryTable.render(r.variants)
        #expect((wide.split(separator: "\n").map(\.count).max() ?? 0) > 200)
    }

    /// Marks follow the correction: BH marks bias for variants 3 and 4, Holm every metric from
    /// variant 2, none every edit; the legend names the correction.
    @Test func marksFollowTheCorrection() throws {
        let r = Self.record()
        func marked(_ c: Significance.Correction) throws -> Set<String> {
            let md = try ReportTables.markdown(r, options: .init(selection: ReportSelection(metrics: ["pronoun-bias.bias"]), significance: Significance(correction: c)))
            return Set(md.split(separator: "\n").filter { $0.hasPrefix("| ") && $0.hasSuffix("\\* |") }.map { String($0.split(separator: "|")[0]).trimmingCharacters(in: .whitespaces) })
        }
        #expect(try marked(.bh) == ["sweep-project-strength[strength=0.5]", "sweep-project-strength[strength=1]"])
        #expect(try marked(.holm).count == 3)
        #expect(try marked(.none).count == 4)
        let md = try ReportTables.markdown(r)
        #expect(md.contains("Benjamini-Hochberg") && md.contains("(q=0.001)\\*"), "\(md)")
        #expect(try ReportTables.markdown(r, options: .init(significance: Significance(correction: .holm))).contains("Holm"))
        // alpha moves the line: at 0.0005 nothing is significant by BH.
        #expect(!(try ReportTables.markdown(r, options: .init(significance: Significance(alpha: 0.0005)))).contains("\\* |"))
        let text = try ReportTables.terminal(r, options: .init(significance: Significance(correction: .holm)))
        #expect(text.contains("* p_holm < 0.05 (Holm"), "\(text)")
        let html = ReportHTML.render(r, significance: Significance(correction: .bh))
        #expect(html.components(separatedBy: "<td class=sig").count - 1 == 4)     // bias of two points, in two suites
        #expect(html.contains("q &lt; 0.05 (Benjamini-Hochberg"))
        // The wide table marks too.
        #expect(SummaryTable.render(r.variants).contains("p=0.003*"))
    }

    @Test func latexIsBooktabsAndEscaped() throws {
        var r = Self.record()
        r.variants[1].variant = "a_b&c%d#e$f~g^h{i}\\"
        let tex = try ReportTables.latex(r)
        for needed in ["\\toprule", "\\midrule", "\\bottomrule", "\\begin{tabular}{lrrrrrrrr}", "\\cmidrule(lr){2-3}",
                       "a\\_b\\&c\\%d\\#e\\$f\\textasciitilde{}g\\textasciicircum{}h\\{i\\}\\textbackslash{}", "$^{*}$", "Benjamini-Hochberg",
                       "q \\textless{} 0.05"] {
            #expect(tex.contains(needed), "\(needed)\n\(tex)")
        }
        // Every body row has as many cells as the header declares.
        let body = tex.split(separator: "\n").filter { $0.hasSuffix("\\\\") && !$0.contains("multicolumn") }
        #expect(body.allSatisfy { $0.components(separatedBy: " & ").count == 9 }, "\(body)")
    }

    @Test func jsonCarriesMetadataAndCorrections() throws {
        let r = Self.record()
        let object = try JSONSerialization.jsonObject(with: Data(try RunJSON.json(runID: r.id, r.variants).utf8)) as? [String: Any]
        let variants = object?["variants"] as? [[String: Any]] ?? []
        let suite = ((variants.last?["suites"] as? [String: Any])?["pronoun-bias"] as? [String: Any])
        let bias = (suite?["metrics"] as? [String: Any])?["bias"] as? [String: Any]
        #expect(bias?["unit"] as? String == "ratio" && bias?["better"] as? String == "lower" && bias?["ideal"] as? Double == 1)
        #expect(bias?["q"] as? Double == 0.001 && bias?["p_holm"] as? Double == 0.02 && bias?["significant"] as? Bool == true)
        #expect(bias?["test"] as? String == "sign_flip_monte_carlo" && suite?["kind"] as? String == "pronoun_bias")
        #expect((object?["significance"] as? [String: Any])?["correction"] as? String == "bh")
    }

    /// Labels of points crowded around one spot are all placed, apart, the far ones with leaders.
    @Test func crowdedLabelsStayApart() {
        let labels = TradeOffLabels(plot: (70, 20, 690, 440))
        var placed: [(x: Double, y: Double, w: Double)] = []
        var spots: [TradeOffLabels.Spot] = []
        for i in 0..<10 {
            if let s = labels.place("0.\(i)", at: (380 + Double(i % 3), 230 + Double(i % 2)), avoiding: &placed) { spots.append(s) }
        }
        #expect(spots.count == 10)
        #expect(spots.filter { $0.leader != nil }.count >= 6)
        for (i, a) in placed.enumerated() {
            for b in placed[(i + 1)...] {
                let overlap = a.x < b.x + b.w && b.x < a.x + a.w && abs(a.y - b.y) < TradeOffLabels.lineHeight
                #expect(!overlap, "\(a) and \(b)")
            }
        }
    }
}
