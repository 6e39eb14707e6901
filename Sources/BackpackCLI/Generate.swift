import ArgumentParser
import BackpackEditing
import BackpackModel
import Foundation

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a text (keys, values and senses are cached: each new token costs one position).")

    @OptionGroup var options: ModelOptions
    @OptionGroup var editOptions: EditOptions
    @Option(help: "The text to continue.") var text: String?
    /// The first spelling of --text, kept for scripts.
    @Option(name: .customLong("prompt"), help: .hidden) var prompt: String?
    @Option(help: "Tokens to generate.") var maxTokens = 40
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 1
    @Option(help: "Sample among the K most likely tokens.") var topK: Int?
    @Option(help: "Random seed (same seed, same text).") var seed: UInt64 = 0

    func validate() throws {
        if (text == nil) == (prompt == nil) { throw ValidationError("give the text to continue once, with --text") }
        if maxTokens < 0 { throw ValidationError("--max-tokens must be at least 0") }
        if temperature < 0 { throw ValidationError("--temperature must be at least 0") }
        if let k = topK, k < 1 { throw ValidationError("--top-k must be at least 1") }
    }

    func run() throws {
        let dir = try options.directory()
        let tokenizer = try options.loadTokenizer(for: dir)
        let model = try editOptions.apply(to: try dir.load(), tokenizer: tokenizer).model
        let prompt = text ?? prompt ?? ""
        var ids = tokenizer.encode(prompt)
        if ids.isEmpty, let eot = tokenizer.endOfTextID { ids = [eot] }
        let session = GenerationSession(model: model)
        var sampler = Sampler(temperature: temperature, topK: topK, seed: seed)
        var logits = try session.feed(ids)
        var generated: [Int] = []
        FileHandle.standardOutput.write(Data(prompt.utf8))
        for _ in 0..<maxTokens where session.ids.count < model.config.nPositions {
            let next = sampler.sample(logits)
            if next == tokenizer.endOfTextID { break }
            generated.append(next)
            FileHandle.standardOutput.write(Data(tokenizer.decode([next]).utf8))
            if session.ids.count >= model.config.nPositions { break }
            logits = try session.feed([next])
        }
        print("")
    }
}
