import Foundation
import Testing
import TestSupport

/// `backpack reproduce paper` end to end without the network: small random models served by the
/// imitation Hub under the published repository ids, tiny LAMBADA and WikiText files served by it
/// too (through BACKPACK_DATA_ENDPOINT, at the canonical URLs' paths). The small models' numbers
/// are not compared with the paper's; the table's shape, rows and "paper" column are.
@Suite struct ReproducePaperTests {
    /// The published numbers the "paper" column must show (Hewitt et al. 2023, Tables 5 and 2).
    static let table5Paper: [(model: String, variant: String, bias: String, reduction: String)] = [
        ("Backpack-Small (stanfordnlp/backpack-gpt2)", "Unmodified", "4.34", ""),
        ("Backpack-Small (stanfordnlp/backpack-gpt2)", "Remove-Sense10", "2.88", "44 %"),
        ("Backpack-Small (stanfordnlp/backpack-gpt2)", "Optimize-Sense10", "2.16", "65 %"),
        ("Transformer (the paper's own, not released)", "Unmodified", "7.02", ""),
        ("Transformer (the paper's own, not released)", "Project-Nullspace", "6.72", "5 %"),
        ("Transformer (the paper's own, not released)", "Optimize-Nullspace", "7.02", "0 %"),
        ("extra, not the paper's Transformer: GPT-2 small (openai-community/gpt2)", "Unmodified", "none", ""),
        ("extra, not the paper's Transformer: GPT-2 small (openai-community/gpt2)", "Project-Nullspace", "none", ""),
    ]
    static let table2Paper: [(metric: String, paper: String)] = [
        ("OpenWebText PPL", "20.1"), ("LAMBADA PPL", "26.5"), ("LAMBADA ACC (%)", "37.5"), ("WikiText PPL", "40.9")]

    /// A temporary folder with the two served models, the served data files and tiny suites.
    struct Setup {
        let root: URL
        var served: URL { root.appendingPathComponent("served") }
        var lambadaSuite: URL { root.appendingPathComponent("lambada-tiny.yaml") }
        var wikitextSuite: URL { root.appendingPathComponent("wikitext-tiny.yaml") }

        init() throws {
            root = try TestPaths.temporaryDirectory("reproduce")
            // Random models with GPT-2's vocabularies (the built-in tokenizer applies, as for the
            // published checkpoints) and tiny widths; 16 senses as the published Backpack (sense 10 is edited).
            let backpackConfig = """
                {"architectures": ["BackpackGPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 16, "n_layer": 1,
                 "n_head": 2, "n_positions": 64, "vocab_size": 50264, "num_senses": 16, "sense_intermediate_scale": 2,
                 "scale_attn_by_inverse_layer_idx": true}
                """
            let gpt2Config = """
                {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 16, "n_layer": 1,
                 "n_head": 2, "n_positions": 64, "vocab_size": 50257}
                """
            for (name, config) in [("backpack", backpackConfig), ("gpt2", gpt2Config)] {
                let file = root.appendingPathComponent("\(name).json")
                try Data(config.utf8).write(to: file)
                let r = try backpack(["init", "--config", file.path, "--seed", "3", "--out", served.appendingPathComponent(name).path])
                guard r.status == 0 else { throw TestFailure("backpack init \(name): \(r.err)") }
            }
            // At the canonical URLs' paths (openaipublic.../gpt-2/data/lambada_test.jsonl, wikitext.smerity.com/wikitext-2-raw-v1.zip).
            let data = served.appendingPathComponent("data")
            try FileManager.default.createDirectory(at: data.appendingPathComponent("gpt-2/data"), withIntermediateDirectories: true)
            let lambada = [
                "the man was with the car and then he drove",
                "She said that it was late",
                "He looked over at the house and saw the door",
            ].map { "{\"text\": \"\($0)\"}" }.joined(separator: "\n") + "\n"
            try Data(lambada.utf8).write(to: data.appendingPathComponent("gpt-2/data/lambada_test.jsonl"))
            let wiki = " \n = Robert Boulter = \n \n Robert Boulter is an English film , television and theatre actor . He had a guest @-@ starring role in 2000 . \n \n = = Career = = \n He appeared in ( the play ) Herons . \n = Second page = \n \n It was 3 @.@ 5 metres long . \n"
            try Data(wiki.utf8).write(to: root.appendingPathComponent("wiki.test.raw"))
            let zip = Process()
            zip.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            zip.arguments = ["python3", "-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1], 'w').write(sys.argv[2], 'wikitext-2-raw/wiki.test.raw')",
                             data.appendingPathComponent("wikitext-2-raw-v1.zip").path, root.appendingPathComponent("wiki.test.raw").path]
            try zip.run(); zip.waitUntilExit()
            guard zip.terminationStatus == 0 else { throw TestFailure("python3 zipfile failed") }
            // The shipped suites pin the real files' digests; these read the same cache paths and
            // URLs (the data fetch's one source) unpinned.
            try Data("""
                suite: lambada
                version: 1
                kind: lambada
                data_file: lambada/lambada_test.jsonl
                url: https://openaipublic.blob.core.windows.net/gpt-2/data/lambada_test.jsonl

                """.utf8).write(to: lambadaSuite)
            try Data("""
                suite: wikitext
                version: 1
                kind: wikitext
                data_file: wikitext/wiki.test.raw
                url: https://wikitext.smerity.com/wikitext-2-raw-v1.zip

                """.utf8).write(to: wikitextSuite)
        }

