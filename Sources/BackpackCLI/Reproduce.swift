import ArgumentParser
import BackpackEvaluation
import BackpackHub
import BackpackIO
import Foundation

struct Reproduce: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Reproduce published results.", subcommands: [ReproducePaper.self])
}

/// The published numbers, written once. Hewitt, Thickstun, Manning and Liang, "Backpack Language
/// Models", ACL 2023: Table 5 (pronoun bias ratio) and Table 2 (Backpack-Small, which is
/// stanfordnlp/backpack-gpt2 on the Hub).
enum PaperNumbers {
    static let citation = "Hewitt et al., \"Backpack Language Models\", ACL 2023"
    /// Table 5, Backpack rows: bias ratio (reduction % as printed in the paper).
    static let backpack: [(variant: String, bias: Double, reduction: Int?)] = [
        ("Unmodified", 4.34, nil), ("Remove-Sense10", 2.88, 44), ("Optimize-Sense10", 2.16, 65)]
    /// Table 5, the paper's matched Transformer (not released, so not compared).
    static let transformer: [(variant: String, bias: Double, reduction: Int?)] = [
        ("Unmodified", 7.02, nil), ("Project-Nullspace", 6.72, 5), ("Optimize-Nullspace", 7.02, 0)]
    /// Table 2, Backpack-Small.
    static let openWebTextPPL = 20.1
    static let lambadaPPL = 26.5
    static let lambadaAccuracy = 37.5     // percent
    static let wikiTextPPL = 40.9
}

