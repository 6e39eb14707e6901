import BackpackEvaluation
import BackpackHub
import BackpackIO
import BackpackModel
import BackpackResults
import Foundation

/// The published numbers, written once. Hewitt, Thickstun, Manning and Liang, "Backpack Language
/// Models", ACL 2023: Table 5 (pronoun bias ratio) and Table 2 (Backpack-Small, which is
/// stanfordnlp/backpack-gpt2 on the Hub).
public enum PaperNumbers {
    public static let citation = "Hewitt et al., \"Backpack Language Models\", ACL 2023"
    /// Table 5, Backpack rows: bias ratio (reduction % as printed in the paper).
    public static let backpack: [(variant: String, bias: Double, reduction: Int?)] = [
        ("Unmodified", 4.34, nil), ("Remove-Sense10", 2.88, 44), ("Optimize-Sense10", 2.16, 65)]
    /// Table 5, the paper's matched Transformer (not released, so not compared).
    public static let transformer: [(variant: String, bias: Double, reduction: Int?)] = [
        ("Unmodified", 7.02, nil), ("Project-Nullspace", 6.72, 5), ("Optimize-Nullspace", 7.02, 0)]
    /// Table 2, Backpack-Small.
    public static let openWebTextPPL = 20.1
    public static let lambadaPPL = 26.5
    public static let lambadaAccuracy = 37.5     // percent
    public static let wikiTextPPL = 40.9
}

/// `backpack reproduce paper`: the paper's Table 5 and Table 2 on the published weights, beside
/// the published numbers. Every input is fetched (or found in the caches) before anything is
/// computed; the three evaluations run in this process (EvaluationRequest) into a temporary
/// folder renamed to `out` at the end: OUT/results.h5 (runs table5-backpack, table2-backpack,
/// extra-gpt2-nullspace), an HTML report per run and OUT/table.md.
public struct PaperReproduction {
    public static let backpackRepo = "stanfordnlp/backpack-gpt2"
    public static let gpt2Repo = "openai-community/gpt2"
    /// The files `run` writes into `out`, besides results.h5 and table.md: one HTML report per run.
    public static let reports = [("table5-backpack", "report.html"), ("table2-backpack", "report-table2.html"),
                                 ("extra-gpt2-nullspace", "report-gpt2.html")]

    public var out: URL
    /// The data fetch cache (LAMBADA and WikiText are read from it).
    public var cache: URL
    /// Suites of the LAMBADA and WikiText rows (names or YAML files).
    public var lambadaSuite = "lambada"
    public var wikitextSuite = "wikitext"
    /// Seconds before giving up on a data download.
    public var timeout = 60

    public init(out: URL, cache: URL = DataLocations.defaultCache) { self.out = out; self.cache = cache }

    /// A model or data file that could not be fetched, in one line naming it.
    public struct Unfetched: Error, CustomStringConvertible { public let description: String }

    /// Fetches what the caches lack, evaluates, writes `out` and returns the table (Markdown).
    public func run(progress: @Sendable (String) -> Void = { _ in }) throws -> String {
        try OutputCheck.directory(out)
        let evaluations = Toolkit.evaluationsDirectory()
        guard let edits = evaluations?.deletingLastPathComponent().appendingPathComponent("Edits"),
              FileManager.default.fileExists(atPath: edits.path) else {
            throw EvaluationRunError(description: "the repository's Evaluations/ and Edits/ folders were not found (run from the checkout)")
        }
        let lambada = try Suite.resolve(lambadaSuite, evaluationsDirectory: evaluations)
        let wikitext = try Suite.resolve(wikitextSuite, evaluationsDirectory: evaluations)
        for (suite, kind) in [(lambada, "lambada"), (wikitext, "wikitext")] where suite.kindName != kind {
            throw SuiteError(file: suite.file.path, reason: "expected a \(kind) suite, found kind \(suite.kindName)")
        }
        let backpack = try Self.model(Self.backpackRepo)
        let gpt2 = try Self.model(Self.gpt2Repo)
        for suite in [lambada, wikitext] { try fetchData(suite, progress: progress) }

        var table = ""
        try AtomicOutput.directory(out) { dir in
            let results = dir.appendingPathComponent("results.h5")
            func evaluate(_ model: URL, _ suites: [String], edits: [String] = [], dataDirectory: URL? = nil,
                          run: String) throws -> [VariantResults] {
                var options = EvaluationRun.Options()
                options.runID = run
                options.bootstrap = BootstrapSettings()   // as `backpack eval` by default
                let request = EvaluationRequest(model: model, suites: suites, edits: edits,
                                                dataDirectory: dataDirectory, out: results, options: options)
                return try request.run(progress: progress).variants
            }
            let table5 = try evaluate(backpack, ["pronoun-bias"],
                                      edits: [edits.appendingPathComponent("paper-remove-sense10.yaml").path,
                                              edits.appendingPathComponent("paper-optimize-sense10.yaml").path],
                                      run: "table5-backpack")
            let table2 = try evaluate(backpack, [lambadaSuite, wikitextSuite], dataDirectory: cache, run: "table2-backpack")
            let extra = try evaluate(gpt2, ["pronoun-bias"], edits: [edits.appendingPathComponent("gpt2-nullspace-baseline.yaml").path],
                                     run: "extra-gpt2-nullspace")
            let file = try ResultsFile(opening: results)
            for (run, page) in Self.reports {
                try AtomicOutput.file(dir.appendingPathComponent(page), data: Data(ReportHTML.render(try file.record(run)).utf8))
            }
            let measured = try PaperTable.Measured(table5: table5, table2: table2, extra: extra,
                                                   lambadaSuite: lambada.name, wikitextSuite: wikitext.name)
            // The results file's lock (taken by each evaluation) is not part of the output.
            try? FileManager.default.removeItem(at: dir.appendingPathComponent(".results.h5.lock"))
            table = PaperTable.render(measured)
            try AtomicOutput.file(dir.appendingPathComponent("table.md"), data: Data(table.utf8))
        }
        return table
    }

