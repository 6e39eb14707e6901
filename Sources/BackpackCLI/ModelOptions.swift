import ArgumentParser
import BackpackHub
import BackpackModel
import BackpackModelFolder
import BackpackTokenizer
import BackpackWorkflows
import BackpackYAML
import Foundation

/// Options every model-reading command shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model directory (config.json + model.safetensors or pytorch_model.bin), or ORG/NAME[@REVISION] from the Hugging Face cache. Default: the embedded demo model.")
    var model: String?

    @Option(name: .long, help: "Tokenizer: a directory, tokenizer.json, or vocab.json/encoder.json with merges beside it. Default: the model's own.")
    var tokenizer: String?

    /// The embedded demo model: BACKPACK_MODEL, else Models/backpack-demo above the executable or the working directory.
    static func defaultModelDirectory() throws -> URL {
        if let env = ProcessInfo.processInfo.environment["BACKPACK_MODEL"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        var searched: [String] = []
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for start in [executable.deletingLastPathComponent(), URL(fileURLWithPath: FileManager.default.currentDirectoryPath)] {
            var dir = start
            for _ in 0..<6 {
                let candidate = dir.appendingPathComponent("Models/backpack-demo")
                searched.append(candidate.path)
                if FileManager.default.fileExists(atPath: candidate.appendingPathComponent(ModelFolder.configFile).path) {
                    return candidate
                }
                dir = dir.deletingLastPathComponent()
            }
        }
        throw ModelError(file: "--model", reason: "not given, and the embedded default model was not found (looked in \(searched.prefix(3).joined(separator: ", ")), ...)")
    }

    /// The model folder: --model (a folder, or a repository in the Hugging Face cache), else the demo model.
    func url() throws -> URL {
        try model.map { try ModelLocator.resolve($0) } ?? Self.defaultModelDirectory()
    }

    func directory() throws -> ModelDirectory { try ModelDirectory(try url()) }

    func loadTokenizer(for directory: ModelDirectory?) throws -> GPT2Tokenizer {
        if let tokenizer { return try GPT2Tokenizer.load(path: URL(fileURLWithPath: tokenizer)) }
        return try Toolkit.tokenizer(for: try directory ?? self.directory())
    }
}

/// The words of a --words value: a word list file (one per line, '#' comments) when one exists at
/// that path, else comma-separated words.
func readWords(_ text: String) throws -> [String] {
    if FileManager.default.fileExists(atPath: text) {
        return try WordListFile.read(URL(fileURLWithPath: text), place: nil).map(\.word)
    }
    return text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

/// Reads "1,2,3" into ids.
func parseIDs(_ text: String) throws -> [Int] {
    try text.split(separator: ",").map { part in
        guard let id = Int(part.trimmingCharacters(in: .whitespaces)) else {
            throw ValidationError("--ids: '\(part)' is not an integer (expected a comma-separated list such as 464,3290,318)")
        }
        return id
    }
}

/// A token's text for display: quotes make leading spaces visible.
func show(_ tokenizer: GPT2Tokenizer?, _ id: Int) -> String {
    guard let text = tokenizer?.displayPiece(id) else { return "#\(id)" }
    return "'" + text.replacingOccurrences(of: "\n", with: "\\n") + "'"
}
