import BackpackIO
import BackpackResults
import Foundation

/// One evaluation run, as `backpack eval` makes it: the plan (model, variants, suites and their
/// data, by SHA-256), this process's share of it (`shard`), what an unfinished run of the same
/// plan already holds (`resume`), each result stored as soon as it is computed, and the run
/// marked complete at the end. The command line only turns arguments into a value of this type.
///
/// Storage (LAYOUT.md, "Runs written suite by suite"): the run is begun in the results file with
/// the first result (a run failing at once writes nothing), each result is a part file beside it
/// (`ResultsFile.storePart`, at the cost of the result), and the parts are added to the file in
/// one rewrite when the run finishes.
public struct EvaluationRun {
    public struct Options: Sendable {
        /// The run id (default: a fresh one, or for a shard one derived from the plan).
        public var runID: String?
        /// Continue the latest unfinished run of `out` (same plan and shard).
        public var resume = false
        /// Compute only this share of the (variant, suite) results.
        public var shard: RunShard?
        /// Store NaN or infinite results instead of stopping.
        public var allowNonfinite = false
        /// Seconds to wait for another process writing `out`.
        public var lockTimeout = ResultsFile.defaultLockTimeout
        /// false: compute, but write nothing (timing the evaluation without its storage).
        public var store = true
        /// Bootstrap intervals on every headline aggregate and, for a whole run, the paired tests
        /// of each variant against base (nil or 0 resamples: none).
        public var bootstrap: BootstrapSettings?
        public init() {}
    }

    /// What a finished run holds.
    public struct Outcome: Sendable {
        /// nil when nothing was stored (`store` false).
        public let id: String?
        public let variants: [VariantResults]
        public let elapsedSeconds: Double
    }

    public let suites: [PreparedSuite]
    /// The unedited model first (its logits are what word-level edits update), then the edits.
    public let variants: [Variant]
    public let plan: RunPlan
    public let out: URL
    public let options: Options
    public let provenance: RunProvenance
    public let commandLine: String
    /// This process's (variant, suite) units as `UnfinishedRun.key`s; nil: all of them.
    public let share: Set<String>?
    /// The id a new run gets (nil: a fresh one at begin).
    let newRunID: String?

    /// Checks the shard against the plan and, for a new run, that `out` does not hold its id yet
    /// (before anything is computed).
    public init(suites: [PreparedSuite], variants: [Variant], modelSHA256: String, provenance: RunProvenance,
                commandLine: String, out: URL, options: Options = Options()) throws {
        self.suites = suites; self.variants = variants; self.out = out; self.options = options
        self.provenance = provenance; self.commandLine = commandLine
        let plan = RunPlan(modelSHA256: modelSHA256,
                       variants: variants.map { ($0.name, $0.editText, $0.editSHA256) },
                       suites: try suites.map { ($0.suite.name, $0.suite.version, try FileDigest.sha256($0.suite.file)) },
                       grids: Dictionary(uniqueKeysWithValues: variants.compactMap { v in v.grid.map { (v.name, $0) } }),
                       data: Dictionary(uniqueKeysWithValues: suites.map { s in (s.suite.name, s.dataFiles.map { ($0.name, $0.sha256) }) }))
        self.plan = plan
        if let shard = options.shard {
            let (v, s) = plan.names
            let share = shard.share(variants: v, suites: s)
            guard !share.isEmpty else {
                throw EvaluationRunError(description: "--shard \(shard): the run has only \(v.count * s.count) (variant, suite) results to compute (\(v.count) variants x \(s.count) suites); use at most \(v.count * s.count) shards")
            }
            self.share = share
        } else {
            share = nil
        }
        let id = options.runID ?? (options.shard == nil ? nil : Self.shardRunID(plan))
        newRunID = id
        if !options.resume, options.store, let id { try Self.checkNewRun(id, out: out, shard: options.shard) }
    }

    /// `shard-<first 12 hex of the SHA-256 of the plan's lines>`: the same on every machine
    /// without coordination, so that the shards' runs merge into one run of that id.
    public static func shardRunID(_ plan: RunPlan) -> String {
        "shard-" + FileDigest.sha256(data: Data(plan.lines.joined(separator: "\n").utf8)).prefix(12)
    }

