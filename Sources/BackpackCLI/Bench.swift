import ArgumentParser
import BackpackEditing
import BackpackEvaluation
import BackpackModel
import BackpackResults
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure opening time, forward throughput and peak memory (used by `make bench`).",
        discussion: "Forward passes start with an empty sense cache, so every run pays for the sense network as the PyTorch reference does.")

    @OptionGroup var options: ModelOptions
    @Option(help: "Timed runs per shape (the best is reported).") var runs = 3
    @Option(help: "Random seed for the token ids.") var seed: UInt64 = 1
    @Option(help: "Only this shape, e.g. 1x512 or 8x128 (peak memory is then that shape's). Default: both.")
    var shape: String?
    @Flag(help: "Time the pronoun suites and fit_scale instead of raw forward passes (needs a tokenizer).")
    var evaluation = false

    func run() throws {
        let start = Date()
        let dir = try options.directory()
        let model = LanguageModel(parameters: try dir.parameters())
        let openSeconds = Date().timeIntervalSince(start)
        let weightBytes = dir.weightFiles.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1.path)[.size] as? Int) ?? 0) }
        print("model          \(dir.url.path) (\(dir.format), \(String(format: "%.0f", Double(weightBytes) / 1e6)) MB)")
        print("BLAS           \(BLAS.backendDescription)")
        print(String(format: "open           %.3f s   (target <= 1 s)", openSeconds))
        if evaluation {
            try benchEvaluation(dir: dir, model: model)
            printPeak(weightBytes, target: false)
            return
        }
        var rng = SeededGenerator(seed: seed)
        let V = UInt64(min(model.config.vocabSize, 50257))
        func randomIDs(_ n: Int) -> [Int] { (0..<n).map { _ in Int(rng.next() % V) } }
        let n = min(512, model.config.nPositions)
        let shapes: [(String, [[Int]], ClosedRange<Double>)] = [
            ("1x\(n)", [randomIDs(n)], 327...387),
            ("8x\(min(128, n))", (0..<8).map { _ in randomIDs(min(128, n)) }, 326...438),
        ]
        for (name, batch, reference) in shapes where shape == nil || shape == name {
            var best = Double.infinity, first = 0.0
            for r in 0..<(runs + 1) {
                model.senseCache.removeAll()
                let t = Date()
                _ = try model.forward(batch: batch, options: .init(logits: .all))
                let s = Date().timeIntervalSince(t)
                if r == 0 { first = s } else { best = min(best, s) }
            }
            let tokens = Double(batch.reduce(0) { $0 + $1.count })
            // Where the time goes: the sense network alone, then everything but the output layer.
            model.senseCache.removeAll()
            var t = Date()
            _ = model.senseVectors(batch.flatMap { $0 })
            let senseSeconds = Date().timeIntervalSince(t)
            t = Date()
            _ = try model.forward(batch: batch, options: .init(logits: .none))
            let noLogitSeconds = Date().timeIntervalSince(t)
            print(String(format: "forward %-6@ %.3f s best of %d (first %.3f s)  %.0f tokens/s   PyTorch reference %.0f-%.0f tokens/s: x%.2f-x%.2f",
                         name, best, runs, first, tokens / best, reference.lowerBound, reference.upperBound,
                         tokens / best / reference.upperBound, tokens / best / reference.lowerBound))
            print(String(format: "               sense network %.3f s, trunk and sense weights %.3f s, output layer %.3f s",
                         senseSeconds, noLogitSeconds, max(0, best - noLogitSeconds - senseSeconds)))
        }
        printPeak(weightBytes)
    }

    private func printPeak(_ weightBytes: Int, target: Bool = true) {
        let peak = peakRSSBytes()
        print(String(format: "peak RSS       %.0f MB = %.2fx the weights", Double(peak) / 1e6, Double(peak) / Double(max(weightBytes, 1)))
              + (target ? " (target <= 1.3x)" : ""))
    }

    /// The paper's pronoun protocol (target: 520 prompts in <= 6 s; the PyTorch reference takes
    /// ~60 s) and Optimize-Sense10's fit (target: <= 3x one evaluation of the fit prompts).
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
        print(String(format: "pronoun-bias   %d prompts in %.2f s (target <= 6 s; PyTorch reference ~60 s for 520)", bias.items, bias.seconds))
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

/// VmHWM from /proc/self/status (Linux), in bytes.
func peakRSSBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kb * 1024
    }
    return 0
}
