import BackpackIO
import BackpackJSON
import BackpackYAML
import Foundation

/// The contract of a Hugging Face model folder, written once: the names of its files, one read of
/// `config.json` (as ordered JSON, to rewrite it member for member, and as the typed
/// `BackpackConfig`), the `backpack_edit` block that `backpack edit` adds, and the model card's
/// front matter. The model loader (ModelDirectory), the writer of edited folders
/// (EditedCheckpoint), the Hub downloader, `backpack init` and the tokenizer loader all take
/// their file names from here; the shipped Python modeling code spells the same constants
/// (`modeling_backpack_gpt2.py`, checked by a test).
public struct ModelFolder: Sendable {
    // MARK: file names

    public static let configFile = "config.json"
    /// Weights, in the order a loader prefers them (`Weights`).
    public static let safetensorsFile = "model.safetensors"
    public static let safetensorsIndexFile = "model.safetensors.index.json"
    public static let torchFile = "pytorch_model.bin"

    /// The ways a folder holds its weights, in the order every reader prefers them (the model
    /// loader, CheckpointLoader, the Hub download and the cache's completeness check), as
    /// transformers does: one safetensors file, else an index with its shards, else PyTorch's pickle.
    public enum Weights: CaseIterable, Sendable {
        case safetensors, shardedSafetensors, torch

        /// The file whose presence says the folder holds this form.
        public var file: String {
            switch self {
            case .safetensors: ModelFolder.safetensorsFile
            case .shardedSafetensors: ModelFolder.safetensorsIndexFile
            case .torch: ModelFolder.torchFile
            }
        }

        /// "model.safetensors, model.safetensors.index.json or pytorch_model.bin", for errors.
        public static var choices: String {
            let files = allCases.map(\.file)
            return files.dropLast().joined(separator: ", ") + " or " + files[files.count - 1]
        }
    }

    /// The first form, in order of preference, for which `has(file)` is true (`has` is asked no
    /// further once it answers true: the Hub download fetches as it asks).
    public static func preferredWeights(_ has: (String) throws -> Bool) rethrows -> Weights? {
        for weights in Weights.allCases where try has(weights.file) { return weights }
        return nil
    }

    /// The form of the weights in the folder at `url` (nil: none).
    public static func weights(in url: URL) -> Weights? {
        preferredWeights { FileManager.default.fileExists(atPath: url.appendingPathComponent($0).path) }
    }
    /// Word-level sense edits of an edited Backpack: tensors `token.<id>` of shape (k, d).
    public static let senseOverridesFile = "sense_overrides.safetensors"
    /// Provenance of an edited folder (base weights' SHA-256, every intervention's record).
    public static let manifestFile = "edit-manifest.json"
    /// The model card (YAML front matter, then Markdown).
    public static let cardFile = "README.md"
    /// The modeling code an edited Backpack folder ships, named by its `auto_map`.
    public static let modelingFiles = ["configuration_backpack_gpt2.py", "modeling_backpack_gpt2.py"]
    public static let autoMap: [(String, String)] = [
        ("AutoConfig", "configuration_backpack_gpt2.BackpackGPT2Config"),
        ("AutoModelForCausalLM", "modeling_backpack_gpt2.BackpackGPT2LMHeadModel"),
    ]
    /// The model type of edited Backpack folders: unknown to stock transformers, so that it never
    /// loads one as a plain GPT-2 and drops the edit (EditedCheckpoint explains).
    public static let editedModelType = "backpack-gpt2"

