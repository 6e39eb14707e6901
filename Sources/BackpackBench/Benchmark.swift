import BackpackEditing
import BackpackEvaluation
import BackpackExplorer
import BackpackIO
import BackpackModel
import BackpackModelFolder
import BackpackResults
import BackpackTokenizer
import BackpackWorkflows
import Foundation

/// The Swift side of `make bench` (the PyTorch side is Tools/bench/torch_bench.py; compare.py puts
/// the two side by side). Every number is measured by this process on this machine.
///
/// Protocol (shared with torch_bench.py): per measurement `warmup` untimed runs, then `runs` timed
/// runs; the best is "seconds", the median "median_seconds". Forward passes start with an empty
/// sense cache, so every run pays for the sense network as PyTorch does.
public struct Benchmark {
    /// What to measure besides the opening time and the peak memory.
    public enum Measurement {
        /// Forward passes (both shapes, or `shape` alone, e.g. "1x512"), when `forward`; then, with a
        /// workload file (Tools/bench/workload.py), perplexity of the base model alone and of the
        /// base with the file's three edits in one evaluation.
        case throughput(forward: Bool, shape: String?, workload: URL?)
        /// `make demo`'s evaluation (pronoun-bias + demo-heldout-perplexity): base alone against base
        /// with the first three `edits` (the demo's single word-level edits), then the cost of the
        /// pronoun suites' attribution over all of `edits` (their variants and sweep points).
        case demo(edits: [String])
        /// The pronoun suites and Optimize-Sense10's fit_scale.
        case evaluation
        /// The pronoun-bias prompts through the trunk, with shared prefixes and with every row.
        case prompts
        /// `backpack explore`'s update after a slider move (predictions and attribution).
        case explorer
    }

    public var warmup = 1
    public var runs = 5
    /// Seed of the forward ids (Tools/bench/workload.py draws the same).
    public var seed: UInt64 = 1
    public var perplexityRuns = 3
    public var perplexityBatchTokens = 1024
    /// Each printed line, as it is measured (`make bench` and scripts read them).
    public var say: (String) -> Void

    public init(say: @escaping (String) -> Void) { self.say = say }

