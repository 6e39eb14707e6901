import BackpackCheckpoint
import BackpackIO
import BackpackModelFolder
import BackpackTokenizer
import Foundation

/// A model folder loaded for computation: its contract (file names, `config.json`, the edit
/// record) is ModelFolder's; this opens the weights (`model.safetensors`, sharded with
/// `model.safetensors.index.json`, or `pytorch_model.bin`), the word-level sense edits and the
/// tokenizer.
public struct ModelDirectory: Sendable {
    public let folder: ModelFolder
    public var url: URL { folder.url }
    public var config: BackpackConfig { folder.config }
    public let weightFiles: [URL]
    public let format: String
    public let archive: TensorArchive

    public init(_ url: URL) throws {
        folder = try ModelFolder(url)
        switch ModelFolder.weights(in: url) {
        case .safetensors: archive = try SafetensorsFile(url: folder.file(ModelFolder.safetensorsFile)); format = "safetensors"
        case .shardedSafetensors:
            archive = try ShardedSafetensors(index: folder.file(ModelFolder.safetensorsIndexFile)); format = "safetensors (sharded)"
        case .torch: archive = try TorchCheckpoint(url: folder.file(ModelFolder.torchFile)); format = "pytorch_model.bin (zip + pickle)"
        case nil: throw ModelError(file: url.path, reason: "no weights found: expected \(ModelFolder.Weights.choices)")
        }
        weightFiles = archive.files
    }

    /// Verified parameters of the checkpoint.
    public func parameters() throws -> ParameterSet {
        try ParameterSet.load(from: archive, config: config, file: weightFiles.first?.path ?? url.path)
    }

    /// Word-level sense edits saved by `backpack edit`: tensors `token.<id>` of shape (k, d).
    /// When config.json declares them (`backpack_edit.sense_overrides` with its SHA-256, as
    /// `backpack edit` writes), a missing or different file is an error, never a silent base model.
    public func senseOverrides() throws -> [Int: [Float]] {
        let file = folder.file(ModelFolder.senseOverridesFile)
        let configURL = folder.configURL
        if let edit = folder.edit, let declared = edit.senseOverrides {
            guard declared == ModelFolder.senseOverridesFile, let sha = edit.senseOverridesSHA256 else {
                throw ModelError(file: configURL.path, reason: "key '\(ModelFolder.editKey)': expected \(BackpackEditRecord.senseOverridesKey) \"\(ModelFolder.senseOverridesFile)\" with \(BackpackEditRecord.senseOverridesSHA256Key)")
            }
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw ModelError(file: file.path, reason: "missing: config.json declares this file of word-level sense edits; refusing to load the model without its edit")
            }
            let actual = try FileDigest.sha256(file)
            guard actual == sha.lowercased() else {
                throw ModelError(file: file.path, reason: "SHA-256 is \(actual), config.json (\(ModelFolder.editKey).\(BackpackEditRecord.senseOverridesSHA256Key)) says \(sha); refusing to load an edit that is not the declared one")
            }
        }
        guard FileManager.default.fileExists(atPath: file.path) else { return [:] }
        let overrides = try SafetensorsFile(url: file)
        var table: [Int: [Float]] = [:]
        for (name, info) in overrides.tensors {
            guard name.hasPrefix("token."), let id = Int(name.dropFirst(6)), id >= 0, id < config.vocabSize else {
                throw ModelError(file: file.path, reason: "tensor '\(name)': expected a name 'token.<id>' with an id below \(config.vocabSize)")
            }
            guard info.shape == [config.senses, config.nEmbd] else {
                throw ModelError(file: file.path, reason: "tensor '\(name)': expected shape [\(config.senses), \(config.nEmbd)], found \(info.shape)")
            }
            table[id] = try overrides.floats(name)
        }
        return table
    }

    /// Whether the directory holds tokenizer files of its own.
    public var hasTokenizerFiles: Bool { folder.hasTokenizerFiles }

    /// No tokenizer files, but GPT-2's vocabulary (50257 ids, or 50264 padded): the published
    /// stanfordnlp/backpack-gpt2 is such a directory, and its users load GPT-2's tokenizer.
    public var usesBuiltinGPT2Tokenizer: Bool {
        !hasTokenizerFiles && GPT2Tokenizer.gpt2VocabularySizes.contains(config.vocabSize)
    }

    /// The model's tokenizer: its own files, else GPT-2's built-in BPE when the vocabulary is
    /// GPT-2's, else nil.
    public func tokenizer() throws -> GPT2Tokenizer? {
        if hasTokenizerFiles { return try GPT2Tokenizer.load(from: url) }
        if usesBuiltinGPT2Tokenizer { return try GPT2Tokenizer.builtinGPT2() }
        return nil
    }

    /// What `tokenizer()` loads, in words (for `backpack info`).
    public var tokenizerDescription: String {
        if hasTokenizerFiles { return "the directory's own files" }
        if usesBuiltinGPT2Tokenizer { return GPT2Tokenizer.builtinGPT2Description }
        return "none in the directory (pass --tokenizer PATH)"
    }

    /// The model with its saved sense edits applied.
    public func load() throws -> LanguageModel {
        LanguageModel(parameters: try parameters(), senseOverrides: try senseOverrides())
    }
}
