import ArgumentParser
import BackpackCheckpoint
import BackpackIO
import BackpackModel
import BackpackModelFolder
import Foundation

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a random-weight checkpoint of any size (GPT-2 initialisation).",
        discussion: "--config takes a config.json, or `backpack-gpt2` for the published 170M architecture. Writes config.json and model.safetensors.")

    @Option(help: "config.json of the architecture, or `backpack-gpt2`.") var config: String
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Output directory (replaced atomically if it exists).") var out: String
    @Option(help: "Copy this directory's tokenizer files (tokenizer.json, or vocab.json + merges.txt, ...) into the output.") var tokenizer: String?

    func run() throws {
        let target = URL(fileURLWithPath: out)
        try OutputCheck.directory(target)
        let cfg = config == "backpack-gpt2" ? BackpackConfig.backpackGPT2 : try BackpackConfig.load(URL(fileURLWithPath: config))
        let parameters = RandomInitializer.parameters(config: cfg, seed: seed)
        try AtomicOutput.directory(target) { dir in
            try AtomicOutput.file(dir.appendingPathComponent(ModelFolder.configFile), data: try cfg.jsonData())
            try SafetensorsWriter.write(parameters.tensors(), metadata: ["format": "pt", "seed": String(seed)],
                                        to: dir.appendingPathComponent(ModelFolder.safetensorsFile))
            if let tokenizer {
                let src = URL(fileURLWithPath: tokenizer)
                for name in ModelFolder.tokenizerFiles {
                    let file = src.appendingPathComponent(name)
                    if FileManager.default.fileExists(atPath: file.path) {
                        try FileManager.default.copyItem(at: file, to: dir.appendingPathComponent(name))
                    }
                }
            }
        }
        let total = parameters.counts().reduce(0) { $0 + $1.count }
        print("wrote \(target.path): \(cfg.architecture.rawValue), \(formatCount(total)) parameters, seed \(seed)")
    }
}
