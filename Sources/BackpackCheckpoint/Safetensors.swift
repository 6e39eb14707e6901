import BackpackJSON
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A `.safetensors` file, memory-mapped. Opening parses and validates the header only;
/// `floats(_:)` copies just the requested tensor.
public final class SafetensorsFile: TensorArchive {
    /// Largest JSON header accepted (the reference implementation uses the same 100 MB bound).
    public static let maxHeaderBytes = 100_000_000

    public let url: URL
    public let metadata: [String: String]
    public let tensors: [String: TensorInfo]
    public var files: [URL] { [url] }
    /// Tensor names in data-offset order.
    public let names: [String]

    let file: MappedFile
    let locations: [String: TensorLocation]

    public init(url: URL) throws {
        self.url = url
        let file = try MappedFile(url: url)
        self.file = file
        let path = url.path
        func err(_ reason: String) -> CheckpointError { CheckpointError(file: path, reason: reason) }

        let bytes = file.bytes
        guard bytes.count >= 8 else {
            throw err("file is \(bytes.count) bytes, shorter than the 8-byte header length")
        }
        let rawLen = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard rawLen <= UInt64(bytes.count - 8) else {
            throw err("header length \(rawLen) exceeds the \(bytes.count - 8) bytes after the length field (truncated or not a safetensors file)")
        }
        let headerLen = Int(rawLen)
        guard headerLen <= Self.maxHeaderBytes else {
            throw err("header length \(headerLen) exceeds the limit of \(Self.maxHeaderBytes) bytes")
        }
        guard headerLen >= 2 else { throw err("header length \(headerLen) is too small for a JSON object") }
        let dataStart = 8 + headerLen
        let dataSize = bytes.count - dataStart

        let json: JSONValue
        do {
            json = try JSONReader.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart]), options: .strict)
        } catch let e as JSONSyntaxError {
            throw err("header: invalid JSON at byte \(e.offset): \(e.message)")
        }
        guard case .object(let entries) = json else {
            throw err("header: expected a JSON object, found \(json.typeName)")
        }

        var metadata: [String: String] = [:]
        var infos: [String: TensorInfo] = [:]
        var locs: [String: TensorLocation] = [:]
        var ranges: [(begin: Int, end: Int, name: String)] = []
        for (name, value) in entries {
            if name == "__metadata__" {
                guard case .object(let kv) = value else {
                    throw err("header: __metadata__ must be an object of strings, found \(value.typeName)")
                }
                for (k, v) in kv {
                    guard case .string(let s) = v else {
                        throw err("header: __metadata__['\(k)'] must be a string, found \(v.typeName)")
                    }
                    metadata[k] = s
                }
                continue
            }
            guard case .object(let fields) = value else {
                throw err("tensor '\(name)': expected an object with dtype/shape/data_offsets, found \(value.typeName)")
            }
            var dtypeV: JSONValue?, shapeV: JSONValue?, offV: JSONValue?
            for (k, v) in fields {
                switch k {
                case "dtype": dtypeV = v
                case "shape": shapeV = v
                case "data_offsets": offV = v
                default: throw err("tensor '\(name)': unknown field '\(k)'")
                }
            }
            guard case .string(let dtypeName)? = dtypeV else { throw err("tensor '\(name)': missing or non-string 'dtype'") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw err("tensor '\(name)': unknown dtype '\(dtypeName)' (expected one of \(DType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard case .array(let shapeArr)? = shapeV else { throw err("tensor '\(name)': missing or non-array 'shape'") }
            var shape: [Int] = []
            shape.reserveCapacity(shapeArr.count)
            for (d, s) in shapeArr.enumerated() {
                guard case .integer(let n) = s else { throw err("tensor '\(name)': shape[\(d)] is not an integer") }
                guard n >= 0 else { throw err("tensor '\(name)': shape[\(d)] = \(n) is negative") }
                shape.append(n)
            }
            guard case .array(let offArr)? = offV, offArr.count == 2,
                  case .integer(let begin) = offArr[0], case .integer(let end) = offArr[1] else {
                throw err("tensor '\(name)': 'data_offsets' must be [begin, end] integers")
            }
            guard begin >= 0, end >= begin else {
                throw err("tensor '\(name)': data_offsets [\(begin), \(end)] are out of order")
            }
            guard end <= dataSize else {
                throw err("tensor '\(name)': data_offsets [\(begin), \(end)] lie outside the \(dataSize)-byte data section")
            }
            guard let count = checkedProduct(shape), let nbytes = checkedMul(count, dtype.byteSize) else {
                throw err("tensor '\(name)': shape \(shape) overflows")
            }
            guard nbytes == end - begin else {
                throw err("tensor '\(name)': shape \(shape) x \(dtype.rawValue) needs \(nbytes) bytes but data_offsets [\(begin), \(end)] hold \(end - begin)")
            }
            let info = TensorInfo(name: name, dtype: dtype, shape: shape)
            infos[name] = info
            locs[name] = TensorLocation(info: info, count: count, offset: dataStart + begin)
            ranges.append((begin, end, name))
        }
        ranges.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        for k in ranges.indices.dropFirst() {
            let a = ranges[k - 1], b = ranges[k]
            if b.begin < a.end {
                throw err("tensors '\(a.name)' [\(a.begin), \(a.end)] and '\(b.name)' [\(b.begin), \(b.end)] overlap")
            }
        }
        self.metadata = metadata
        self.tensors = infos
        self.locations = locs
        self.names = ranges.map(\.name)
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

/// Several safetensors shards listed by a `model.safetensors.index.json` (`weight_map`: name -> file).
public final class ShardedSafetensors: TensorArchive {
    public let index: URL
    public let files: [URL]
    public let tensors: [String: TensorInfo]
    public let metadata: [String: String]
    private let owner: [String: SafetensorsFile]

    public init(index: URL) throws {
        self.index = index
        let path = index.path
        func err(_ reason: String) -> CheckpointError { CheckpointError(file: path, reason: reason) }
        let mapped = try MappedFile(url: index)
        guard mapped.size <= 100_000_000 else { throw err("index file larger than 100 MB") }
        let json: JSONValue
        do { json = try JSONReader.parse(mapped.bytes, options: .strict) } catch let e as JSONSyntaxError {
            throw err("invalid JSON at byte \(e.offset): \(e.message)")
        }
        guard case .object(let top) = json else { throw err("expected a JSON object") }
        guard let wm = top.first(where: { $0.0 == "weight_map" })?.1, case .object(let map) = wm else {
            throw err("missing 'weight_map' object")
        }
        var meta: [String: String] = [:]
        if let m = top.first(where: { $0.0 == "metadata" })?.1, case .object(let kv) = m {
            for (k, v) in kv {
                switch v {
                case .string(let s): meta[k] = s
                case .integer(let n): meta[k] = String(n)
                case .double(let d): meta[k] = String(d)
                default: break
                }
            }
        }
        let dir = index.deletingLastPathComponent()
        var shards: [String: SafetensorsFile] = [:]
        var order: [URL] = []
        var owner: [String: SafetensorsFile] = [:]
        var infos: [String: TensorInfo] = [:]
        for (name, v) in map {
            guard case .string(let fname) = v else { throw err("weight_map['\(name)'] is not a string") }
            guard !fname.isEmpty, !fname.contains("/"), !fname.contains("\\"), fname != ".", fname != ".." else {
                throw err("weight_map['\(name)'] = '\(fname)': shard names must be plain file names in the index's folder")
            }
            let shard: SafetensorsFile
            if let s = shards[fname] {
                shard = s
            } else {
                let u = dir.appendingPathComponent(fname)
                shard = try SafetensorsFile(url: u)
                shards[fname] = shard
                order.append(u)
            }
            guard let info = shard.tensors[name] else {
                throw err("weight_map['\(name)'] names shard '\(fname)', which has no such tensor")
            }
            owner[name] = shard
            infos[name] = info
        }
        self.files = order
        self.tensors = infos
        self.owner = owner
        self.metadata = meta
    }

    func shardFile(_ name: String) throws -> SafetensorsFile { try shard(name) }
    private func shard(_ name: String) throws -> SafetensorsFile {
        guard let s = owner[name] else { throw CheckpointError(file: index.path, reason: "no tensor named '\(name)'") }
        return s
    }

    public func floats(_ name: String) throws -> [Float] { try shard(name).floats(name) }
    public func ints(_ name: String) throws -> [Int] { try shard(name).ints(name) }
}

public enum SafetensorsWriter {
    /// Writes F32 tensors (sorted by name, 8-byte aligned header as HF does) to a temporary file beside `url`, then renames: an interrupted write never leaves a partial file.
    public static func write(_ tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String], to url: URL) throws {
        let path = url.path
        func err(_ reason: String) -> CheckpointError { CheckpointError(file: path, reason: reason) }
        let sorted = tensors.sorted { $0.name < $1.name }
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let kv = metadata.keys.sorted().map { "\(jsonQuote($0)):\(jsonQuote(metadata[$0] ?? ""))" }
            parts.append("\"__metadata__\":{\(kv.joined(separator: ","))}")
        }
        var offset = 0
        var previous: String?
        for t in sorted {
            if t.name == previous { throw err("duplicate tensor name '\(t.name)'") }
            if t.name == "__metadata__" { throw err("'__metadata__' is reserved and cannot name a tensor") }
            previous = t.name
            guard let count = checkedProduct(t.shape) else { throw err("tensor '\(t.name)': invalid shape \(t.shape)") }
            guard count == t.values.count else {
                throw err("tensor '\(t.name)': shape \(t.shape) holds \(count) values but \(t.values.count) were given")
            }
            let end = offset + count * 4
            parts.append("\(jsonQuote(t.name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }

        let dir = url.deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(UUID().uuidString)")
        let fd = open(tmp.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw err("cannot create temporary file \(tmp.path): \(String(cString: strerror(errno)))")
        }
        var ok = false
        defer {
            if !ok { unlink(tmp.path) }
        }
        func writeAll(_ p: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < p.count {
                guard let base = p.baseAddress else { return }
                let n = sysWrite(fd, base + done, p.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw err("write failed: \(String(cString: strerror(errno)))")
                }
                done += n
            }
        }
        do {
            var len = UInt64(headerBytes.count).littleEndian
            try withUnsafeBytes(of: &len) { try writeAll($0) }
            try headerBytes.withUnsafeBytes { try writeAll($0) }
            for t in sorted {
                #if _endian(big)
                let le = t.values.map { $0.bitPattern.littleEndian }
                try le.withUnsafeBytes { try writeAll($0) }
                #else
                try t.values.withUnsafeBytes { try writeAll($0) }
                #endif
            }
            guard fsync(fd) == 0 else { throw err("fsync failed: \(String(cString: strerror(errno)))") }
        } catch {
            close(fd)
            throw error
        }
        guard close(fd) == 0 else { throw err("close failed: \(String(cString: strerror(errno)))") }
        guard rename(tmp.path, path) == 0 else {
            throw err("cannot rename \(tmp.path) into place: \(String(cString: strerror(errno)))")
        }
        ok = true
    }
}

/// `write(2)` at file scope (inside `SafetensorsWriter` the name refers to the static method).
private func sysWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    write(fd, p, n)
}
