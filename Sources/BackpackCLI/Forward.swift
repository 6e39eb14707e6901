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

    func validate() throws {
        if (ids == nil) == (text == nil) { throw ValidationError("give exactly one of --ids and --text") }
    }

    func run() throws {
        let dir = try options.directory()
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
        let url = URL(fileURLWithPath: out)
        try AtomicOutput.checkNotInput(url, inputs: [dir.url])
        try SafetensorsWriter.write(tensors, metadata: ["model": dir.url.path, "tool": "backpack \(Backpack.version)"], to: url)
        print("wrote \(url.path): \(n) tokens, logits (\(n), \(c.vocabSize))" + (model.isBackpack ? ", senses (\(c.senses), \(n), \(c.nEmbd)), contextualization (\(c.senses), \(n), \(n))" : "") + ", hidden (\(n), \(c.nEmbd))")
    }
}
