import BackpackIO
import BackpackModelFolder
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
        let names = ModelFolder.openAIVocabularyMerges
        return try GPT2Tokenizer(vocabulary: dir.appendingPathComponent(names.vocabulary),
                                 merges: dir.appendingPathComponent(names.merges))
    }

    static let resourceBundleName = "backpack-edit_BackpackTokenizer.resources"

    /// The folder holding encoder.json and vocab.bpe: SwiftPM's resource bundle beside the
    /// executable (or test bundle), else this module's source folder in a checkout.
    static func builtinGPT2Directory() -> URL? {
        let files = [ModelFolder.openAIVocabularyMerges.vocabulary, ModelFolder.openAIVocabularyMerges.merges]
        if let bundle = ResourceBundle.locate(resourceBundleName, holding: files) { return bundle }
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("GPT2")
        return files.allSatisfy { FileManager.default.fileExists(atPath: source.appendingPathComponent($0).path) } ? source : nil
    }
}
