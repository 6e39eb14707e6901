import ArgumentParser
import BackpackCheckpoint
import BackpackEditing
import BackpackEvaluation
import BackpackModel
import BackpackResults
import BackpackIO
import BackpackTokenizer
import Foundation

/// The Swift side of `make bench` (the PyTorch side is Tools/bench/torch_bench.py; compare.py puts
/// the two side by side). Every number printed is measured by this process on this machine.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure opening time, forward throughput, perplexity with edits and peak memory (used by `make bench`).",
        discussion: """
            Protocol (shared with Tools/bench/torch_bench.py): per measurement --warmup untimed runs, then
            --runs timed runs; the best is "seconds", the median "median_seconds". Forward passes start with an
            empty sense cache, so every run pays for the sense network as PyTorch does. --workload FILE
            (Tools/bench/workload.py) adds perplexity/base (the base model alone) and perplexity/all (base and
            the file's three edits in one evaluation), --ppl-runs times each. --jsonl FILE writes the JSON lines
            compare.py reads. --demo-workload times `eval --suite pronoun-bias --suite demo-heldout-perplexity`
            with the three demo edits against the base model alone.
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
    @Flag(help: "Time the demo's evaluation (pronoun-bias + demo-heldout-perplexity) with its three edits vs the base alone.")
    var demoWorkload = false
    @Flag(help: "Time the pronoun suites and fit_scale (needs a tokenizer).") var evaluation = false
    @Flag(help: "Time the contextualization of the pronoun-bias prompts with shared prefixes against every row.") var prompts = false

    func validate() throws {
        if warmup < 0 || runs < 1 || pplRuns < 1 || pplBatchTokens < 1 { throw ValidationError("--warmup >= 0, --runs >= 1, --ppl-runs >= 1, --ppl-batch-tokens >= 1") }
        if !["forward", "perplexity", "all"].contains(only) { throw ValidationError("--only must be forward, perplexity or all") }
        if only == "perplexity" && workload == nil { throw ValidationError("--only perplexity needs --workload FILE (Tools/bench/workload.py)") }
    }

    func run() throws {
        var out = BenchLines()
        let start = Date()
        let dir = try options.directory()
        let model = LanguageModel(parameters: try dir.parameters())
        let openSeconds = Date().timeIntervalSince(start)
        let weightBytes = dir.weightFiles.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1.path)[.size] as? Int) ?? 0) }
        out.meta["model"] = dir.url.path
        print("model          \(dir.url.path) (\(dir.format), \(String(format: "%.0f", Double(weightBytes) / 1e6)) MB)")
        print("BLAS           \(BLAS.backendDescription)")
        print(String(format: "open           %.3f s", openSeconds))
        out.add(["name": "open", "tokens": 0, "seconds": openSeconds, "samples": [openSeconds], "warmup": 0, "runs": 1,
                 "stat": "once", "weight_bytes": weightBytes])

        if demoWorkload {
            try benchDemo(dir: dir, model: model, into: &out)
        } else if evaluation {
            try benchEvaluation(dir: dir, model: model)
        } else if prompts {
            try benchPrompts(dir: dir, model: model, into: &out)
        } else {
            if only != "perplexity" { try benchForward(model, into: &out) }
            if only != "forward", let workload { try benchPerplexity(model, workload: URL(fileURLWithPath: workload), into: &out) }
        }
        let peak = peakRSSBytes()
        print(String(format: "peak RSS       %.0f MB = %.2fx the weights", Double(peak) / 1e6, Double(peak) / Double(max(weightBytes, 1))))
        if peak > 0 { out.add(["name": "peak_rss", "bytes": peak, "weight_bytes": weightBytes, "ratio_to_weights": Double(peak) / Double(max(weightBytes, 1))]) }
        if let jsonl { try out.write(to: URL(fileURLWithPath: jsonl)) }
    }

    /// `warmup` untimed calls, then `runs` timed ones.
    func timed(warmup: Int, runs: Int, _ body: () throws -> Void) rethrows -> [Double] {
        for _ in 0..<warmup { try body() }
        return try (0..<runs).map { _ in
            let t = Date()
            try body()
            return Date().timeIntervalSince(t)
        }
    }

    private func benchForward(_ model: LanguageModel, into out: inout BenchLines) throws {
        var rng = SeededGenerator(seed: seed)
        let V = UInt64(min(model.config.vocabSize, 50257))
        func randomIDs(_ n: Int) -> [Int] { (0..<n).map { _ in Int(rng.next() % V) } }
        let n = min(512, model.config.nPositions), m = min(128, n)
        // Drawn in this order whatever --shape is, so each shape's ids are the same as in a full run.
        let shapes: [(String, [[Int]])] = [("1x\(n)", [randomIDs(n)]), ("8x\(m)", (0..<8).map { _ in randomIDs(m) })]
        if let shape, !shapes.contains(where: { $0.0 == shape }) {
            throw ValidationError("--shape \(shape): this model's shapes are \(shapes.map(\.0).joined(separator: ", "))")
        }
        for (name, batch) in shapes where shape == nil || shape == name {
            let tokens = batch.reduce(0) { $0 + $1.count }
            let samples = try timed(warmup: warmup, runs: runs) {
                model.senseCache.removeAll()
                _ = try model.forward(batch: batch, options: .init(logits: .all))
            }
            let line = out.measurement("forward_\(name)", tokens: tokens, samples: samples, warmup: warmup)
            print(String(format: "forward %-6@ %.3f s best, %.3f s median of %d  %.0f tokens/s", name, line.best, line.median, runs,
                         Double(tokens) / line.best))
            var parts: [String] = []
            for (step, body) in try model.stages(batch) {
                let s = timed(warmup: warmup, runs: runs, body)
                let r = out.measurement("forward_\(name)/\(step)", tokens: tokens, samples: s, warmup: warmup)
                parts.append(String(format: "%@ %.3f s", step, r.best))
            }
            print("               " + parts.joined(separator: ", "))
        }
    }

    /// Base alone, then base + the workload's edits in one evaluation (VariantSet), then each
    /// edit alone once (its time beside PyTorch's pass for that variant; its nll must equal the
    /// shared evaluation's).
    private func benchPerplexity(_ model: LanguageModel, workload url: URL, into out: inout BenchLines) throws {
        let work = try BenchWorkload.load(url, model: model)
        out.meta["workload"] = ["file": url.lastPathComponent, "source": work.source, "sha256": work.sha256]
        let suite = try PerplexitySuite(name: "bench-workload", file: url, documents: work.passages, maxLength: work.maxLength,
                                        stride: work.stride, batchTokens: pplBatchTokens, model: model.config, dataSHA256: work.sha256)
        let variants = [("base", model)] + work.variants
        // One untimed evaluation of the first window warms threads and allocator (as PyTorch's side does).
        let warm = try PerplexitySuite(name: "warm", file: url, documents: [Array(work.passages[0].prefix(work.maxLength))], maxLength: work.maxLength,
                                       stride: work.stride, batchTokens: pplBatchTokens, model: model.config, dataSHA256: work.sha256)
        _ = try warm.evaluate(model) { _ in }
        var baseResult: SuiteResult?, allResults: [SuiteResult] = []
        let baseSamples = try timed(warmup: 0, runs: pplRuns) {
            model.senseCache.removeAll()
            baseResult = try suite.evaluate(model) { _ in }
        }
        let allSamples = try timed(warmup: 0, runs: pplRuns) {
            model.senseCache.removeAll()
            allResults = try suite.evaluate(variants.map(\.1)) { _ in }
        }
        guard let baseResult, let scored = baseResult["n_tokens"]?.doubleValue.map(Int.init),
              let baseNLL = baseResult["nll_sum"]?.doubleValue else {
            throw ModelError(file: url.path, reason: "the perplexity evaluation gave no n_tokens/nll_sum")
        }
        let b = out.measurement("perplexity/base", tokens: scored, samples: baseSamples, warmup: 0,
                                extra: ["scored_tokens": scored, "nll_sum": baseNLL, "token_perplexity": Foundation.exp(baseNLL / Double(scored))])
        let a = out.measurement("perplexity/all", tokens: scored * variants.count, samples: allSamples, warmup: 0,
                                extra: ["variants": variants.count, "passes": 1, "peak_rss_bytes": peakRSSBytes()])
        print(String(format: "perplexity     base alone %.3f s (%d tokens scored, ppl %.3f); base + %d edits %.3f s = %.2fx base alone",
                     b.best, scored, Foundation.exp(baseNLL / Double(scored)), variants.count - 1, a.best, a.best / b.best))
        for (i, (name, variant)) in variants.enumerated().dropFirst() {
            guard let nll = allResults[i]["nll_sum"]?.doubleValue else { continue }
            var alone: SuiteResult?
            let s = try timed(warmup: 0, runs: 1) { alone = try suite.evaluate(variant) { _ in } }
            let aloneNLL = alone?["nll_sum"]?.doubleValue ?? .nan
            let agree = abs(aloneNLL - nll) <= 1e-6 * abs(aloneNLL)
            _ = out.measurement("perplexity/\(name)", tokens: scored, samples: s, warmup: 0,
                                extra: ["scored_tokens": scored, "nll_sum": nll, "nll_sum_alone": aloneNLL,
                                        "token_perplexity": Foundation.exp(nll / Double(scored)), "timing": "this variant alone"])
            print(String(format: "  %-24@ ppl %.3f (alone: %.3f s; nll shared vs alone %@)", name, Foundation.exp(nll / Double(scored)), s[0],
                         agree ? "agree within 1e-6" : "DIFFER"))
            if !agree { throw ModelError(file: url.path, reason: "variant \(name): shared evaluation nll \(nll) differs from its own \(aloneNLL)") }
        }
    }

    /// The demo's evaluation on the embedded model: pronoun-bias + demo-heldout-perplexity, base
    /// alone vs base + the three demo edits in one run (edits applied before the timing).
    private func benchDemo(dir: ModelDirectory, model: LanguageModel, into out: inout BenchLines) throws {
        let tokenizer = try options.loadTokenizer(for: dir)
        guard let evaluations = EvalSupport.evaluationsDirectory() else {
            throw ValidationError("--demo-workload: no Evaluations/ directory found (run from the repository)")
        }
        let root = evaluations.deletingLastPathComponent()
        let locations = DataLocations(repositoryData: root.appendingPathComponent("Data"))
        let suites = try ["pronoun-bias", "demo-heldout-perplexity"].map {
            try Suite.resolve($0, evaluationsDirectory: evaluations).prepare(tokenizer: tokenizer, config: model.config, locations: locations)
        }
        let t = Date()
        var variants = [Variant(name: "base", model: model)]
        for f in ["remove-gender-sense", "debias-project-gender", "optimize-gender-sense"] {
            variants += try EvalEdits.variants(path: root.appendingPathComponent("Edits/\(f).yaml").path, base: model,
                                               tokenizer: tokenizer, existing: variants.map(\.name))
        }
        let editSeconds = Date().timeIntervalSince(t)
        var tokens = 0
        let baseSamples = try timed(warmup: warmup, runs: runs) {
            model.senseCache.removeAll()
            let r = try EvaluationRunner.run(suites: suites, variants: [variants[0]])
            // the tokens scored by the perplexity suite (the pronoun prompts add one row each)
            tokens = r[0].suites.compactMap { $0["n_tokens"]?.doubleValue }.map(Int.init).reduce(0, +)
        }
        let allSamples = try timed(warmup: warmup, runs: runs) {
            model.senseCache.removeAll()
            _ = try EvaluationRunner.run(suites: suites, variants: variants)
        }
        let b = out.measurement("demo/base", tokens: tokens, samples: baseSamples, warmup: warmup)
        let a = out.measurement("demo/all", tokens: tokens * variants.count, samples: allSamples, warmup: warmup,
                                extra: ["variants": variants.count])
        print(String(format: "demo workload  pronoun-bias + demo-heldout-perplexity: base alone %.3f s, base + 3 edits %.3f s = %.2fx (target <= 1.6x); applying the edits %.2f s",
                     b.best, a.best, a.best / b.best, editSeconds))
        try benchAttribution(root: root, model: model, tokenizer: tokenizer, locations: locations, into: &out)
    }

    /// What the attribution the pronoun suites store costs: pronoun-bias and pronoun-retention on
    /// the demo's variants (base, its single edits and sweeps: `make demo`'s list), without and
    /// with attribution, side by side (issue 21's limit: the demo at most 15 % slower).
    private func benchAttribution(root: URL, model: LanguageModel, tokenizer: GPT2Tokenizer, locations: DataLocations,
                                  into out: inout BenchLines) throws {
        let evaluations = root.appendingPathComponent("Evaluations")
        guard var bias = try Suite.resolve("pronoun-bias", evaluationsDirectory: evaluations)
                .prepare(tokenizer: tokenizer, config: model.config, locations: locations) as? PronounBiasSuite,
              var retention = try Suite.resolve("pronoun-retention", evaluationsDirectory: evaluations)
                .prepare(tokenizer: tokenizer, config: model.config, locations: locations) as? PronounRetentionSuite else {
            throw ValidationError("--demo-workload: Evaluations/pronoun-bias.yaml or pronoun-retention.yaml is not a pronoun suite")
        }
        var variants = [Variant(name: "base", model: model)]
        for f in Self.demoEdits {
            variants += try EvalEdits.variants(path: root.appendingPathComponent("Edits/\(f).yaml").path, base: model,
                                               tokenizer: tokenizer, existing: variants.map(\.name))
        }
        let set = VariantSet(variants.map(\.model), reference: model)
        var best: [Bool: Double] = [:]
        for attributes in [false, true] {
            bias.attributes = attributes; retention.attributes = attributes
            let (b, r) = (bias, retention)
            let samples = try timed(warmup: warmup, runs: runs) {
                model.senseCache.removeAll()
                _ = try b.evaluate(set) { _ in }
                _ = try r.evaluate(set) { _ in }
            }
            best[attributes] = out.measurement(attributes ? "demo/pronoun_suites_attributed" : "demo/pronoun_suites", tokens: 0,
                                               samples: samples, warmup: warmup, extra: ["variants": variants.count]).best
        }
        print(String(format: "attribution    pronoun-bias + pronoun-retention, %d variants: %.3f s without, %.3f s with = +%.3f s (+%.0f %%)",
                     variants.count, best[false]!, best[true]!, best[true]! - best[false]!, 100 * (best[true]! / best[false]! - 1)))
    }

    /// `make demo`'s edit files (the Makefile's DEMO_EDITS), by name under Edits/.
    static let demoEdits = ["remove-gender-sense", "debias-project-gender", "optimize-gender-sense", "leace-gender",
                            "sweep-remove-localized-senses", "sweep-project-strength", "sweep-seed-debias-localized",
                            "sweep-leace-gender-senses"]

    /// The pronoun-bias prompts (templates x one-token nouns) through the trunk and the sense
    /// weights, with each template's common prefix run once (the default) and with every row.
    private func benchPrompts(dir: ModelDirectory, model: LanguageModel, into out: inout BenchLines) throws {
        let tokenizer = try options.loadTokenizer(for: dir)
        guard let evaluations = EvalSupport.evaluationsDirectory() else {
            throw ValidationError("--prompts: no Evaluations/ directory found (run from the repository)")
        }
        // The suite builds its prompts (templates x one-token nouns), as `eval` runs them.
        let locations = DataLocations(repositoryData: evaluations.deletingLastPathComponent().appendingPathComponent("Data"))
        let prepared = try Suite.resolve("pronoun-bias", evaluationsDirectory: evaluations)
            .prepare(tokenizer: tokenizer, config: model.config, locations: locations)
        guard let pronouns = prepared as? PronounBiasSuite else {
            throw ValidationError("--prompts: Evaluations/pronoun-bias.yaml is not a pronoun_bias suite")
        }
        let batch = pronouns.tokenized
        let tokens = batch.reduce(0) { $0 + $1.count }
        var best: [Bool: Double] = [:]
        for sharing in [false, true] {
            let samples = try timed(warmup: warmup, runs: runs) { _ = try model.contextualize(batch, sharingPrefixes: sharing) }
            let name = sharing ? "prompts_shared_prefixes" : "prompts_every_row"
            let line = out.measurement(name, tokens: tokens, samples: samples, warmup: warmup)
            best[sharing] = line.best
            print(String(format: "%-24@ %d prompts, %d tokens: %.3f s best, %.3f s median of %d", name, batch.count, tokens,
                         line.best, line.median, runs))
        }
        if let a = best[false], let b = best[true] { print(String(format: "shared prefixes: %.2fx faster", a / b)) }
    }

    /// The pronoun protocol and Optimize-Sense10's fit_scale (ratio to one evaluation of the fit prompts).
    private func benchEvaluation(dir: ModelDirectory, model: LanguageModel) throws {
        let tokenizer = try options.loadTokenizer(for: dir)
        let evaluations = EvalSupport.evaluationsDirectory()
        let locations = DataLocations(dataDirectory: nil)
        func time(_ name: String) throws -> (seconds: Double, items: Int, result: SuiteResult?) {
            let suite = try Suite.resolve(name, evaluationsDirectory: evaluations)
            let prepared = try suite.prepare(tokenizer: tokenizer, config: model.config, locations: locations)
            model.senseCache.removeAll()
            let t = Date()
            let results = try EvaluationRunner.run(suites: [prepared], variants: [Variant(name: "base", model: model)])
            return (Date().timeIntervalSince(t), prepared.itemCount, results.first?.suites.first)
        }
        let bias = try time("pronoun-bias")
        print(String(format: "pronoun-bias   %d prompts in %.2f s", bias.items, bias.seconds))
        let fit = try time("pronoun-fit")
        print(String(format: "pronoun-fit    %d prompts in %.2f s (one evaluation)", fit.items, fit.seconds))
        guard let root = evaluations?.deletingLastPathComponent() else { return }
        let perplexity = try time("bench-perplexity")
        if let tokens = perplexity.result?["n_tokens"]?.doubleValue {
            print(String(format: "perplexity     %.0f tokens scored in %.2f s: %.0f tokens/s", tokens, perplexity.seconds, tokens / perplexity.seconds))
        }
        let edits = root.appendingPathComponent("Edits/paper-optimize-sense10.yaml")
        let file = try EditFile.load(edits)
        model.senseCache.removeAll()
        let t = Date()
        let outcome = try Editor.apply([file], to: model, tokenizer: tokenizer)
        let seconds = Date().timeIntervalSince(t)
        let fitted = outcome.records.reduce(0) { $0 + $1.tokens.count }
        print(String(format: "fit_scale      %d nouns on the fit prompts in %.2f s = %.2fx one evaluation (target <= 3x)",
                     fitted, seconds, seconds / max(fit.seconds, 1e-9)))
    }
}

/// The JSON lines of one bench process (format: Tools/bench/compare.py's docstring).
struct BenchLines {
    var meta: [String: Any]
    var lines: [[String: Any]] = []

    init() {
        var load = [Double](repeating: 0, count: 3)
        _ = getloadavg(&load, 3)
        meta = ["side": "swift", "name": "meta", "host": hostName(), "started_unix": Date().timeIntervalSince1970,
                "blas": BLAS.backendDescription, "threads": BLAS.threads, "loadavg_start": load,
                "cpu": cpuName(), "env": ProcessInfo.processInfo.environment.filter {
                    ["BACKPACK_BLAS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS"].contains($0.key) }]
    }

    mutating func add(_ line: [String: Any]) { lines.append(["side": "swift"].merging(line) { a, _ in a }) }

    /// A timed measurement: "seconds" is the best sample.
    @discardableResult
    mutating func measurement(_ name: String, tokens: Int, samples: [Double], warmup: Int, extra: [String: Any] = [:]) -> (best: Double, median: Double) {
        let sorted = samples.sorted()
        let best = sorted[0]
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        var line: [String: Any] = ["name": name, "tokens": tokens, "seconds": best, "median_seconds": median, "samples": samples,
                                   "warmup": warmup, "runs": samples.count, "stat": "best"]
        if best > 0 { line["tokens_per_s"] = Double(tokens) / best }
        add(line.merging(extra) { a, _ in a })
        return (best, median)
    }

    /// Meta line (with the load average at the end) first, then the measurements; written to a
    /// temporary file and renamed.
    func write(to url: URL) throws {
        var m = meta
        var load = [Double](repeating: 0, count: 3)
        _ = getloadavg(&load, 3)
        m["loadavg_end"] = load
        m["finished_unix"] = Date().timeIntervalSince1970
        var text = ""
        for line in [m] + lines {
            let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
            text += String(decoding: data, as: UTF8.self) + "\n"
        }
        try AtomicOutput.file(url, data: Data(text.utf8))
        print("wrote \(url.path)")
    }
}

/// The machine's name as Python's platform.node() gives it (uname's nodename), so that
/// compare.py sees one host for both sides.
func hostName() -> String {
    var u = utsname()
    uname(&u)
    return withUnsafeBytes(of: &u.nodename) { raw in String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self) }
}

func cpuName() -> String {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
    for line in text.split(separator: "\n") where line.hasPrefix("model name") {
        return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
    }
    return "unknown"
}

/// VmHWM from /proc/self/status (Linux), in bytes.
func peakRSSBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kb * 1024
    }
    return 0
}
