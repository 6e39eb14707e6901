import ArgumentParser
import BackpackEvaluation
import BackpackIO
import BackpackResults
import BackpackWorkflows
import Foundation

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge the results files of `backpack eval --shard K/N` into one run.",
        discussion: """
            The inputs must be the shards of one run: the same model, edits and suites (by SHA-256), the same N, \
            each shard once, all present and finished (or --allow-incomplete). The merged run equals what one \
            unsharded `backpack eval` writes, except created, elapsed_seconds (the shards' sum), host and \
            command_line; merged_from lists the shards with their command lines. It is appended to --out like \
            eval's runs; the inputs are only read.
            """)

    @Argument(help: "The shards' results files (.h5), in any order.") var shards: [String] = []
    @Option(name: .long, help: "Results file (.h5) to append the merged run to; created if missing. Not one of the inputs.") var out: String
    @Option(name: .customLong("run"), help: "The shards' run id, when an input holds more than one sharded run; the merged run gets it too.") var runName: String?
    /// The first spelling of --run, kept for scripts.
    @Option(name: .customLong("run-id"), help: .hidden) var runID: String?
    @Flag(name: .long, help: "Merge even if shards are missing or unfinished: the run lists what is missing and stays \"running\", so that `backpack eval --resume` (without --shard) computes the rest.") var allowIncomplete = false
    @Option(name: .long, help: "Seconds to wait for another backpack process writing the same results file.") var lockTimeout: Double = ResultsFile.defaultLockTimeout

    func validate() throws {
        if shards.isEmpty { throw ValidationError("give the shards' results files") }
        if runName != nil && runID != nil { throw ValidationError("give the run id once, with --run (--run-id is its old spelling)") }
        if !(lockTimeout >= 0) { throw ValidationError("--lock-timeout: expected seconds >= 0, got \(lockTimeout)") }
    }

    func run() throws {
        let outURL = URL(fileURLWithPath: out)
        let inputs = shards.map { URL(fileURLWithPath: $0) }
        // The output is checked before the inputs are read: a results file (or none), and none of the inputs.
        try ResultsFile.checkOutput(outURL)
        try AtomicOutput.checkNotInput(outURL, inputs: inputs)
        for url in inputs where !FileManager.default.fileExists(atPath: url.path) {
            throw ShardError(description: "\(url.path): no such file")
        }
        // The output's abandoned part folders go, as with eval (the inputs are only read).
        ResultsFile.reclaimAbandonedParts(for: outURL)
        let commandLine = Toolkit.commandLine()
        let outcome = try ShardMerge.merge(inputs, to: outURL, runID: runName ?? runID, commandLine: commandLine,
                                           allowIncomplete: allowIncomplete, lockTimeout: lockTimeout)
        // The paired tests against base need base and the variant, which may come from different
        // shards: made here, from the merged results, as an unsharded eval makes them.
        if outcome.missing.isEmpty { try Bootstrap.storePairedDifferences(in: outURL, run: outcome.id, lockTimeout: lockTimeout) }
        let stored = outcome.units - outcome.missing.count
        EvalSupport.progress("merged \(inputs.count) of \(outcome.shardCount) shard(s) into run \(outcome.id) of \(outURL.path): \(stored) of \(outcome.units) results")
        if !outcome.missing.isEmpty {
            EvalSupport.progress("incomplete: \(outcome.missing.count) result(s) missing (\(outcome.missing.joined(separator: ", "))); "
                + "the run stays \"running\": `backpack eval` with the same inputs and --resume --out \(outURL.path) (no --shard) computes them")
        }
        print("run \(outcome.id)")
    }
}
