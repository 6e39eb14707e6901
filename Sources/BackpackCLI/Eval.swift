import ArgumentParser
import BackpackEvaluation
import BackpackModel
import BackpackResults
import BackpackWorkflows
import Foundation

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate the base model and each edit on one or more suites; results go to an HDF5 file.",
        discussion: """
            Suites are Evaluations/NAME.yaml (or a path to a suite file; `backpack list suites` shows them). \
            Edits become variants, they do not compose: each --edit is one variant applied alone to the base model, \
            and an edit file with sweeps ({sweep: [...]} in place of a value) is one variant per grid point, named \
            FILE[axis=value,...]. Several runs accumulate in one results file (/runs/<id>/<variant>/<suite>).
            """)

    @OptionGroup var options: ModelOptions
    @Option(name: .long, help: "Suite name (Evaluations/NAME.yaml) or YAML file; repeatable.") var suite: [String] = []
    @Option(name: .long, help: "Edit file (YAML). Edits become variants, they do not compose: each is evaluated alone against the base model, a sweep file as one variant per grid point, FILE.yaml[axis=value,...] as that point alone. Repeatable.") var edit: [String] = []
    @Option(name: .long, help: "Results file (.h5); created or appended to.") var out: String = "backpack-results.h5"
    @Option(name: .long, help: "Directory with the data sets (default: the repository's Data/, then the fetch cache ~/.cache/backpack-edit).") var dataDir: String?
    @Option(name: .customLong("run"), help: "Run id (default: UTC time plus random hex).") var runName: String?
    /// The first spelling of --run, kept for scripts.
    @Option(name: .customLong("run-id"), help: .hidden) var runID: String?
    @Flag(name: .long, help: "Print the results as JSON on stdout instead of a table.") var json = false
    @Flag(name: .long, help: "Print the wide table: one column per variant (one row per variant for more than 4), all metrics on one line, often wider than 100 columns.") var wide = false
    @Flag(name: .long, help: "Store NaN or infinite results instead of stopping with an error that says where they are.") var allowNonfinite = false
    /// Fault injection for the resume tests: SIGKILL this process right after the N-th stored result.
    @Option(name: .long, help: .hidden) var killAfterStored: Int?
    /// Benchmarks (issue 19): the same evaluation with its storage switched off; --out is not written.
    @Flag(name: .long, help: .hidden) var benchNoStore = false
    @Flag(name: .long, help: "Continue the latest unfinished run in --out (same model, edits and suites, checked by SHA-256): only the missing (variant, suite) results are computed.") var resume = false
    @Option(name: .long, help: "Seconds to wait for another backpack process writing the same results file.") var lockTimeout: Double = ResultsFile.defaultLockTimeout
    @Option(name: .long, help: "Bootstrap resamples for the 95 % intervals of every headline aggregate and the paired tests of each edit against base (0 = off).") var bootstrap: Int = BootstrapSettings.defaultResamples
    @Option(name: .long, help: "Seed of the bootstrap resamples.") var bootstrapSeed: UInt64 = BootstrapSettings.defaultSeed
    @Option(name: .long, help: ArgumentHelp("Compute only share K of N (K = 1...N) of the (variant, suite) results, for one machine of N; `backpack merge` joins the shards' files. The run id defaults to one derived from the inputs, the same on every machine.", valueName: "K/N")) var shard: String?

    func validate() throws {
        if suite.isEmpty { throw ValidationError("give at least one --suite") }
        if runName != nil && runID != nil { throw ValidationError("give the run id once, with --run (--run-id is its old spelling)") }
        if bootstrap < 0 { throw ValidationError("--bootstrap: expected a number of resamples >= 0 (0 = off), got \(bootstrap)") }
        if !(lockTimeout >= 0) { throw ValidationError("--lock-timeout: expected seconds >= 0, got \(lockTimeout)") }
        if let shard { do { _ = try RunShard(parsing: shard) } catch { throw ValidationError("\(error)") } }
    }

    func run() throws {
        let t0 = Date()
        var runOptions = EvaluationRun.Options()
        runOptions.runID = runName ?? runID
        runOptions.resume = resume
        runOptions.shard = try shard.map { try RunShard(parsing: $0) }
        runOptions.allowNonfinite = allowNonfinite
        runOptions.lockTimeout = lockTimeout
        runOptions.store = !benchNoStore
        runOptions.bootstrap = BootstrapSettings(resamples: bootstrap, seed: bootstrapSeed)
        let request = EvaluationRequest(model: try options.url(), tokenizer: options.tokenizer, suites: suite, edits: edit,
                                        dataDirectory: dataDir.map { URL(fileURLWithPath: $0) }, out: URL(fileURLWithPath: out),
                                        options: runOptions)
        let outcome = try request.run(startedAt: t0, stored: { n in if n == killAfterStored { kill(getpid(), SIGKILL) } }) { EvalSupport.progress($0) }
        let id = outcome.id ?? "(not stored)"
        EvalSupport.progress(outcome.id == nil ? String(format: "evaluated in %.2f s; nothing stored (--bench-no-store)", outcome.elapsedSeconds)
                                               : String(format: "wrote run %@ to %@ (%.2f s)", id, request.out.path, outcome.elapsedSeconds))
        if json {
            print(try RunJSON.json(runID: id, outcome.variants))
        } else {
            print("run \(id)")
            print(wide ? SummaryTable.render(outcome.variants) : try ReportTables.terminal(outcome.variants, runID: id))
        }
    }
}

enum EvalSupport {
    /// Progress on stderr: on a terminal, counters ("12/390 prompts") redraw one line; in a log,
    /// only the finished steps are written.
    static func progress(_ s: String) {
        let counter = s.range(of: #"(\d+)/(\d+)"#, options: .regularExpression)
        let partial = counter != nil
        if isatty(2) != 0 {
            var line = s
            if let counter {
                let parts = s[counter].split(separator: "/").compactMap { Double($0) }
                if parts.count == 2, parts[1] > 0 {
                    let filled = Int((parts[0] / parts[1] * 24).rounded(.down))
                    line = "[" + String(repeating: "#", count: min(24, filled)) + String(repeating: " ", count: max(0, 24 - filled)) + "] " + s
                }
            }
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line + (partial ? "" : "\n")).utf8))
        } else if !partial {
            FileHandle.standardError.write(Data((s + "\n").utf8))
        }
    }
}