/// `backpack reproduce paper`: the paper's Table 5 and Table 2 on the published weights, beside
/// the published numbers. Every input is fetched (or found in the caches) before anything is
/// computed; the outputs are built in a temporary folder renamed to --out at the end.
struct ReproducePaper: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paper",
        abstract: "Table 5 (pronoun bias) and Table 2 (LAMBADA, WikiText) of the Backpack paper on stanfordnlp/backpack-gpt2, beside the published numbers.",
        discussion: """
            Downloads stanfordnlp/backpack-gpt2 and openai-community/gpt2 (Hugging Face cache; HF_ENDPOINT, \
            HF_HUB_CACHE) and the LAMBADA and WikiText files (fetch cache; BACKPACK_DATA_ENDPOINT for a mirror), \
            each only when not cached yet, then runs `backpack eval` three times into OUT/results.h5: \
            pronoun-bias on the Backpack unmodified, Remove-Sense10 and Optimize-Sense10; lambada and \
            wikitext on the unmodified Backpack; pronoun-bias on GPT-2 small with the nullspace baseline \
            (an extra row, not the paper's Transformer). Writes OUT/table.md (printed too) and an HTML \
            report per run. When a download fails: one line naming it, exit status 3, nothing written. \
            See docs/REPRODUCE.md.
            """)

    static let backpackRepo = "stanfordnlp/backpack-gpt2"
    static let gpt2Repo = "openai-community/gpt2"

    @Option(name: .long, help: "Output folder (replaced atomically when complete).") var out: String = "paper-reproduction"
    @Option(name: .long, help: "Data cache (default ~/.cache/backpack-edit, or BACKPACK_CACHE).") var cacheDir: String?
    @Option(name: .long, help: "Suite of the LAMBADA row (name or YAML file).") var lambadaSuite: String = "lambada"
    @Option(name: .long, help: "Suite of the WikiText row (name or YAML file).") var wikitextSuite: String = "wikitext"
    @Option(name: .long, help: "Seconds before giving up on a data download.") var timeout: Int = 60

    /// A download that failed because the server could not be reached or refused it.
    struct Unfetched: Error { let line: String }

    func run() throws {
        let outURL = URL(fileURLWithPath: out)
        try OutputCheck.directory(outURL)
        let evaluations = EvalSupport.evaluationsDirectory()
        guard let edits = evaluations?.deletingLastPathComponent().appendingPathComponent("Edits"),
              FileManager.default.fileExists(atPath: edits.path) else {
            throw ValidationError("the repository's Evaluations/ and Edits/ folders were not found (run from the checkout)")
        }
        let cache = cacheDir.map { URL(fileURLWithPath: $0) } ?? DataLocations.defaultCache
        let backpack: URL, gpt2: URL
        do {
            backpack = try Self.model(Self.backpackRepo)
            gpt2 = try Self.model(Self.gpt2Repo)
            for name in [lambadaSuite, wikitextSuite] {
                try fetchData(try Suite.resolve(name, evaluationsDirectory: evaluations), cache: cache)
            }
        } catch let error as Unfetched {
            FileHandle.standardError.write(Data((error.line + "\n").utf8))
            throw ExitCode(3)
        }

        var table = ""
        try AtomicOutput.directory(outURL) { dir in
            let results = dir.appendingPathComponent("results.h5").path
            let table5 = try Self.eval(["--model", backpack.path, "--suite", "pronoun-bias",
                                        "--edit", edits.appendingPathComponent("paper-remove-sense10.yaml").path,
                                        "--edit", edits.appendingPathComponent("paper-optimize-sense10.yaml").path,
                                        "--run-id", "table5-backpack", "--out", results])
            let table2 = try Self.eval(["--model", backpack.path, "--suite", lambadaSuite, "--suite", wikitextSuite,
                                        "--data-dir", cache.path, "--run-id", "table2-backpack", "--out", results])
            let extra = try Self.eval(["--model", gpt2.path, "--suite", "pronoun-bias",
                                       "--edit", edits.appendingPathComponent("gpt2-nullspace-baseline.yaml").path,
                                       "--run-id", "extra-gpt2-nullspace", "--out", results])
            for (run, page) in [("table5-backpack", "report.html"), ("table2-backpack", "report-table2.html"),
                                ("extra-gpt2-nullspace", "report-gpt2.html")] {
                try Self.backpack(["report", results, "--run", run, "--html", dir.appendingPathComponent(page).path])
            }
            let measured = try PaperTable.Measured(table5: table5, table2: table2, extra: extra,
                                                   lambadaSuite: Self.suiteName(lambadaSuite, evaluations),
                                                   wikitextSuite: Self.suiteName(wikitextSuite, evaluations))
            // The results file's lock (taken by each eval) is not part of the output.
            try? FileManager.default.removeItem(at: dir.appendingPathComponent(".results.h5.lock"))
            table = PaperTable.render(measured)
            try AtomicOutput.file(dir.appendingPathComponent("table.md"), data: Data(table.utf8))
        }
        print(table, terminator: "")
        FileHandle.standardError.write(Data("wrote \(outURL.path): results.h5, table.md, report.html, report-table2.html, report-gpt2.html\n".utf8))
    }

    /// The cached snapshot of `repo`, downloading it first when the cache does not hold it whole.
    static func model(_ repo: String) throws -> URL {
        let ref = try HubReference(parsing: repo)
        if let cached = try? HubCache().resolveModel(ref) { return cached }
        do {
            return try HubDownloader(progress: ProgressDisplay()).download(ref).snapshot
        } catch let error as DownloadError where ![.diskFull, .notWritable, .checksumMismatch, .badInput].contains(error.kind) {
            throw Unfetched(line: "backpack reproduce paper: could not fetch the model \(repo): \(error.description)")
        }
    }

    /// The data file a suite reads, fetched into the cache unless it is there (the evaluation
    /// checks the suite's pinned SHA-256 either way).
    func fetchData(_ suite: Suite, cache: URL) throws {
        let data: ExternalData
        switch suite.config {
        case .lambada(let c), .wikitext(let c): data = c.data
        default: throw ValidationError("suite \(suite.file.path): expected a lambada or wikitext suite, found \(suite.kind.rawValue)")
        }
        if FileManager.default.fileExists(atPath: cache.appendingPathComponent(data.dataFile).path) { return }
        guard let source = DataSources.all.first(where: { $0.name == suite.kind.rawValue }) else {
            throw ValidationError("no download source for \(suite.kind.rawValue) data")
        }
        let from = DataSources.address(of: source)
        do {
            let file = try DataFetch.fetch(source, from: from, cache: cache, timeout: timeout, expectedSHA256: .some(data.sha256), quiet: true)
            EvalSupport.progress("fetched \(source.name): \(file.path)")
        } catch let error as DataFetchError where error.unreachable {
            throw Unfetched(line: "backpack reproduce paper: could not fetch \(source.name) data from \(from); copy it by hand to \(cache.appendingPathComponent(source.file).path)")
        }
    }

    static func suiteName(_ name: String, _ evaluations: URL?) throws -> String {
        try Suite.resolve(name, evaluationsDirectory: evaluations).name
    }

    /// One `backpack eval` run (this program again), its results as `--json` prints them.
    static func eval(_ arguments: [String]) throws -> [String: Any] {
        let out = try backpack(["eval", "--json"] + arguments)
        guard let object = try JSONSerialization.jsonObject(with: out) as? [String: Any] else {
            throw ReproduceError(description: "backpack eval \(arguments.joined(separator: " ")): its --json output is not a JSON object")
        }
        return object
    }

    /// Runs this program with `arguments`; progress and errors go to our stderr, stdout is returned.
    @discardableResult
    static func backpack(_ arguments: [String]) throws -> Data {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        child.arguments = arguments
        child.standardInput = FileHandle.nullDevice
        let pipe = Pipe()
        child.standardOutput = pipe
        try child.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        child.waitUntilExit()
        guard child.terminationReason == .exit, child.terminationStatus == 0 else {
            throw ReproduceError(description: "backpack \(arguments.map(EvalSupport.shellQuote).joined(separator: " ")) failed (\(child.terminationReason == .exit ? "exit status" : "signal") \(child.terminationStatus)); nothing was written")
        }
        return data
    }
}

struct ReproduceError: Error, CustomStringConvertible { let description: String }