    /// Tokenizer formats a folder may hold, in the order a loader tries them: Hugging Face's one
    /// `tokenizer.json`, else a vocabulary with its merges (Hugging Face's names, then OpenAI's).
    public static let tokenizerJSONFile = "tokenizer.json"
    public static let huggingFaceVocabularyMerges = (vocabulary: "vocab.json", merges: "merges.txt")
    /// OpenAI's names for GPT-2's files (also those of the built-in GPT-2 tokenizer's resources).
    public static let openAIVocabularyMerges = (vocabulary: "encoder.json", merges: "vocab.bpe")
    public static let vocabularyMergesFiles: [(vocabulary: String, merges: String)] = [huggingFaceVocabularyMerges, openAIVocabularyMerges]
    /// Tokenizer settings that travel with the vocabulary but are not read by this toolkit.
    public static let tokenizerSettingsFiles = ["tokenizer_config.json", "special_tokens_map.json"]
    /// Every tokenizer file a folder may hold: what `init`, `edit` and `download` copy.
    public static let tokenizerFiles: [String] =
        [tokenizerJSONFile] + vocabularyMergesFiles.flatMap { [$0.vocabulary, $0.merges] } + tokenizerSettingsFiles

    /// The `config.json` key holding what `backpack edit` adds (BackpackEditRecord).
    public static let editKey = "backpack_edit"

    // MARK: one folder

    public let url: URL
    /// `config.json`'s members in file order, values as read.
    public let configMembers: [(String, JSONValue)]
    public let config: BackpackConfig
    /// The `backpack_edit` block of a folder written by `backpack edit`; nil for other folders.
    public let edit: BackpackEditRecord?

    /// Reads `config.json` once; errors name the file and the key.
    public init(_ url: URL) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw ModelError(file: url.path, reason: "no such model directory")
        }
        guard isDir.boolValue else {
            throw ModelError(file: url.path, reason: "expected a model directory (\(Self.configFile) with \(Self.safetensorsFile) or \(Self.torchFile))")
        }
        let configURL = url.appendingPathComponent(Self.configFile)
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw ModelError(file: configURL.path, reason: "missing: a model directory needs \(Self.configFile)")
        }
        let data: Data
        do { data = try Data(contentsOf: configURL) } catch {
            throw ModelError(file: configURL.path, reason: "cannot read the model configuration (\(error.localizedDescription))")
        }
        self.url = url
        configMembers = try Self.members(data, file: configURL.path)
        config = try BackpackConfig.decode(data, file: configURL.path)
        edit = try BackpackEditRecord.decode(from: data, file: configURL.path)
    }

    public func file(_ name: String) -> URL { url.appendingPathComponent(name) }
    public var configURL: URL { file(Self.configFile) }
    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: file(name).path) }

    /// Whether the folder holds a tokenizer of its own (any format `tokenizerFiles` lists that a
    /// loader reads: `tokenizer.json`, or a vocabulary file).
    public var hasTokenizerFiles: Bool {
        exists(Self.tokenizerJSONFile) || Self.vocabularyMergesFiles.contains { exists($0.vocabulary) }
    }

    /// The model card's top-level front-matter values (licence keys, base model, ...); [:] without
    /// a card. Read through the YAML layer and its limits: model cards come from the Hub.
    public func cardFrontMatter() throws -> [String: String] {
        let card = file(Self.cardFile)
        guard FileManager.default.fileExists(atPath: card.path) else { return [:] }
        let data: Data
        do { data = try Data(contentsOf: card) } catch {
            throw ModelError(file: card.path, reason: "cannot read the model card (\(error.localizedDescription))")
        }
        guard data.count <= YAMLLimits.standard.maxBytes * 4 else {
            throw ModelError(file: card.path, reason: "model card of \(data.count) bytes; expected at most \(YAMLLimits.standard.maxBytes * 4)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ModelError(file: card.path, reason: "the model card is not UTF-8 text")
        }
        do { return try YAMLFrontMatter.scalars(markdown: text, file: card.path) } catch let error as YAMLError {
            let at = error.place.map { " (line \($0.line), column \($0.column))" } ?? ""
            throw ModelError(file: card.path, reason: "the model card's YAML front matter\(at): \(error.message)")
        }
    }

    /// A JSON object's members in file order (the strict reader: depth-bounded, no duplicate keys).
    public static func members(_ data: Data, file: String) throws -> [(String, JSONValue)] {
        let value: JSONValue
        do { value = try data.withUnsafeBytes { try JSONReader.parse($0, options: .strict) } } catch let e as JSONSyntaxError {
            throw ModelError(file: file, reason: "not valid JSON: \(e.message) (byte \(e.offset))")
        }
        guard case .object(let members) = value else {
            throw ModelError(file: file, reason: "expected a JSON object, found \(value.typeName)")
        }
        return members
    }
}