    /// Opens the model at `url` (timed), measures, and returns the JSON lines; `tokenizer` is asked
    /// only by the measurements that need one.
    public func run(model url: URL, _ measurement: Measurement,
                    tokenizer: (ModelDirectory) throws -> GPT2Tokenizer) throws -> BenchLines {
        var out = BenchLines()
        let start = Date()
        let dir = try ModelDirectory(url)
        let model = LanguageModel(parameters: try dir.parameters())
        let openSeconds = Date().timeIntervalSince(start)
        let weightBytes = dir.weightFiles.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1.path)[.size] as? Int) ?? 0) }
        out.meta["model"] = dir.url.path
        say("model          \(dir.url.path) (\(dir.format), \(String(format: "%.0f", Double(weightBytes) / 1e6)) MB)")
        say("BLAS           \(BLAS.backendDescription)")
        say(String(format: "open           %.3f s", openSeconds))
        out.add(["name": "open", "tokens": 0, "seconds": openSeconds, "samples": [openSeconds], "warmup": 0, "runs": 1,
                 "stat": "once", "weight_bytes": weightBytes])

        switch measurement {
        case .demo(let edits): try demo(model: model, tokenizer: try tokenizer(dir), edits: edits, into: &out)
        case .evaluation: try evaluation(model: model, tokenizer: try tokenizer(dir))
        case .prompts: try prompts(model: model, tokenizer: try tokenizer(dir), into: &out)
        case .explorer: try explorer(model: model, at: dir.url, tokenizer: try tokenizer(dir), into: &out)
        case .throughput(let forward, let shape, let workload):
            if forward { try self.forward(model, shape: shape, into: &out) }
            if let workload { try perplexity(model, workload: workload, into: &out) }
        }
        let peak = MachineProbe.peakRSSBytes()
        say(String(format: "peak RSS       %.0f MB = %.2fx the weights", Double(peak) / 1e6, Double(peak) / Double(max(weightBytes, 1))))
        if peak > 0 { out.add(["name": "peak_rss", "bytes": peak, "weight_bytes": weightBytes, "ratio_to_weights": Double(peak) / Double(max(weightBytes, 1))]) }
        return out
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

    /// Two workloads timed in turn, a then b, `runs` times each: a ratio of the two then compares
    /// runs minutes apart at most. (Timed one block after the other, base alone swung by 1 s of
    /// 5 s between blocks on a shared 2-core machine, and a sweep point's share, (all - base) /
    /// 64 / base, from 0.5 % to 1.0 % for one binary.)
    func timedInTurn(warmup: Int, runs: Int, _ a: () throws -> Void, _ b: () throws -> Void) rethrows -> (a: [Double], b: [Double]) {
        for _ in 0..<warmup { try a(); try b() }
        var ta: [Double] = [], tb: [Double] = []
        for _ in 0..<runs {
            ta += try timed(warmup: 0, runs: 1, a)
            tb += try timed(warmup: 0, runs: 1, b)
        }
        return (ta, tb)
    }

    func forward(_ model: LanguageModel, shape: String?, into out: inout BenchLines) throws {
        var rng = SeededGenerator(seed: seed)
        let V = UInt64(min(model.config.vocabSize, 50257))
        func randomIDs(_ n: Int) -> [Int] { (0..<n).map { _ in Int(rng.next() % V) } }
        let n = min(512, model.config.nPositions), m = min(128, n)
        // Drawn in this order whatever `shape` is, so each shape's ids are the same as in a full run.
        let shapes: [(String, [[Int]])] = [("1x\(n)", [randomIDs(n)]), ("8x\(m)", (0..<8).map { _ in randomIDs(m) })]
        if let shape, !shapes.contains(where: { $0.0 == shape }) {
            throw BenchError("--shape \(shape): this model's shapes are \(shapes.map(\.0).joined(separator: ", "))")
        }
        for (name, batch) in shapes where shape == nil || shape == name {
            let tokens = batch.reduce(0) { $0 + $1.count }
            let samples = try timed(warmup: warmup, runs: runs) {
                model.senseCache.removeAll()
                _ = try model.forward(batch: batch, options: .init(logits: .all))
            }
            let line = out.measurement("forward_\(name)", tokens: tokens, samples: samples, warmup: warmup)
            say(String(format: "forward %-6@ %.3f s best, %.3f s median of %d  %.0f tokens/s", name, line.best, line.median, runs,
                       Double(tokens) / line.best))
            var parts: [String] = []
            for (step, body) in try model.stages(batch) {
                let s = timed(warmup: warmup, runs: runs, body)
                let r = out.measurement("forward_\(name)/\(step)", tokens: tokens, samples: s, warmup: warmup)
                parts.append(String(format: "%@ %.3f s", step, r.best))
            }
            say("               " + parts.joined(separator: ", "))
        }
    }

    /// Base alone, then base + the workload's edits in one evaluation (VariantSet), then each
    /// edit alone once (its time beside PyTorch's pass for that variant; its nll must equal the
    /// shared evaluation's).
    func perplexity(_ model: LanguageModel, workload url: URL, into out: inout BenchLines) throws {
        let work = try BenchWorkload.load(url, model: model)
        out.meta["workload"] = ["file": url.lastPathComponent, "source": work.source, "sha256": work.sha256]
        let suite = try PerplexitySuite(name: "bench-workload", file: url, documents: work.passages, maxLength: work.maxLength,
                                        stride: work.stride, batchTokens: perplexityBatchTokens, model: model.config, dataSHA256: work.sha256)
        let variants = [("base", model)] + work.variants
        // One untimed evaluation of the first window warms threads and allocator (as PyTorch's side does).
        let warm = try PerplexitySuite(name: "warm", file: url, documents: [Array(work.passages[0].prefix(work.maxLength))], maxLength: work.maxLength,
                                       stride: work.stride, batchTokens: perplexityBatchTokens, model: model.config, dataSHA256: work.sha256)
        _ = try warm.evaluate(model) { _ in }
        var baseResult: SuiteResult?, allResults: [SuiteResult] = []
        let baseSamples = try timed(warmup: 0, runs: perplexityRuns) {
            model.senseCache.removeAll()
            baseResult = try suite.evaluate(model) { _ in }
        }
        let allSamples = try timed(warmup: 0, runs: perplexityRuns) {
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
                                extra: ["variants": variants.count, "passes": 1, "peak_rss_bytes": MachineProbe.peakRSSBytes()])
        say(String(format: "perplexity     base alone %.3f s (%d tokens scored, ppl %.3f); base + %d edits %.3f s = %.2fx base alone",
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
            say(String(format: "  %-24@ ppl %.3f (alone: %.3f s; nll shared vs alone %@)", name, Foundation.exp(nll / Double(scored)), s[0],
                       agree ? "agree within 1e-6" : "DIFFER"))
            if !agree { throw ModelError(file: url.path, reason: "variant \(name): shared evaluation nll \(nll) differs from its own \(aloneNLL)") }
        }
    }

    /// The checkout's Evaluations/, which the evaluation measurements read their suites from.
    func evaluations(_ what: String) throws -> URL {
        guard let evaluations = Toolkit.evaluationsDirectory() else {
            throw BenchError("\(what): no Evaluations/ directory found (run from the repository)")
        }
        return evaluations
    }

    /// `make demo`'s evaluation on the embedded model: pronoun-bias + demo-heldout-perplexity, base
    /// alone vs base + the first three edits in one run (edits applied before the timing).
    func demo(model: LanguageModel, tokenizer: GPT2Tokenizer, edits: [String], into out: inout BenchLines) throws {
        let evaluations = try evaluations("--demo-workload")
        guard edits.count >= 3 else {
            throw BenchError("--demo-workload: give make demo's edit files with --edit (its first three are timed against base; make bench passes DEMO_EDITS)")
        }
        let locations = DataLocations(repositoryData: evaluations.deletingLastPathComponent().appendingPathComponent("Data"))
        let suites = try ["pronoun-bias", "demo-heldout-perplexity"].map {
            try Suite.resolve($0, evaluationsDirectory: evaluations).prepare(tokenizer: tokenizer, config: model.config, locations: locations)
        }
        let t = Date()
        let variants = try EditVariants.withBase(model, edits: Array(edits.prefix(3)), tokenizer: tokenizer)
        let editSeconds = Date().timeIntervalSince(t)
        var tokens = 0
        let (baseSamples, allSamples) = try timedInTurn(warmup: warmup, runs: runs, {
            model.senseCache.removeAll()
            let r = try EvaluationRunner.run(suites: suites, variants: [variants[0]])
            // the tokens scored by the perplexity suite (the pronoun prompts add one row each)
            tokens = r[0].suites.compactMap { $0["n_tokens"]?.doubleValue }.map(Int.init).reduce(0, +)
        }, {
            model.senseCache.removeAll()
            _ = try EvaluationRunner.run(suites: suites, variants: variants)
        })
        let b = out.measurement("demo/base", tokens: tokens, samples: baseSamples, warmup: warmup)
        let a = out.measurement("demo/all", tokens: tokens * variants.count, samples: allSamples, warmup: warmup,
                                extra: ["variants": variants.count])
        say(String(format: "demo workload  pronoun-bias + demo-heldout-perplexity: base alone %.3f s, base + %d edits %.3f s = %.2fx (target <= 1.6x); applying the edits %.2f s",
                   b.best, variants.count - 1, a.best, a.best / b.best, editSeconds))
        try sweepPoint(evaluations: evaluations, suites: suites, model: model, tokenizer: tokenizer, into: &out)
        try attribution(evaluations: evaluations, model: model, tokenizer: tokenizer, edits: edits, locations: locations, into: &out)
    }

    /// What one point of a word-level sweep adds to the demo's evaluation (issue 30's target: at
    /// most 1 % of a base pass): pronoun-bias + demo-heldout-perplexity on base and a 64-point
    /// sweep over the scale (0 to 2) of the profession nouns' top-3 localized he/she senses, against
    /// base alone, timed in turn; (all - base) / 64 as a share of base.
    func sweepPoint(evaluations: URL, suites: [PreparedSuite], model: LanguageModel, tokenizer: GPT2Tokenizer,
                    into out: inout BenchLines) throws {
        let points = 64
        let words = evaluations.deletingLastPathComponent().appendingPathComponent("Edits/lists/paper-professions.txt")
        let scales = (0..<points).map { String(format: "%.6g", 2 * Double($0) / Double(points - 1)) }
        let text = """
            schema: backpack-edit/1
            name: bench-sweep-\(points)
            description: make bench's sweep, the scale of the top-3 localized he/she senses of the profession nouns.
            interventions:
              - words: {file: "\(words.path)"}
                pieces: skip
                senses: {localized: {pair: [he, she], top: 3}}
                scale: {sweep: [\(scales.joined(separator: ", "))]}

            """
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("backpack-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("bench-sweep.yaml")
        try text.write(to: file, atomically: true, encoding: .utf8)
        let variants = try EditVariants.withBase(model, edits: [file.path], tokenizer: tokenizer)
        let (baseSamples, samples) = try timedInTurn(warmup: warmup, runs: runs, {
            model.senseCache.removeAll()
            _ = try EvaluationRunner.run(suites: suites, variants: [variants[0]])
        }, {
            model.senseCache.removeAll()
            _ = try EvaluationRunner.run(suites: suites, variants: variants)
        })
        let baseSeconds = out.measurement("demo/sweep_base", tokens: 0, samples: baseSamples, warmup: warmup).best
        let all = out.measurement("demo/sweep", tokens: 0, samples: samples, warmup: warmup, extra: ["variants": variants.count]).best
        let share = (all - baseSeconds) / Double(variants.count - 1) / baseSeconds
        say(String(format: "sweep point    pronoun-bias + demo-heldout-perplexity, base + a %d-point sweep %.3f s vs base alone %.3f s: a point costs %.1f %% of a base pass (target <= 1 %%)",
                   variants.count - 1, all, baseSeconds, 100 * share))
    }

    /// What the attribution the pronoun suites store costs: pronoun-bias and pronoun-retention on
    /// the demo's variants (base, its single edits and sweeps: `make demo`'s list), without and
    /// with attribution, side by side (issue 21's limit: the demo at most 15 % slower).
    func attribution(evaluations: URL, model: LanguageModel, tokenizer: GPT2Tokenizer, edits: [String], locations: DataLocations,
                     into out: inout BenchLines) throws {
        guard var bias = try Suite.resolve("pronoun-bias", evaluationsDirectory: evaluations)
                .prepare(tokenizer: tokenizer, config: model.config, locations: locations) as? PronounBiasSuite,
              var retention = try Suite.resolve("pronoun-retention", evaluationsDirectory: evaluations)
                .prepare(tokenizer: tokenizer, config: model.config, locations: locations) as? PronounRetentionSuite else {
            throw BenchError("--demo-workload: Evaluations/pronoun-bias.yaml or pronoun-retention.yaml is not a pronoun suite")
        }
        let variants = try EditVariants.withBase(model, edits: edits, tokenizer: tokenizer)
        let set = VariantSet(variants.map(\.model), reference: model)
        func suites(attributed: Bool) -> () throws -> Void {
            bias.attributes = attributed; retention.attributes = attributed
            let (b, r) = (bias, retention)
            return {
                model.senseCache.removeAll()
                _ = try b.evaluate(set) { _ in }
                _ = try r.evaluate(set) { _ in }
            }
        }
        let samples = try timedInTurn(warmup: warmup, runs: runs, suites(attributed: false), suites(attributed: true))
        let without = out.measurement("demo/pronoun_suites", tokens: 0, samples: samples.a, warmup: warmup,
                                      extra: ["variants": variants.count]).best
        let with = out.measurement("demo/pronoun_suites_attributed", tokens: 0, samples: samples.b, warmup: warmup,
                                   extra: ["variants": variants.count]).best
        say(String(format: "attribution    pronoun-bias + pronoun-retention, %d variants: %.3f s without, %.3f s with = +%.3f s (+%.0f %%)",
                   variants.count, without, with, with - without, 100 * (with / without - 1)))
    }

    /// The pronoun-bias prompts (templates x one-token nouns) through the trunk and the sense
    /// weights, with each template's common prefix run once (the default) and with every row.
    func prompts(model: LanguageModel, tokenizer: GPT2Tokenizer, into out: inout BenchLines) throws {
        let evaluations = try evaluations("--prompts")
        // The suite builds its prompts (templates x one-token nouns), as `eval` runs them.
        let locations = DataLocations(repositoryData: evaluations.deletingLastPathComponent().appendingPathComponent("Data"))
        let prepared = try Suite.resolve("pronoun-bias", evaluationsDirectory: evaluations)
            .prepare(tokenizer: tokenizer, config: model.config, locations: locations)
        guard let pronouns = prepared as? PronounBiasSuite else {
            throw BenchError("--prompts: Evaluations/pronoun-bias.yaml is not a pronoun_bias suite")
        }
        let batch = pronouns.tokenized
        let tokens = batch.reduce(0) { $0 + $1.count }
        var best: [Bool: Double] = [:]
        for sharing in [false, true] {
            let samples = try timed(warmup: warmup, runs: runs) { _ = try model.contextualize(batch, sharingPrefixes: sharing) }
            let name = sharing ? "prompts_shared_prefixes" : "prompts_every_row"
            let line = out.measurement(name, tokens: tokens, samples: samples, warmup: warmup)
            best[sharing] = line.best
            say(String(format: "%-24@ %d prompts, %d tokens: %.3f s best, %.3f s median of %d", name, batch.count, tokens,
                       line.best, line.median, runs))
        }
        if let a = best[false], let b = best[true] { say(String(format: "shared prefixes: %.2fx faster", a / b)) }
    }

    /// The pronoun protocol and Optimize-Sense10's fit_scale (ratio to one evaluation of the fit prompts).
    func evaluation(model: LanguageModel, tokenizer: GPT2Tokenizer) throws {
        let evaluations = Toolkit.evaluationsDirectory()
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
        say(String(format: "pronoun-bias   %d prompts in %.2f s", bias.items, bias.seconds))
        let fit = try time("pronoun-fit")
        say(String(format: "pronoun-fit    %d prompts in %.2f s (one evaluation)", fit.items, fit.seconds))
        guard let root = evaluations?.deletingLastPathComponent() else { return }
        let perplexity = try time("bench-perplexity")
        if let tokens = perplexity.result?["n_tokens"]?.doubleValue {
            say(String(format: "perplexity     %.0f tokens scored in %.2f s: %.0f tokens/s", tokens, perplexity.seconds, tokens / perplexity.seconds))
        }
        let file = try EditFile.load(root.appendingPathComponent("Edits/paper-optimize-sense10.yaml"))
        model.senseCache.removeAll()
        let t = Date()
        let outcome = try Editor.apply([file], to: model, tokenizer: tokenizer)
        let seconds = Date().timeIntervalSince(t)
        let fitted = outcome.records.reduce(0) { $0 + $1.tokens.count }
        say(String(format: "fit_scale      %d nouns on the fit prompts in %.2f s = %.2fx one evaluation (target <= 3x)",
                   fitted, seconds, seconds / max(fit.seconds, 1e-9)))
    }
}

/// A benchmark that cannot run as asked (a shape the model lacks, no Evaluations/ folder).
public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
