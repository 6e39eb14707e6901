import ArgumentParser
import BackpackModel
import Foundation

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Architecture, parameter counts per part, files and dtypes.")

    @Argument(help: "Model directory or ORG/NAME[@REVISION] (Hugging Face cache). Default: the embedded demo model.")
    var model: String?
    @Option(name: .customLong("model"), help: "The same as the argument, spelled as the other commands take it.")
    var modelOption: String?

    func run() throws {
        guard model == nil || modelOption == nil else { throw ValidationError("give the model once: as the argument or with --model") }
        let dir = try ModelOptions(model: model ?? modelOption).directory()
        let c = dir.config
        let parameters = try dir.parameters()
        print("model        \(dir.url.path)")
        print("architecture \(c.architecture.rawValue)")
        print("layers       \(c.nLayer)   d \(c.nEmbd)   heads \(c.nHead)   positions \(c.nPositions)   vocabulary \(c.vocabSize)")
        if c.architecture == .backpack {
            print("senses       \(c.senses)   sense MLP width \(c.senseInnerDim)")
        }
        print("parameters")
        let counts = parameters.counts()
        for (part, count) in counts { print("  \(part.padding(toLength: 42, withPad: " ", startingAt: 0)) \(formatCount(count))") }
        print("  \("total".padding(toLength: 42, withPad: " ", startingAt: 0)) \(formatCount(counts.reduce(0) { $0 + $1.count }))")
        print("files        (\(dir.format))")
        for file in dir.weightFiles {
            let size = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
            print("  \(file.lastPathComponent)  \(String(format: "%.1f", Double(size) / 1_048_576)) MiB")
        }
        var dtypes: [String: Int] = [:]
        for info in dir.archive.tensors.values { dtypes[info.dtype.rawValue, default: 0] += 1 }
        print("dtypes       " + dtypes.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))
        let overrides = try dir.senseOverrides()
        if !overrides.isEmpty { print("sense edits  \(overrides.count) token(s) with edited senses (\(ModelDirectory.overridesFile))") }
        if let tok = try? dir.tokenizer() { print("tokenizer    \(tok.count) tokens") } else { print("tokenizer    none in the directory") }
    }
}

func formatCount(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, ch) in s.enumerated() {
        if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return out
}

extension ModelOptions {
    init(model: String?) {
        self.init()
        self.model = model
    }
}