/// The `backpack_edit` block of `config.json` in a folder written by `backpack edit`. The Python
/// modeling code reads `sense_overrides` and `sense_overrides_sha256` from it and refuses a
/// missing or different file, as ModelDirectory does.
public struct BackpackEditRecord: Codable, Sendable {
    /// `sense_overrides.safetensors` when the edit has word-level sense edits.
    public var senseOverrides: String?
    public var senseOverridesSHA256: String?
    public var tool: String?
    public var toolVersion: String?
    public var manifest: String?
    /// The base folder's `auto_map` and `model_type` (Backpacks only; edited folders replace both).
    public var baseAutoMap: JSONValue?
    public var baseModelType: JSONValue?
    /// The base folder's own record, when edits were applied on top of an edited folder.
    public var baseBackpackEdit: JSONValue?

    public static let senseOverridesKey = "sense_overrides"
    public static let senseOverridesSHA256Key = "sense_overrides_sha256"

    enum CodingKeys: String, CodingKey {
        case senseOverrides = "sense_overrides"
        case senseOverridesSHA256 = "sense_overrides_sha256"
        case tool
        case toolVersion = "tool_version"
        case manifest
        case baseAutoMap = "base_auto_map"
        case baseModelType = "base_model_type"
        case baseBackpackEdit = "base_backpack_edit"
    }

    public init(senseOverrides: String? = nil, senseOverridesSHA256: String? = nil, tool: String? = nil, toolVersion: String? = nil,
                manifest: String? = nil, baseAutoMap: JSONValue? = nil, baseModelType: JSONValue? = nil, baseBackpackEdit: JSONValue? = nil) {
        self.senseOverrides = senseOverrides; self.senseOverridesSHA256 = senseOverridesSHA256
        self.tool = tool; self.toolVersion = toolVersion; self.manifest = manifest
        self.baseAutoMap = baseAutoMap; self.baseModelType = baseModelType; self.baseBackpackEdit = baseBackpackEdit
    }

    /// The block as `config.json` holds it, members in a fixed order (absent fields left out;
    /// the base's auto_map and model_type written even when null, to say there were none).
    public var jsonValue: JSONValue {
        var members: [(String, JSONValue)] = []
        if let senseOverrides { members.append((CodingKeys.senseOverrides.rawValue, .string(senseOverrides))) }
        if let senseOverridesSHA256 { members.append((CodingKeys.senseOverridesSHA256.rawValue, .string(senseOverridesSHA256))) }
        if let tool { members.append((CodingKeys.tool.rawValue, .string(tool))) }
        if let toolVersion { members.append((CodingKeys.toolVersion.rawValue, .string(toolVersion))) }
        if let manifest { members.append((CodingKeys.manifest.rawValue, .string(manifest))) }
        if let baseAutoMap { members.append((CodingKeys.baseAutoMap.rawValue, baseAutoMap)) }
        if let baseModelType { members.append((CodingKeys.baseModelType.rawValue, baseModelType)) }
        if let baseBackpackEdit { members.append((CodingKeys.baseBackpackEdit.rawValue, baseBackpackEdit)) }
        return .object(members)
    }

    /// The record in `config.json`'s bytes, or nil when the key is absent.
    static func decode(from data: Data, file: String) throws -> BackpackEditRecord? {
        struct Holder: Decodable {
            let edit: BackpackEditRecord?
            enum CodingKeys: String, CodingKey { case edit = "backpack_edit" }
        }
        do { return try JSONDecoder().decode(Holder.self, from: data).edit } catch let error as DecodingError {
            throw ModelError(file: file, reason: "key '\(ModelFolder.editKey)': \(BackpackConfig.describe(error))")
        }
    }
}
