import BackpackResults
import Foundation
import Testing
import TestSupport

/// A sweep end to end on the tiny fixture model: `backpack eval` evaluates every grid point as its
/// own variant, stores the coordinates (read back by ResultsFile and `report --json`), and the
/// report draws the trade-off curve; `backpack edit` refuses the grid.
@Suite struct SweepEvalTests {
    static let sweep = """
        schema: backpack-edit/1
        interventions:
          - words: [the, was, an]
            senses: {localized: {pair: [he, she], top: {sweep: [1, 2]}}}
            scale: {sweep: [0, 0.5]}
        """

    @Test func sweepRunStoresCoordinatesAndDrawsTheCurve() throws {
        let tmp = try TestPaths.temporaryDirectory("sweep-e2e")
        defer { try? FileManager.default.removeItem(at: tmp) }
        func write(_ text: String, _ name: String) throws -> String {
            let u = tmp.appendingPathComponent(name)
            try text.write(to: u, atomically: true, encoding: .utf8)
            return u.path
        }
        let pronouns = try write(TinySuites.pronouns, "tiny.yaml")
        let ppl = try write("suite: tiny-ppl\nversion: 1\nkind: perplexity\ntext: \"the man was with the car. When he said that my cook was\"\nmax_length: 8\nstride: 4\nprepend_eos: false\n", "ppl.yaml")
        let grid = try write(Self.sweep, "grid.yaml")
        let single = TestPaths.repoRoot.appendingPathComponent("Tests/EditingTests/Edits/scale0.yaml").path
        let h5 = tmp.appendingPathComponent("results.h5").path
        let r = try BackpackRun.run(["eval", "--model", TestPaths.tinyModel.path, "--tokenizer", TestPaths.toyTokenizer.path,
                                     "--suite", pronouns, "--suite", ppl, "--edit", grid, "--edit", single, "--out", h5, "--json"])
        #expect(r.status == 0 && !r.signaled, "\(r.err)")
        let names = ["base", "grid[top=1,scale=0]", "grid[top=1,scale=0.5]", "grid[top=2,scale=0]", "grid[top=2,scale=0.5]", "scale0"]
        // Evaluated together, in one run.
        #expect(r.err.contains("(6 variant(s) evaluated together)"), "\(r.err)")

        let file = try ResultsFile(opening: URL(fileURLWithPath: h5))
        let id = try #require(try file.runs().last)
        let record = try file.record(id)
        #expect(record.variants.map(\.variant) == names)
        #expect(record.variants[3].grid == GridPoint(family: "grid", axes: ["top", "scale"], values: ["2", "0"]))
        #expect(record.variants[5].grid == GridPoint(family: "scale0"))
        #expect(record.variants[0].grid == nil)
        #expect(record.variants[3].editText.hasSuffix("# sweep point: top=2, scale=0\n"))
        #expect(Set(record.variants.dropFirst().map(\.editSHA256)).count == 5)
        // Every point is its own edit: their bias values are not all equal.
        let bias = record.variants.compactMap { $0.suites.first { $0.suiteName == "tiny-pronouns" }?["bias"]?.doubleValue }
        #expect(bias.count == 6 && Set(bias.dropFirst().prefix(4)).count > 1, "\(bias)")

        // eval --json and report --json carry the coordinates.
        for out in [r.out, try BackpackRun.run(["report", h5, "--json"]).out] {
            let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
            let variants = json?["variants"] as? [[String: Any]] ?? []
            #expect(variants.map { $0["variant"] as? String } == names, "\(out.prefix(300))")
            #expect(variants.count == 6 && variants[2]["grid"] as? [String: String] == ["top": "1", "scale": "0.5"])
            #expect(variants.count == 6 && variants[2]["edit_family"] as? String == "grid")
        }

        let html = tmp.appendingPathComponent("report.html")
        let report = try BackpackRun.run(["report", h5, "--html", html.path])
        #expect(report.status == 0, "\(report.err)")
        let page = try String(contentsOf: html, encoding: .utf8)
        #expect(page.contains("Bias / perplexity trade-off") && page.contains("Pareto frontier"))
        #expect(page.contains("grid (top, scale)") && page.contains("<td class=l>grid[top=2,scale=0.5]</td>"))
        // Two axes over a 2 x 2 grid: two lines along each axis, plus the frontier when it has 2+ points.
        #expect(page.components(separatedBy: "<polyline").count - 1 >= 4)

        // One checkpoint cannot hold a grid.
        let edit = try BackpackRun.run(["edit", "--model", TestPaths.tinyModel.path, "--tokenizer", TestPaths.toyTokenizer.path,
                                        "--edit", grid, "--out", tmp.appendingPathComponent("edited").path])
        #expect(edit.status != 0 && edit.err.contains("grid.yaml:4:") && edit.err.contains("expands to 4 variants"), "\(edit.err)")
        #expect(!FileManager.default.fileExists(atPath: tmp.appendingPathComponent("edited").path))

        // One point of the grid, named as eval names its variant, is one checkpoint.
        let point = try BackpackRun.run(["edit", "--model", TestPaths.tinyModel.path, "--tokenizer", TestPaths.toyTokenizer.path,
                                         "--edit", grid + "[top=2,scale=0.5]", "--out", tmp.appendingPathComponent("edited").path])
        #expect(point.status == 0, "\(point.err)")
        let manifest = try String(contentsOf: tmp.appendingPathComponent("edited/edit-manifest.json"), encoding: .utf8)
        #expect(manifest.contains("# sweep point: top=2, scale=0.5"), "the manifest records which point")
        let missing = try BackpackRun.run(["edit", "--model", TestPaths.tinyModel.path, "--tokenizer", TestPaths.toyTokenizer.path,
                                           "--edit", grid + "[top=3,scale=0.5]", "--out", tmp.appendingPathComponent("edited-2").path])
        #expect(missing.status != 0 && missing.err.contains("no such grid point") && missing.err.contains("[top=2,scale=0.5]"), "\(missing.err)")
    }

    /// A sweep run killed after some results resumes: each grid point is its own plan line.
    @Test func sweepRunResumes() throws {
        let tmp = try TestPaths.temporaryDirectory("sweep-resume")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let pronouns = tmp.appendingPathComponent("tiny.yaml"), grid = tmp.appendingPathComponent("grid.yaml")
        try TinySuites.pronouns.write(to: pronouns, atomically: true, encoding: .utf8)
        try Self.sweep.write(to: grid, atomically: true, encoding: .utf8)
        let h5 = tmp.appendingPathComponent("results.h5").path
        let args = ["eval", "--model", TestPaths.tinyModel.path, "--tokenizer", TestPaths.toyTokenizer.path,
                    "--suite", pronouns.path, "--edit", grid.path, "--out", h5]
        let killed = try BackpackRun.run(args + ["--kill-after-stored", "2"])
        #expect(killed.signaled)
        let resumed = try BackpackRun.run(args + ["--resume"])
        #expect(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.err.contains("2 of 5 results already stored"), "\(resumed.err)")
        let file = try ResultsFile(opening: URL(fileURLWithPath: h5))
        let record = try file.record(try #require(try file.runs().last))
        #expect(record.variants.count == 5 && record.variants.allSatisfy { $0.suites.count == 1 })
        #expect(record.variants[4].grid == GridPoint(family: "grid", axes: ["top", "scale"], values: ["2", "0.5"]))
    }
}
