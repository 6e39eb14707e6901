import Foundation

/// An archive that can lend float32 tensors in place, without copying: the model then reads
/// its weights straight from the memory map, so opening costs no copy and the resident memory
/// is the weights once.
public protocol MappedFloatArchive: TensorArchive {
    /// The tensor's values in the mapped file if it is F32 and 4-byte aligned, else nil
    /// (the caller falls back to `floats(_:)`). Valid while the archive is alive.
    func mappedFloat32(_ name: String) throws -> UnsafePointer<Float>?
}

func inPlaceFloat32(_ file: MappedFile, _ loc: TensorLocation) -> UnsafePointer<Float>? {
    guard loc.info.dtype == .f32, loc.offset % 4 == 0, loc.count > 0,
          let end = checkedAdd(loc.offset, loc.byteCount), end <= file.size,
          let p = file.pointer(at: loc.offset) else { return nil }
    return p.assumingMemoryBound(to: Float.self)
}

extension SafetensorsFile: MappedFloatArchive {
    public func mappedFloat32(_ name: String) throws -> UnsafePointer<Float>? { inPlaceFloat32(file, try location(name)) }
}

extension TorchCheckpoint: MappedFloatArchive {
    public func mappedFloat32(_ name: String) throws -> UnsafePointer<Float>? { inPlaceFloat32(file, try location(name)) }
}

extension ShardedSafetensors: MappedFloatArchive {
    public func mappedFloat32(_ name: String) throws -> UnsafePointer<Float>? {
        guard let shard = try? shardFile(name) else { return nil }
        return try shard.mappedFloat32(name)
    }
}