    /// Computes the share (less what an unfinished run already holds with `resume`), storing each
    /// result as it comes; `stored(n)` is called after the n-th result stored by this process.
    public func run(startedAt: Date = Date(), stored: (Int) -> Void = { _ in },
                    progress: @Sendable (String) -> Void = { _ in }) throws -> Outcome {
        var id: String?
        var done: Set<String> = []
        // Part folders of abandoned runs (killed, and never to be folded: their run is finished
        // or gone from the file) are removed first, one line each on stderr; a running run's
        // parts and any part a live process owns stay (`ResultsFile.reclaimAbandonedParts`).
        if options.store { ResultsFile.reclaimAbandonedParts(for: out) }
        if options.resume {
            let unfinished = try Self.unfinishedRun(in: out)
            try Self.checkResume(unfinished, shard: options.shard, out: out)
            let difference = plan.difference(fromStored: unfinished.plan)
            guard difference.isEmpty else {
                throw EvaluationRunError(description: "\(out.path): run \(unfinished.id) was started with other inputs and cannot be resumed with these: \(difference)")
            }
            if let runID = options.runID, runID != unfinished.id {
                throw EvaluationRunError(description: "--run-id \(runID): the unfinished run in \(out.path) is \(unfinished.id)")
            }
            id = unfinished.id
            done = unfinished.finished
            progress("resuming run \(unfinished.id): \(done.count) of \(share?.count ?? variants.count * suites.count) results already stored")
        }
        var storedNow = 0
        let results = try EvaluationRunner.run(
            suites: suites, variants: variants, reference: variants.first?.model, allowNonfinite: options.allowNonfinite,
            bootstrap: options.bootstrap,
            include: { share?.contains(UnfinishedRun.key($0, $1)) ?? true },
            skip: { done.contains(UnfinishedRun.key($0, $1)) },
            finished: { variant, result in
                guard options.store else { return }
                // The run is begun with the first result, so that a run failing at once writes nothing.
                let run = try id ?? ResultsFile.beginRun(plan, provenance: provenance, commandLine: commandLine, to: out,
                                                         runID: newRunID, shard: options.shard, lockTimeout: options.lockTimeout)
                id = run
                try ResultsFile.storePart(result, variant: variant, run: run, for: out)
                storedNow += 1
                stored(storedNow)
            }, progress: progress)
        let elapsed = Date().timeIntervalSince(startedAt)
        guard options.store else { return Outcome(id: nil, variants: results, elapsedSeconds: elapsed) }
        guard let id else { throw EvaluationRunError(description: "\(out.path): nothing to compute, no suites were run") }
        // The paired tests against base, from every stored result of the run (so a resumed run gets
        // them too), written in the same rewrite that adds the parts; a shard's are made by
        // `backpack merge`, which has base and every variant.
        let paired = options.shard == nil && (options.bootstrap?.resamples ?? 0) > 0
        let annotate: RunAnnotation? = paired ? { variants in Bootstrap.pairedDifferences(variants) } : nil
        try ResultsFile.foldParts(id, in: out, finish: elapsed, annotate: annotate, lockTimeout: options.lockTimeout)
        return Outcome(id: id, variants: try ResultsFile(opening: out).record(id).variants, elapsedSeconds: elapsed)
    }

    static func unfinishedRun(in out: URL) throws -> UnfinishedRun {
        let unfinished = FileManager.default.fileExists(atPath: out.path) ? try ResultsFile(opening: out).latestUnfinishedRun() : nil
        guard let unfinished else {
            throw EvaluationRunError(description: "\(out.path): no unfinished run to resume (a run is unfinished while its status is \"running\")")
        }
        return unfinished
    }

    /// A new run must not find its id in the output already (each shard writes its own file; a
    /// killed shard continues with --resume).
    static func checkNewRun(_ id: String, out: URL, shard: RunShard?) throws {
        guard FileManager.default.fileExists(atPath: out.path), try ResultsFile.runs(in: out).contains(id) else { return }
        let hint = shard.map { "every shard writes its own --out (e.g. results-\($0.index).h5); " } ?? ""
        throw EvaluationRunError(description: "\(out.path) already has run \(id); \(hint)to continue an unfinished run pass --resume")
    }

    /// `--resume` continues a shard's run only with the same --shard, and a whole run only without.
    static func checkResume(_ run: UnfinishedRun, shard: RunShard?, out: URL) throws {
        guard run.shard != shard else { return }
        let stored = run.shard.map { "shard \($0)" } ?? "a whole run (no --shard)"
        let given = shard.map { "--shard \($0)" } ?? "no --shard"
        throw EvaluationRunError(description: "\(out.path): the unfinished run \(run.id) is \(stored), this invocation has \(given)")
    }
}

/// A run that cannot start or continue: its shard is empty, its id is taken, or `--resume` finds
/// no unfinished run or one made from other inputs. Says which file and what differs.
public struct EvaluationRunError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(description: String) { self.description = description }
}
