import BackpackCheckpoint
import BackpackModel
import Foundation

/// Writes an edited model as an ordinary model directory: `config.json`, `model.safetensors`
/// (folded weights), `sense_overrides.safetensors` (word-level edits, `token.<id>` (k, d)),
/// `edit-manifest.json` and the base directory's tokenizer files. Built in a temporary sibling
/// and renamed into place; never writes into (or over) the input directory.
public enum EditedCheckpoint {
    public static let tokenizerFiles = ["tokenizer.json", "vocab.json", "merges.txt", "encoder.json", "vocab.bpe",
                                        "tokenizer_config.json", "special_tokens_map.json"]

    public static func write(_ outcome: EditOutcome, files: [EditFile], base: ModelDirectory, to target: URL,
                             toolVersion: String, tokenizerSource: URL? = nil) throws {
        try AtomicOutput.checkNotInput(target, inputs: [base.url])
        let model = outcome.model
        let config = model.config
        let baseHashes = try base.weightFiles.map { ["file": $0.lastPathComponent, "sha256": try FileDigest.sha256($0)] }
        try AtomicOutput.directory(target) { tmp in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(config).write(to: tmp.appendingPathComponent("config.json"))
            try SafetensorsWriter.write(model.parameters.tensors(), metadata: ["format": "pt", "tool": "backpack \(toolVersion)"],
                                        to: tmp.appendingPathComponent("model.safetensors"))
            if !model.senseOverrides.isEmpty {
                let tensors = model.senseOverrides.keys.sorted().map { id in
                    (name: "token.\(id)", shape: [config.senses, config.nEmbd], values: model.senseOverrides[id] ?? [])
                }
                try SafetensorsWriter.write(tensors, metadata: ["tool": "backpack \(toolVersion)"],
                                            to: tmp.appendingPathComponent(ModelDirectory.overridesFile))
            }
            // the tokenizer: from --tokenizer when given (a directory or a file plus its merges), else the base directory's
            var sources: [URL] = tokenizerFiles.map { base.url.appendingPathComponent($0) }
            if let t = tokenizerSource {
                var isDir: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: t.path, isDirectory: &isDir)
                let dir = isDir.boolValue ? t : t.deletingLastPathComponent()
                sources = isDir.boolValue ? tokenizerFiles.map { dir.appendingPathComponent($0) }
                    : [t] + ["merges.txt", "vocab.bpe"].map { dir.appendingPathComponent($0) }
            }
            for src in sources where FileManager.default.fileExists(atPath: src.path) {
                let dst = tmp.appendingPathComponent(src.lastPathComponent)
                // The file, not a link to it: Hugging Face cache snapshots are relative links into blobs/.
                if !FileManager.default.fileExists(atPath: dst.path) { try FileManager.default.copyItem(at: src.resolvingSymlinksInPath(), to: dst) }
            }
            let manifest = Manifest(
                tool: "backpack-edit", toolVersion: toolVersion,
                createdUTC: ISO8601DateFormatter().string(from: Date()),
                baseModel: base.url.path, baseWeights: baseHashes.map { .init(file: $0["file"] ?? "", sha256: $0["sha256"] ?? "") },
                edits: files.map { .init(path: $0.url.path, sha256: $0.sha256, text: $0.text) },
                interventions: outcome.records,
                overriddenTokens: model.senseOverrides.keys.sorted())
            try encoder.encode(manifest).write(to: tmp.appendingPathComponent("edit-manifest.json"))
        }
    }

    public struct Manifest: Codable, Sendable {
        public struct FileHash: Codable, Sendable { public let file: String; public let sha256: String }
        public struct Edit: Codable, Sendable { public let path: String; public let sha256: String; public let text: String }
        public let tool: String
        public let toolVersion: String
        public let createdUTC: String
        public let baseModel: String
        public let baseWeights: [FileHash]
        public let edits: [Edit]
        public let interventions: [InterventionRecord]
        public let overriddenTokens: [Int]
    }
}
