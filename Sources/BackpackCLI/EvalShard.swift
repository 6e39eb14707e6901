import ArgumentParser
import BackpackCheckpoint
import BackpackIO
import BackpackResults
import Foundation

/// `backpack eval --shard K/N`: which (variant, suite) units this process computes, and the run
/// id every shard of one plan agrees on (the deal itself: BackpackResults/Shard.swift).
struct EvalShard {
    let shard: RunShard
    /// This shard's units, as `UnfinishedRun.key`s.
    let share: Set<String>
    /// `shard-<first 12 hex of the SHA-256 of the plan's lines>`: the same on every machine
    /// without coordination, so that the shards' runs merge into one run of that id.
    let runID: String

    init(_ text: String, plan: RunPlan) throws {
        shard = try RunShard(parsing: text)
        let (variants, suites) = plan.names
        share = shard.share(variants: variants, suites: suites)
        let units = variants.count * suites.count
        guard !share.isEmpty else {
            throw ValidationError("--shard \(shard): the run has only \(units) (variant, suite) results to compute (\(variants.count) variants x \(suites.count) suites); use at most \(units) shards")
        }
        runID = EvalShard.runID(plan)
    }

    static func runID(_ plan: RunPlan) -> String {
        "shard-" + FileDigest.sha256(data: Data(plan.lines.joined(separator: "\n").utf8)).prefix(12)
    }

    func includes(_ variant: String, _ suite: String) -> Bool { share.contains(UnfinishedRun.key(variant, suite)) }

    /// Before any work: a new run must not find its id in the output already (each shard writes
    /// its own file; a killed shard continues with --resume).
    static func checkNewRun(_ id: String, out: URL, shard: RunShard?) throws {
        guard FileManager.default.fileExists(atPath: out.path), try ResultsFile.runs(in: out).contains(id) else { return }
        let hint = shard.map { "every shard writes its own --out (e.g. results-\($0.index).h5); " } ?? ""
        throw ResumeError(description: "\(out.path) already has run \(id); \(hint)to continue an unfinished run pass --resume")
    }

    /// `--resume` continues a shard's run only with the same --shard, and a whole run only without.
    static func checkResume(_ run: UnfinishedRun, shard: RunShard?, out: URL) throws {
        guard run.shard != shard else { return }
        let stored = run.shard.map { "shard \($0)" } ?? "a whole run (no --shard)"
        let given = shard.map { "--shard \($0)" } ?? "no --shard"
        throw ResumeError(description: "\(out.path): the unfinished run \(run.id) is \(stored), this invocation has \(given)")
    }
}
