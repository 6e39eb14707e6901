import ArgumentParser
import BackpackCheckpoint
import BackpackEditing
import BackpackModel
import BackpackIO
import Foundation

struct Forward: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one sequence and write its tensors to a safetensors file.",
        discussion: "Writes float32 `logits` (n, V), `senses` (k, n, d), `contextualization` (k, n, n), `hidden` (n, d) and `input_ids`. This is how other implementations are checked against this one.")

    @OptionGroup var options: ModelOptions
    @OptionGroup var editOptions: EditOptions
    @Option(help: "Token ids, comma-separated.") var ids: String?
    @Option(help: "Text to tokenize with the model's tokenizer.") var text: String?
    @Option(help: "Output .safetensors file.") var out: String
    @Flag(help: "Write NaN or infinite outputs instead of stopping with an error that says where they are.") var allowNonfinite = false

    func validate() throws {
        if (ids == nil) == (text == nil) { throw ValidationError("give exactly one of --ids and --text") }
    }

    func run() throws {
        let url = URL(fileURLWithPath: out)
        try OutputCheck.file(url)
        let dir = try options.directory()
        try AtomicOutput.checkNotInput(url, inputs: [dir.url])
        let model = try editOptions.apply(to: try dir.load(), tokenizer: try options.optionalTokenizer(for: dir)).model
        let sequence: [Int]
        if let ids { sequence = try parseIDs(ids) } else { sequence = try options.loadTokenizer(for: dir).encode(text ?? "") }
        let c = model.config, n = sequence.count
        let output = try model.forward(sequence, options: .init(logits: .all, senses: true, contextualization: true))
        var tensors: [(name: String, shape: [Int], values: [Float])] = [
            ("logits", [n, c.vocabSize], output.logits),
            ("hidden", [n, c.nEmbd], output.hidden),
            ("input_ids", [n], sequence.map(Float.init)),
        ]
        if let senses = output.senses { tensors.append(("senses", [c.senses, n, c.nEmbd], senses)) }
        if let alpha = output.contextualization { tensors.append(("contextualization", [c.senses, n, n], alpha)) }
        if !allowNonfinite {
            for t in tensors {
                guard let i = t.values.firstIndex(where: { !$0.isFinite }) else { continue }
                let bad = t.values.filter { !$0.isFinite }.count
                throw NonFiniteOutput(description: "\(dir.url.path): the forward pass gives \(t.values[i]) in '\(t.name)' at flat index \(i) of shape \(t.shape) (\(bad) of \(t.values.count) values not finite); nothing was written. Pass --allow-nonfinite to write them anyway")
            }
        }
        do {
            try SafetensorsWriter.write(tensors, metadata: ["model": dir.url.path, "tool": "backpack \(Backpack.version)"], to: url)
        } catch {
            throw AtomicOutput.nameTarget(url, error)
        }
        print("wrote \(url.path): \(n) tokens, logits (\(n), \(c.vocabSize))" + (model.isBackpack ? ", senses (\(c.senses), \(n), \(c.nEmbd)), contextualization (\(c.senses), \(n), \(n))" : "") + ", hidden (\(n), \(c.nEmbd))")
    }
}

/// A forward pass that produced NaN or infinity (the message says where).
struct NonFiniteOutput: Error, CustomStringConvertible { let description: String }
