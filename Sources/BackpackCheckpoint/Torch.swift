import Foundation

/// A `pytorch_model.bin` in torch.save's zip format (torch >= 1.6): `<prefix>/data.pkl` plus raw
/// storages `<prefix>/data/<key>`, all stored uncompressed and used in place from a memory map.
/// The pickle is read by a restricted unpickler that knows only what a state dict needs.
public final class TorchCheckpoint: TensorArchive {
    public let url: URL
    public let tensors: [String: TensorInfo]
    public var files: [URL] { [url] }
    /// Names in the order the state dict lists them.
    public let names: [String]

    let file: MappedFile
    let locations: [String: TensorLocation]

    public init(url: URL) throws {
        self.url = url
        let path = url.path
        let file = try MappedFile(url: url)
        self.file = file
        func err(_ reason: String) -> CheckpointError { CheckpointError(file: path, reason: reason) }

        let entries = try ZipReader.entries(of: file)
        let pkls = entries.keys.filter { name in
            let parts = name.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count == 2 && parts[1] == "data.pkl" && !parts[0].isEmpty
        }
        guard pkls.count == 1, let pklName = pkls.first, let pkl = entries[pklName] else {
            throw err(pkls.isEmpty
                ? "no '<prefix>/data.pkl' entry: not a torch.save zip archive"
                : "several data.pkl entries: \(pkls.sorted())")
        }
        let prefix = String(pklName.dropLast("data.pkl".count))  // keeps the trailing '/'
        if let bo = entries[prefix + "byteorder"] {
            let raw = UnsafeRawBufferPointer(rebasing: file.bytes[bo.dataOffset..<(bo.dataOffset + bo.size)])
            let order = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard order == "little" else {
                throw err("byteorder is '\(order)'; only little-endian checkpoints are supported")
            }
        }

        let bytes = file.bytes
        var storages: [String: (dtype: DType, numel: Int)] = [:]
        let unpickler = RestrictedUnpickler(
            data: UnsafeRawBufferPointer(rebasing: bytes[pkl.dataOffset..<(pkl.dataOffset + pkl.size)]),
            context: "data.pkl", file: path
        ) { dtype, key, _, numel in
            guard let entry = entries[prefix + "data/" + key] else {
                throw err("data.pkl: storage '\(key)' has no entry '\(prefix)data/\(key)' in the archive")
            }
            guard numel >= 0, let nbytes = checkedMul(numel, dtype.byteSize), nbytes == entry.size else {
                throw err("data.pkl: storage '\(key)' declares \(numel) x \(dtype.rawValue) but its entry holds \(entry.size) bytes")
            }
            if let seen = storages[key], seen.dtype != dtype || seen.numel != numel {
                throw err("data.pkl: storage '\(key)' is referenced with different types or sizes")
            }
            storages[key] = (dtype, numel)
            return StorageRef(dtype: dtype, key: key, numel: numel)
        }
        let root = try unpickler.load()
        guard case .dict(let dict) = root else {
            throw err("data.pkl: expected a state dict (dict of tensors), found \(root.kind)")
        }
        var infos: [String: TensorInfo] = [:]
        var locs: [String: TensorLocation] = [:]
        var names: [String] = []
        for key in dict.keys {
            guard case .str(let name) = key else { throw err("data.pkl: state dict key \(key) is not a string") }
            guard let value = dict.values[key], case .tensor(let t) = value else {
                throw err("data.pkl: '\(name)' is a \(dict.values[key]?.kind ?? "missing value"), expected a tensor")
            }
            func terr(_ r: String) -> CheckpointError { err("tensor '\(name)': \(r)") }
            guard t.shape.count == t.stride.count else {
                throw terr("size \(t.shape) and stride \(t.stride) have different ranks")
            }
            guard let count = checkedProduct(t.shape) else { throw terr("size \(t.shape) is negative or overflows") }
            guard t.offset >= 0 else { throw terr("negative storage offset \(t.offset)") }
            if count > 0 {
                // Contiguous (row-major) only; strides of size-1 dims are irrelevant.
                var expected = 1
                for d in stride(from: t.shape.count - 1, through: 0, by: -1) {
                    if t.shape[d] != 1, t.stride[d] != expected {
                        throw terr("not contiguous: size \(t.shape), stride \(t.stride)")
                    }
                    expected *= t.shape[d]  // cannot overflow: bounded by count
                }
                guard let end = checkedAdd(t.offset, count), end <= t.storage.numel else {
                    throw terr("elements [\(t.offset), +\(count)) exceed storage '\(t.storage.key)' of \(t.storage.numel) elements")
                }
            }
            guard let entry = entries[prefix + "data/" + t.storage.key] else {
                throw terr("storage '\(t.storage.key)' missing")
            }
            let info = TensorInfo(name: name, dtype: t.storage.dtype, shape: t.shape)
            infos[name] = info
            locs[name] = TensorLocation(info: info, count: count,
                                        offset: entry.dataOffset + t.offset * t.storage.dtype.byteSize)
            names.append(name)
        }
        self.tensors = infos
        self.locations = locs
        self.names = names
    }

    func location(_ name: String) throws -> TensorLocation {
        guard let loc = locations[name] else {
            throw CheckpointError(file: url.path, reason: "no tensor named '\(name)'")
        }
        return loc
    }

    public func floats(_ name: String) throws -> [Float] { try readFloats(file, location(name)) }
    public func ints(_ name: String) throws -> [Int] { try readInts(file, location(name)) }
}
