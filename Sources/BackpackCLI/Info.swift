import ArgumentParser
import BackpackModel
import BackpackModelFolder
import Foundation

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Architecture, parameter counts per part, files and dtypes.")

    @OptionGroup var options: ModelOptions
    @Argument(help: "Model directory or ORG/NAME[@REVISION] (same as --model). Default: the embedded demo model.")
    var directory: String?

    func validate() throws {
        if directory != nil, options.model != nil { throw ValidationError("give the model once: as --model or as the argument") }
    }

    func run() throws {
        var options = self.options
        if let directory { options.model = directory }
        let dir = try options.directory()
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
        if !overrides.isEmpty { print("sense edits  \(overrides.count) token(s) with edited senses (\(ModelFolder.senseOverridesFile))") }
        if options.tokenizer != nil {
            print("tokenizer    \(try options.loadTokenizer(for: dir).count) tokens (--tokenizer)")
        } else if let tok = try dir.tokenizer() {
            print("tokenizer    \(tok.count) tokens: \(dir.tokenizerDescription)")
        } else {
            print("tokenizer    \(dir.tokenizerDescription)")
        }
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