    /// The cached snapshot of `repo`, downloading it first when the cache does not hold it whole.
    static func model(_ repo: String) throws -> URL {
        let ref = try HubReference(parsing: repo)
        if let cached = try? HubCache().resolveModel(ref) { return cached }
        do {
            return try HubDownloader(progress: ProgressDisplay()).download(ref).snapshot
        } catch let error as DownloadError where ![.diskFull, .notWritable, .checksumMismatch, .badInput].contains(error.kind) {
            throw Unfetched(description: "backpack reproduce paper: could not fetch the model \(repo): \(error.description)")
        }
    }

    /// The data file a suite reads, fetched into the cache unless it is there (the evaluation
    /// checks the suite's pinned SHA-256 either way).
    func fetchData(_ suite: Suite, progress: (String) -> Void) throws {
        let data = try SuiteDataFetch(suite)
        if FileManager.default.fileExists(atPath: data.cachedFile(in: cache).path) { return }
        let address = try data.address()
        do {
            let file = try data.fetch(from: address, cache: cache, timeout: timeout)
            progress("fetched \(suite.name): \(file.path)")
        } catch let error as DataFetchError where error.unreachable {
            throw Unfetched(description: "backpack reproduce paper: could not fetch \(suite.name) data from \(address); copy it by hand to \(data.cachedFile(in: cache).path)")
        }
    }
}

/// The side-by-side tables (Markdown): this run's value, the paper's, the difference and the
/// bias reduction (B - B') / (B - 1) against each table's own unmodified row.
enum PaperTable {
    struct Measured {
        var backpackBias: [String: Double]     // Table 5 variant name -> bias
        var gpt2Bias: (unmodified: Double, nullspace: Double)
        var lambadaPPL: Double, lambadaAccuracy: Double, wikiTextPPL: Double

        init(table5: [VariantResults], table2: [VariantResults], extra: [VariantResults], lambadaSuite: String, wikitextSuite: String) throws {
            func value(_ run: [VariantResults], _ name: String, _ variant: String, _ suite: String, _ metric: String) throws -> Double {
                let result = run.first { $0.variant == variant }?.suites.first { $0.suiteName == suite }
                guard let v = result?[metric]?.doubleValue, v.isFinite else {
                    throw EvaluationRunError(description: "run \(name): no \(metric) for variant \(variant), suite \(suite)")
                }
                return v
            }
            backpackBias = [
                "Unmodified": try value(table5, "table5-backpack", "base", "pronoun-bias", "bias"),
                "Remove-Sense10": try value(table5, "table5-backpack", "paper-remove-sense10", "pronoun-bias", "bias"),
                "Optimize-Sense10": try value(table5, "table5-backpack", "paper-optimize-sense10", "pronoun-bias", "bias")]
            gpt2Bias = try (value(extra, "extra-gpt2-nullspace", "base", "pronoun-bias", "bias"),
                            value(extra, "extra-gpt2-nullspace", "gpt2-nullspace-baseline", "pronoun-bias", "bias"))
            lambadaPPL = try value(table2, "table2-backpack", "base", lambadaSuite, "perplexity")
            lambadaAccuracy = try 100 * value(table2, "table2-backpack", "base", lambadaSuite, "acc")
            wikiTextPPL = try value(table2, "table2-backpack", "base", wikitextSuite, "word_perplexity")
        }
    }

    static func reduction(_ b: Double, _ edited: Double) -> String {
        b > 1 ? String(format: "%.0f %%", 100 * (b - edited) / (b - 1)) : "n/a"
    }

    static func render(_ m: Measured) -> String {
        func f(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }
        func d(_ x: Double, _ digits: Int) -> String { String(format: "%+.\(digits)f", x) }
        let backpack = "Backpack-Small (\(PaperReproduction.backpackRepo))"
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
        let extra = "extra, not the paper's Transformer: GPT-2 small (\(PaperReproduction.gpt2Repo))"
        lines.append("| \(extra) | Unmodified | \(f(m.gpt2Bias.unmodified, 2)) | none | | | |")
        lines.append("| \(extra) | Project-Nullspace | \(f(m.gpt2Bias.nullspace, 2)) | none | | \(reduction(m.gpt2Bias.unmodified, m.gpt2Bias.nullspace)) | |")
        lines += ["", "Table 2 of \(PaperNumbers.citation), Backpack-Small (\(PaperReproduction.backpackRepo)):", "",
                  "| metric | this run | paper | difference |", "|---|---|---|---|",
                  "| OpenWebText PPL | not reproduced | \(f(PaperNumbers.openWebTextPPL, 1)) | the paper's OpenWebText evaluation split is not public |",
                  "| LAMBADA PPL | \(f(m.lambadaPPL, 1)) | \(f(PaperNumbers.lambadaPPL, 1)) | \(d(m.lambadaPPL - PaperNumbers.lambadaPPL, 1)) |",
                  "| LAMBADA ACC (%) | \(f(m.lambadaAccuracy, 1)) | \(f(PaperNumbers.lambadaAccuracy, 1)) | \(d(m.lambadaAccuracy - PaperNumbers.lambadaAccuracy, 1)) |",
                  "| WikiText PPL | \(f(m.wikiTextPPL, 1)) | \(f(PaperNumbers.wikiTextPPL, 1)) | \(d(m.wikiTextPPL - PaperNumbers.wikiTextPPL, 1)) |"]
        return lines.joined(separator: "\n") + "\n"
    }
}
