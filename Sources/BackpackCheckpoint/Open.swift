import BackpackModelFolder
import Foundation

public enum CheckpointLoader {
    /// Opens a checkpoint file or a model folder. For a folder, the weights a model folder
    /// prefers (`ModelFolder.Weights`: `model.safetensors`, `model.safetensors.index.json`,
    /// `pytorch_model.bin`) are used.
    /// Files are recognised by name: `*.index.json` (sharded safetensors), `*.safetensors`, else a torch zip.
    public static func open(_ url: URL) throws -> any TensorArchive {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw CheckpointError(file: url.path, reason: "no such file or folder")
        }
        if isDir.boolValue {
            guard let weights = ModelFolder.weights(in: url) else {
                throw CheckpointError(file: url.path, reason: "folder holds none of \(ModelFolder.Weights.allCases.map(\.file).joined(separator: ", "))")
            }
            return try open(url.appendingPathComponent(weights.file))
        }
        let name = url.lastPathComponent
        if name.hasSuffix(".index.json") { return try ShardedSafetensors(index: url) }
        if name.hasSuffix(".safetensors") { return try SafetensorsFile(url: url) }
        return try TorchCheckpoint(url: url)
    }
}
