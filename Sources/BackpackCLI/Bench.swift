import ArgumentParser
import BackpackBench
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure opening time, forward throughput, perplexity with edits and peak memory (used by `make bench`).",
        discussion: """
            Protocol (shared with Tools/bench/torch_bench.py): per measurement --warmup untimed runs, then --runs timed runs; \
            the best is "seconds", the median "median_seconds". Forward passes start with an empty sense cache, so every run \
            pays for the sense network as PyTorch does. --workload FILE (Tools/bench/workload.py) adds perplexity/base (the \
            base model alone) and perplexity/all (base and the file's three edits in one evaluation), --ppl-runs times each. \
            --jsonl FILE writes the JSON lines compare.py reads. --demo-workload times `eval --suite pronoun-bias --suite \
            demo-heldout-perplexity` with the first three --edit files against the base model alone, and the pronoun suites' \
            attribution over all of them (make bench passes make demo's DEMO_EDITS).
            """)

    @OptionGroup var options: ModelOptions
    @Option(help: "Untimed runs before the timed ones.") var warmup = 1
    @Option(help: "Timed runs per measurement (the best and the median are reported).") var runs = 5
    @Option(help: "Random seed for the forward ids (Tools/bench/workload.py draws the same).") var seed: UInt64 = 1
    @Option(help: "Only this forward shape, e.g. 1x512 or 8x128. Default: both.") var shape: String?
    @Option(help: "What to measure: forward, perplexity (needs --workload) or all.") var only: String = "all"
    @Option(help: "Workload file of Tools/bench/workload.py (passages and edits) for the perplexity measurements.") var workload: String?
    @Option(help: "Timed runs of each perplexity measurement.") var pplRuns = 3
    @Option(help: "Tokens per batch in the perplexity evaluation.") var pplBatchTokens = 1024
    @Option(help: "Write JSON lines (meta, measurements, peak_rss) to this file (atomically).") var jsonl: String?
    @Flag(help: "Time the demo's evaluation (pronoun-bias + demo-heldout-perplexity) with the first three --edit files vs the base alone.")
    var demoWorkload = false
    @Option(name: .long, help: "With --demo-workload: make demo's edit files. Edits become variants, they do not compose: each is applied alone to the base model, a sweep file as one variant per grid point. Repeatable.")
    var edit: [String] = []
    @Flag(help: "Time the pronoun suites and fit_scale (needs a tokenizer).") var evaluation = false
    @Flag(help: "Time the contextualization of the pronoun-bias prompts with shared prefixes against every row.") var prompts = false
    @Flag(help: "Time backpack explore's update after a slider move (predictions and attribution of a 32-token text).") var explorer = false

    func validate() throws {
        if warmup < 0 || runs < 1 || pplRuns < 1 || pplBatchTokens < 1 { throw ValidationError("--warmup >= 0, --runs >= 1, --ppl-runs >= 1, --ppl-batch-tokens >= 1") }
        if !["forward", "perplexity", "all"].contains(only) { throw ValidationError("--only must be forward, perplexity or all") }
        if only == "perplexity" && workload == nil { throw ValidationError("--only perplexity needs --workload FILE (Tools/bench/workload.py)") }
        if demoWorkload && edit.count < 3 { throw ValidationError("--demo-workload needs make demo's edit files as --edit (at least three; make bench passes DEMO_EDITS)") }
        if !demoWorkload && !edit.isEmpty { throw ValidationError("--edit goes with --demo-workload") }
    }

    func run() throws {
        let measurement: Benchmark.Measurement
        if demoWorkload { measurement = .demo(edits: edit) }
        else if evaluation { measurement = .evaluation }
        else if prompts { measurement = .prompts }
        else if explorer { measurement = .explorer }
        else {
            measurement = .throughput(forward: only != "perplexity", shape: shape,
                                      workload: only == "forward" ? nil : workload.map { URL(fileURLWithPath: $0) })
        }
        var benchmark = Benchmark { print($0) }
        benchmark.warmup = warmup; benchmark.runs = runs; benchmark.seed = seed
        benchmark.perplexityRuns = pplRuns; benchmark.perplexityBatchTokens = pplBatchTokens
        let lines = try benchmark.run(model: try options.url(), measurement) { try options.loadTokenizer(for: $0) }
        if let jsonl {
            let url = URL(fileURLWithPath: jsonl)
            try lines.write(to: url)
            print("wrote \(url.path)")
        }
    }
}