/// The side-by-side tables (Markdown): this run's value, the paper's, the difference and the
/// bias reduction (B - B') / (B - 1) against each table's own unmodified row.
enum PaperTable {
    struct Measured {
        var backpackBias: [String: Double]     // Table 5 variant name -> bias
        var gpt2Bias: (unmodified: Double, nullspace: Double)
        var lambadaPPL: Double, lambadaAccuracy: Double, wikiTextPPL: Double

        init(table5: [String: Any], table2: [String: Any], extra: [String: Any], lambadaSuite: String, wikitextSuite: String) throws {
            func value(_ run: [String: Any], _ variant: String, _ suite: String, _ metric: String) throws -> Double {
                let variants = run["variants"] as? [[String: Any]] ?? []
                let suites = variants.first { $0["variant"] as? String == variant }?["suites"] as? [String: Any]
                let aggregates = (suites?[suite] as? [String: Any])?["aggregates"] as? [String: Any]
                guard let v = aggregates?[metric] as? Double else {
                    throw ReproduceError(description: "run \(run["run_id"] ?? "?"): no \(metric) for variant \(variant), suite \(suite)")
                }
                return v
            }
            backpackBias = [
                "Unmodified": try value(table5, "base", "pronoun-bias", "bias"),
                "Remove-Sense10": try value(table5, "paper-remove-sense10", "pronoun-bias", "bias"),
                "Optimize-Sense10": try value(table5, "paper-optimize-sense10", "pronoun-bias", "bias")]
            gpt2Bias = try (value(extra, "base", "pronoun-bias", "bias"), value(extra, "gpt2-nullspace-baseline", "pronoun-bias", "bias"))
            lambadaPPL = try value(table2, "base", lambadaSuite, "perplexity")
            lambadaAccuracy = try 100 * value(table2, "base", lambadaSuite, "acc")
            wikiTextPPL = try value(table2, "base", wikitextSuite, "word_perplexity")
        }
    }

    static func reduction(_ b: Double, _ edited: Double) -> String {
        b > 1 ? String(format: "%.0f %%", 100 * (b - edited) / (b - 1)) : "n/a"
    }

    static func render(_ m: Measured) -> String {
        func f(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }
        func d(_ x: Double, _ digits: Int) -> String { String(format: "%+.\(digits)f", x) }
        let backpack = "Backpack-Small (\(ReproducePaper.backpackRepo))"
        var lines = ["Table 5 of \(PaperNumbers.citation): pronoun bias ratio (lower is better, 1 = unbiased);",
                     "reduction % = (B - B') / (B - 1) against the same model's Unmodified row.", "",
                     "| model | variant | this run | paper | difference | reduction (this run) | reduction (paper) |",
                     "|---|---|---|---|---|---|---|"]
        let base = m.backpackBias["Unmodified"] ?? .nan
        for row in PaperNumbers.backpack {
            let v = m.backpackBias[row.variant] ?? .nan
            lines.append("| \(backpack) | \(row.variant) | \(f(v, 2)) | \(f(row.bias, 2)) | \(d(v - row.bias, 2)) | "
                         + "\(row.reduction == nil ? "" : reduction(base, v)) | \(row.reduction.map { "\($0) %" } ?? "") |")
        }
        for row in PaperNumbers.transformer {
            lines.append("| Transformer (the paper's own, not released) | \(row.variant) | not run | \(f(row.bias, 2)) | not compared | | "
                         + "\(row.reduction.map { "\($0) %" } ?? "") |")
        }
        let extra = "extra, not the paper's Transformer: GPT-2 small (\(ReproducePaper.gpt2Repo))"
        lines.append("| \(extra) | Unmodified | \(f(m.gpt2Bias.unmodified, 2)) | none | | | |")
        lines.append("| \(extra) | Project-Nullspace | \(f(m.gpt2Bias.nullspace, 2)) | none | | \(reduction(m.gpt2Bias.unmodified, m.gpt2Bias.nullspace)) | |")
        lines += ["", "Table 2 of \(PaperNumbers.citation), Backpack-Small (\(ReproducePaper.backpackRepo)):", "",
                  "| metric | this run | paper | difference |", "|---|---|---|---|",
                  "| OpenWebText PPL | not reproduced | \(f(PaperNumbers.openWebTextPPL, 1)) | the paper's OpenWebText evaluation split is not public |",
                  "| LAMBADA PPL | \(f(m.lambadaPPL, 1)) | \(f(PaperNumbers.lambadaPPL, 1)) | \(d(m.lambadaPPL - PaperNumbers.lambadaPPL, 1)) |",
                  "| LAMBADA ACC (%) | \(f(m.lambadaAccuracy, 1)) | \(f(PaperNumbers.lambadaAccuracy, 1)) | \(d(m.lambadaAccuracy - PaperNumbers.lambadaAccuracy, 1)) |",
                  "| WikiText PPL | \(f(m.wikiTextPPL, 1)) | \(f(PaperNumbers.wikiTextPPL, 1)) | \(d(m.wikiTextPPL - PaperNumbers.wikiTextPPL, 1)) |"]
        return lines.joined(separator: "\n") + "\n"
    }
}
