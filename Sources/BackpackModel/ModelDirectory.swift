import BackpackCheckpoint
import BackpackTokenizer
import Foundation

/// A model directory as Hugging Face writes it: `config.json` plus `model.safetensors`
/// (or sharded with `model.safetensors.index.json`) and/or `pytorch_model.bin`; optionally a
/// tokenizer and, for edited checkpoints, `sense_overrides.safetensors`.
public struct ModelDirectory: Sendable {
    public let url: URL
    public let config: BackpackConfig
    public let weightFiles: [URL]
    public let format: String
    public let archive: TensorArchive

    public static let overridesFile = "sense_overrides.safetensors"

    public init(_ url: URL) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw ModelError(file: url.path, reason: "no such model directory")
        }
        guard isDir.boolValue else {
            throw ModelError(file: url.path, reason: "expected a model directory (config.json with model.safetensors or pytorch_model.bin)")
        }
        self.url = url
        let configURL = url.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw ModelError(file: configURL.path, reason: "missing: a model directory needs config.json")
        }
        config = try BackpackConfig.load(configURL)
        let fm = FileManager.default
        let single = url.appendingPathComponent("model.safetensors")
        let index = url.appendingPathComponent("model.safetensors.index.json")
        let bin = url.appendingPathComponent("pytorch_model.bin")
        if fm.fileExists(atPath: single.path) {
            archive = try SafetensorsFile(url: single); format = "safetensors"
        } else if fm.fileExists(atPath: index.path) {
            archive = try ShardedSafetensors(index: index); format = "safetensors (sharded)"
        } else if fm.fileExists(atPath: bin.path) {
            archive = try TorchCheckpoint(url: bin); format = "pytorch_model.bin (zip + pickle)"
        } else {
            throw ModelError(file: url.path, reason: "no weights found: expected model.safetensors, model.safetensors.index.json or pytorch_model.bin")
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
        let file = url.appendingPathComponent(Self.overridesFile)
        let configURL = url.appendingPathComponent("config.json")
        let raw = try? JSONSerialization.jsonObject(with: Data(contentsOf: configURL))
        if let edit = (raw as? [String: Any])?["backpack_edit"] as? [String: Any], let declared = edit["sense_overrides"] {
            guard declared as? String == Self.overridesFile, let sha = edit["sense_overrides_sha256"] as? String else {
                throw ModelError(file: configURL.path, reason: "key 'backpack_edit': expected sense_overrides \"\(Self.overridesFile)\" with sense_overrides_sha256")
            }
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw ModelError(file: file.path, reason: "missing: config.json declares this file of word-level sense edits; refusing to load the model without its edit")
            }
            let actual = try FileDigest.sha256(file)
            guard actual == sha.lowercased() else {
                throw ModelError(file: file.path, reason: "SHA-256 is \(actual), config.json (backpack_edit.sense_overrides_sha256) says \(sha); refusing to load an edit that is not the declared one")
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
    public var hasTokenizerFiles: Bool {
        ["tokenizer.json", "vocab.json", "encoder.json"].contains {
            FileManager.default.fileExists(atPath: url.appendingPathComponent($0).path)
        }
    }

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