        func server() throws -> HubServer {
            try HubServer(repos: ["stanfordnlp/backpack-gpt2": served.appendingPathComponent("backpack"),
                                  "openai-community/gpt2": served.appendingPathComponent("gpt2"),
                                  "mirror/data": served.appendingPathComponent("data")], in: root, lifetime: 120)
        }

        /// The command's environment: the Hub and data endpoints (a closed port when offline) and the caches.
        func environment(_ server: HubServer?, hubCache: String = "hub-cache") -> [String: String] {
            let endpoint = server?.endpoint ?? "http://127.0.0.1:9"
            return ["HF_ENDPOINT": endpoint, "HF_HUB_CACHE": root.appendingPathComponent(hubCache).path,
                    "HF_HOME": root.appendingPathComponent("hf-home").path,
                    "BACKPACK_DATA_ENDPOINT": server.map { "\($0.endpoint)/mirror/data/resolve/main" } ?? endpoint]
        }

        func arguments(out: String, dataCache: String = "data-cache") -> [String] {
            ["reproduce", "paper", "--out", root.appendingPathComponent(out).path,
             "--cache-dir", root.appendingPathComponent(dataCache).path,
             "--lambada-suite", lambadaSuite.path, "--wikitext-suite", wikitextSuite.path, "--timeout", "10"]
        }
    }

    /// The cells of the Markdown table rows that start with `| first |`.
    static func rows(_ text: String, first: String) -> [[String]] {
        text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("| \(first) |") }.map { line in
            line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }

