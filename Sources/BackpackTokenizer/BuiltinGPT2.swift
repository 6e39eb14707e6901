import Foundation

// GPT-2's byte-level BPE ships inside this module (GPT2/README.md: source, licence, SHA-256).
// The published stanfordnlp/backpack-gpt2 directory has no tokenizer files: its users load
// GPT-2's. A model with GPT-2's vocabulary and no tokenizer files gets this one.

extension GPT2Tokenizer {
    /// How `backpack info` and error messages name the built-in tokenizer.
    public static let builtinGPT2Description = "GPT-2 BPE (built in: 50257 ids, 50000 merges)"

    /// Vocabulary sizes that mean "GPT-2's vocabulary": its 50257 ids, or padded to 50264 as the
    /// published Backpack checkpoint does.
    public static let gpt2VocabularySizes: Set<Int> = [50257, 50264]

    /// GPT-2's own tokenizer (encoder.json + vocab.bpe built into this module).
    public static func builtinGPT2() throws -> GPT2Tokenizer {
        guard let dir = builtinGPT2Directory() else {
            throw TokenizerError("the built-in GPT-2 tokenizer files are missing (looked for the resource bundle \(resourceBundleName) beside the executable and for the source folder Sources/BackpackTokenizer/GPT2); pass --tokenizer PATH")
        }
        return try GPT2Tokenizer(vocabulary: dir.appendingPathComponent("encoder.json"),
                                 merges: dir.appendingPathComponent("vocab.bpe"))
    }

    static let resourceBundleName = "backpack-edit_BackpackTokenizer.resources"

    /// The folder holding encoder.json and vocab.bpe: SwiftPM's resource bundle beside the
    /// executable (or test bundle), else this module's source folder in a checkout. Looked up by
    /// hand rather than through `Bundle.module`, whose accessor stops the process when the
    /// bundle is missing.
    static func builtinGPT2Directory() -> URL? {
        let fm = FileManager.default
        var candidates: [URL] = []
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        for base in [Bundle.main.bundleURL, executable, Bundle.main.bundleURL.deletingLastPathComponent()] {
            candidates.append(base.appendingPathComponent(resourceBundleName))
        }
        candidates.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("GPT2"))
        return candidates.first { fm.fileExists(atPath: $0.appendingPathComponent("encoder.json").path)
            && fm.fileExists(atPath: $0.appendingPathComponent("vocab.bpe").path) }
    }
}
