import Foundation

public enum CheckpointLoader {
    /// Opens a checkpoint file or a model folder. For a folder, the first present of
    /// `model.safetensors`, `model.safetensors.index.json`, `pytorch_model.bin` is used.
    /// Files are recognised by name: `*.index.json` (sharded safetensors), `*.safetensors`, else a torch zip.
    public static func open(_ url: URL) throws -> any TensorArchive {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw CheckpointError(file: url.path, reason: "no such file or folder")
        }
        if isDir.boolValue {
            for name in ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"] {
                let candidate = url.appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: candidate.path) { return try open(candidate) }
            }
            throw CheckpointError(file: url.path, reason: "folder holds none of model.safetensors, model.safetensors.index.json, pytorch_model.bin")
        }
        let name = url.lastPathComponent
        if name.hasSuffix(".index.json") { return try ShardedSafetensors(index: url) }
        if name.hasSuffix(".safetensors") { return try SafetensorsFile(url: url) }
        return try TorchCheckpoint(url: url)
    }
}