    @Test func reproducesAgainstLocalServersThenFromTheCache() throws {
        let setup = try Setup()
        defer { try? FileManager.default.removeItem(at: setup.root) }
        let server = try setup.server()
        defer { server.stop() }
        let r = try backpack(setup.arguments(out: "out"), environment: setup.environment(server))
        #expect(r.status == 0, "\(r.err)")
        print("backpack reproduce paper:\n\(r.out)")

        // Table 5: the header, then every row in order, with the paper's column as published.
        let lines = r.out.split(separator: "\n").map(String.init)
        #expect(lines.contains("| model | variant | this run | paper | difference | reduction (this run) | reduction (paper) |"))
        let table5 = lines.filter { line in Self.table5Paper.contains { line.hasPrefix("| \($0.model) |") } }.map { line in
            line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast().map { $0.trimmingCharacters(in: .whitespaces) }
        }
        try #require(table5.count == Self.table5Paper.count, "\(r.out)")
        for (cells, want) in zip(table5, Self.table5Paper) {
            #expect(cells.count == 7 && cells[0] == want.model && cells[1] == want.variant && cells[3] == want.bias && cells[6] == want.reduction, "\(cells)")
        }
        // This run's values: measured for the Backpack and GPT-2 rows (a ratio >= 1, as stored in
        // results.h5), absent for the paper's Transformer; difference = this run - paper (both as
        // printed, 2 decimals: 0.005 for rounding); reduction = (B - B') / (B - 1) from the stored
        // biases, to the printed whole percent (0.5).
        let out = setup.root.appendingPathComponent("out")
        func storedBias(_ run: String) throws -> [String: Double] {
            let j = try backpack(["report", out.appendingPathComponent("results.h5").path, "--run", run, "--json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(j.out.utf8)) as? [String: Any], "\(j.err)")
            var bias: [String: Double] = [:]
            for v in object["variants"] as? [[String: Any]] ?? [] {
                let suites = v["suites"] as? [String: Any]
                bias[v["variant"] as? String ?? "?"] = ((suites?["pronoun-bias"] as? [String: Any])?["aggregates"] as? [String: Any])?["bias"] as? Double
            }
            return bias
        }
        let backpackBias = try storedBias("table5-backpack"), gpt2Bias = try storedBias("extra-gpt2-nullspace")
        let stored: [String: (b: Double?, edited: Double?)] = [
            "Unmodified": (backpackBias["base"], backpackBias["base"]),
            "Remove-Sense10": (backpackBias["base"], backpackBias["paper-remove-sense10"]),
            "Optimize-Sense10": (backpackBias["base"], backpackBias["paper-optimize-sense10"]),
            "Project-Nullspace": (gpt2Bias["base"], gpt2Bias["gpt2-nullspace-baseline"])]
        let measured = table5.filter { !$0[0].hasPrefix("Transformer") }
        #expect(measured.count == 5)
        for cells in measured {
            let value = try #require(Double(cells[2]), "\(cells)")
            let b = try #require(cells[0].hasPrefix("Backpack") ? stored[cells[1]]?.b : gpt2Bias["base"], "\(cells)")
            let edited = try #require(cells[1] == "Unmodified" ? b : stored[cells[1]]?.edited, "\(cells)")
            #expect(edited >= 1 && abs(value - edited) <= 0.005, "\(cells) stored \(edited)")
            if let paper = Double(cells[3]) {
                #expect(abs(try #require(Double(cells[4])) - (value - paper)) <= 0.0051, "\(cells)")
            }
            if cells[1] != "Unmodified", b > 1 {
                let percent = try #require(Double(cells[5].replacingOccurrences(of: " %", with: "")), "\(cells)")
                #expect(abs(percent - 100 * (b - edited) / (b - 1)) <= 0.5 + 1e-9, "\(cells)")
            }
        }
        for cells in table5 where cells[0].hasPrefix("Transformer") { #expect(cells[2] == "not run" && cells[4] == "not compared") }

        // Table 2: the four metrics with the paper's numbers; OpenWebText says why it is not reproduced.
        #expect(lines.contains("| metric | this run | paper | difference |"))
        for want in Self.table2Paper {
            let cells = try #require(Self.rows(r.out, first: want.metric).first, "no row \(want.metric)")
            #expect(cells.count == 4 && cells[2] == want.paper, "\(cells)")
            if want.metric == "OpenWebText PPL" {
                #expect(cells[1] == "not reproduced" && cells[3].contains("not public"))
            } else {
                let value = try #require(Double(cells[1]), "\(cells)")
                #expect(value.isFinite && value >= 0)
                #expect(abs(try #require(Double(cells[3])) - (value - Double(want.paper)!)) <= 0.051, "\(cells)")
            }
        }

        // The output folder: results (three runs), the table as printed, one HTML report per run; no temporary folder left.
        let files = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        #expect(files == ["report-gpt2.html", "report-table2.html", "report.html", "results.h5", "table.md"])
        #expect(try String(contentsOf: out.appendingPathComponent("table.md"), encoding: .utf8) == r.out)
        let runs = try backpack(["report", out.appendingPathComponent("results.h5").path, "--list"])
        #expect(runs.out.split(separator: "\n").sorted() == ["extra-gpt2-nullspace", "table2-backpack", "table5-backpack"], "\(runs.out)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: setup.root.path).filter { $0.hasPrefix(".out") }.isEmpty)
        let downloads = try server.requests().filter { $0.method == "GET" }.count
        #expect(downloads > 0)

        // Again with every server gone: the models and data come from the caches, the same table.
        server.stop()
        let again = try backpack(setup.arguments(out: "out-2"), environment: setup.environment(nil))
        #expect(again.status == 0, "\(again.err)")
        #expect(again.out == r.out)
    }

    @Test func offlineSaysWhatCouldNotBeFetchedInOneLineAndWritesNothing() throws {
        let setup = try Setup()
        defer { try? FileManager.default.removeItem(at: setup.root) }
        let r = try backpack(setup.arguments(out: "out"), environment: setup.environment(nil))
        #expect(r.status == 3, "\(r.err)")
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 1 && r.err.contains("could not fetch the model stanfordnlp/backpack-gpt2"), "\(r.err)")
        #expect(r.out.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: setup.root.appendingPathComponent("out").path))

        // The models in the cache, the data not: the line names the data set.
        let server = try setup.server()
        defer { server.stop() }
        for repo in ["stanfordnlp/backpack-gpt2", "openai-community/gpt2"] {
            let d = try backpack(["download", repo], environment: setup.environment(server))
            #expect(d.status == 0, "\(d.err)")
        }
        server.stop()
        let data = try backpack(setup.arguments(out: "out"), environment: setup.environment(nil))
        #expect(data.status == 3, "\(data.err)")
        #expect(data.err.split(separator: "\n").count == 1 && data.err.contains("could not fetch lambada data from http://127.0.0.1:9/gpt-2/data/lambada_test.jsonl"), "\(data.err)")
        #expect(!FileManager.default.fileExists(atPath: setup.root.appendingPathComponent("out").path))
    }
}
