import ArgumentParser
import BackpackEvaluation
import BackpackIO
import BackpackResults
import Foundation

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a results file: before/after tables, optionally a self-contained HTML page with charts.")

    @Argument(help: "Results file (.h5) written by `backpack eval`.") var file: String
    @Option(name: .customLong("run"), help: "Run id (default: the latest run).") var runID: String?
    @Option(name: .long, help: "Write an HTML report here (atomically).") var html: String?
    @Flag(name: .long, help: "List the runs and exit.") var list = false
    @Flag(name: .long, help: "Print the chosen run as JSON (the same as --format json).") var json = false
    @Option(name: .long, help: ArgumentHelp("What to print: table (fits 100 columns; --wide for one column per variant), csv (tidy: one row per run, variant, suite and metric), markdown, latex (booktabs) or json.", valueName: "format")) var format: String = "table"
    @Option(name: .long, help: ArgumentHelp("Headline metrics to show, comma-separated, each suite.metric or metric (default: all).", valueName: "list")) var metrics: String?
    @Option(name: .long, help: ArgumentHelp("Shell glob on variant names (base is always kept, as the reference of Δ).", valueName: "glob")) var variants: String?
    @Option(name: .long, help: "Which p-value marks a significant Δ: bh (Benjamini-Hochberg q), holm (Holm-adjusted p) or none (raw p); each over the run's edited variants per (suite, metric).") var correction: String = "bh"
    @Option(name: .long, help: "Significance level of the marks.") var alpha: Double = Significance.defaultAlpha
    @Flag(name: .long, help: "Print the wide table: one column per variant (one row per variant for more than 4), all metrics on one line, often wider than 100 columns.") var wide = false
    @Flag(name: .long, help: .hidden) var inProcess = false

    static let formats = ["table", "csv", "markdown", "latex", "json"]

    func validate() throws {
        guard Self.formats.contains(format) else {
            throw ValidationError("--format: expected one of \(Self.formats.joined(separator: ", ")), got '\(format)'")
        }
        if json && format != "table" && format != "json" { throw ValidationError("--json is --format json: give one of --json and --format \(format)") }
        guard Significance.Correction(rawValue: correction) != nil else {
            throw ValidationError("--correction: expected one of \(Significance.Correction.allCases.map(\.rawValue).joined(separator: ", ")), got '\(correction)'")
        }
        guard alpha > 0 && alpha < 1 else { throw ValidationError("--alpha: expected a level between 0 and 1 (exclusive), got \(alpha)") }
        if wide && (json || format != "table") { throw ValidationError("--wide: only for --format table, got --format \(json ? "json" : format)") }
        if runID == "all" && format != "csv" { throw ValidationError("--run all: only for --format csv (the other formats show one run)") }
        if let metrics, ReportSelection.metricList(metrics).isEmpty { throw ValidationError("--metrics: expected a comma-separated list of suite.metric or metric, got '\(metrics)'") }
    }

    /// The file may come from anyone, and libhdf5 is not hardened against damaged files: on some it
    /// crashes (docs/HARDENING.md, finding 9). The file is therefore read by a child process (this
    /// program again, with --in-process); a crash of the child is reported as a damaged file, exit 1.
    func run() throws {
        if let html { try OutputCheck.file(URL(fileURLWithPath: html)) }
        if !inProcess { try Self.runInChild(file: file); return }
        let results = try ResultsFile(opening: URL(fileURLWithPath: file))
        let runs = try results.runs()
        if list { for r in runs { print(r) }; return }
        guard let id = runID ?? runs.last else {
            throw ResultsError(.notFound, file: file, object: "/runs", operation: "report", detail: "the file has no runs")
        }
        guard runs.contains(id) || id == "all" else {
            throw ResultsError(.notFound, file: file, object: "/runs/\(id)", operation: "report", detail: "runs: \(runs.joined(separator: ", "))")
        }
        let significance = Significance(correction: Significance.Correction(rawValue: correction) ?? .bh, alpha: alpha)
        let selection = ReportSelection(metrics: metrics.map(ReportSelection.metricList) ?? [], variants: variants)
        let options = ReportTables.Options(selection: selection, significance: significance)
        do {
            if format == "csv" {
                var rows: [TidyRow] = []
                for r in id == "all" ? runs : [id] {
                    rows += try TidyExport.rows(try results.record(r), selection: selection, unitCount: { ResamplingPlan.make($0)?.unitCount })
                }
                FileHandle.standardOutput.write(Data(TidyExport.csv(rows).utf8))
                return
            }
            let record = try results.record(id)
            switch json ? "json" : format {
            case "json":
                let kept = try selection.variants(of: record)
                print(try RunJSON.json(runID: id, kept, runs: runs, significance: significance,
                                       columns: selection.metrics.isEmpty ? nil : try selection.columns(kept)))
            case "markdown": print(try ReportTables.markdown(record, options: options), terminator: "")
            case "latex": print(try ReportTables.latex(record, options: options), terminator: "")
            default:
                let table = wide ? SummaryTable.render(try selection.variants(of: record), significance: significance)
                                 : try ReportTables.terminal(record, options: options)
                print("run \(id)  (\(runs.count) run(s) in \(file))")
                for (k, v) in ReportHTML.provenance(record) { print(ReportTables.fit("  \(k): \(v)", wide ? Int.max : 100)) }
                print(table)
            }
            if let html {
                try AtomicOutput.file(URL(fileURLWithPath: html), data: Data(ReportHTML.render(record, significance: significance).utf8))
                FileHandle.standardError.write(Data("wrote \(html)\n".utf8))
            }
        } catch let e as ReportSelection.Invalid {
            throw ValidationError(e.description)
        }
    }

    static func runInChild(file: String) throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        child.arguments = Array(CommandLine.arguments.dropFirst()) + ["--in-process"]
        child.standardInput = FileHandle.nullDevice
        try child.run()
        child.waitUntilExit()
        if child.terminationReason == .uncaughtSignal {
            throw ResultsError(.hdf5, file: file, object: "/", operation: "read results file",
                               detail: "libhdf5 crashed reading it (signal \(child.terminationStatus)): the file is damaged or not a results file")
        }
        if child.terminationStatus != 0 { throw ExitCode(child.terminationStatus) }
    }
}
