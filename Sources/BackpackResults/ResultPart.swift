import BackpackIO
import CHDF5
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// One (variant, suite) result of a run that is being written, in a file of its own beside the
// results file: `.<name>.parts/<run id>/r-<16 hex>.part` (LAYOUT.md, "Runs written suite by
// suite"). Storing a result costs its own size (a compressed write and a rename), not a copy of
// the results file; the parts are added to the HDF5 file in one rewrite when the run finishes
// (or is resumed), by the same writer as a whole run, so the file is the same as before.
//
// A part is written to a temporary name, fsynced and renamed, and its folder fsynced: it is
// either absent or complete after a kill or a power cut. A part damaged otherwise fails its
// CRC-32 and is treated as absent: `--resume` computes it again.
//
// Format (little-endian): "BPRPART1", u64 payload length, u64 compressed length, u32 CRC-32 of
// the two lengths and the compressed bytes, then the payload compressed by zlib. The payload:
// strings (u32 byte count + UTF-8) run id, variant, suite name, suite version, data SHA-256;
// u32 count + headline names; u32 count + (role, metric) string pairs; u32 count + attributes
// (name, u8 kind 0 double / 1 int / 2 string, value: u64 IEEE bits / i64 / string); u32 count +
// datasets (name, u8 kind 0 doubles / 1 ints / 2 strings, u32 count, values); then the suite's
// kind (string, "" for none) and u32 count + headline metric metadata (name, description, unit,
// u64 ideal bits (NaN: none), better). Parts written before the kind section end after the
// datasets and read back without kind and metadata. Doubles are stored by their bits, so a part
// gives back exactly what was computed.

/// One stored result of an unfinished run.
public struct ResultPart: Sendable {
    public var run: String
    public var variant: String
    public var result: SuiteResult

    public init(run: String, variant: String, result: SuiteResult) {
        self.run = run; self.variant = variant; self.result = result
    }

    static let magic = Array("BPRPART1".utf8)
    static let headerSize = 8 + 8 + 8 + 4

    /// The part's file name in its run's directory: from the variant and suite names (FNV-1a,
    /// 64 bits), so that it is the same whoever writes it and never longer than a file name may be.
    static func fileName(variant: String, suite: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in Array(variant.utf8) + [0] + Array(suite.utf8) { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return "r-" + String(format: "%016llx", h) + ".part"
    }

    // MARK: Encoding

    func encoded() throws -> [UInt8] {
        var w = ByteWriter()
        for s in [run, variant, result.suiteName, result.suiteVersion, result.dataSHA256] { w.string(s) }
        w.u32(result.headline.count); for h in result.headline { w.string(h) }
        let roles = result.roles.sorted { $0.key.rawValue < $1.key.rawValue }
        w.u32(roles.count); for (role, metric) in roles { w.string(role.rawValue); w.string(metric) }
        w.u32(result.attributes.count)
        for (name, value) in result.attributes {
            w.string(name)
            switch value {
            case .double(let d): w.u8(0); w.u64(d.bitPattern)
            case .int(let i): w.u8(1); w.u64(UInt64(bitPattern: Int64(i)))
            case .string(let s): w.u8(2); w.string(s)
            }
        }
        w.u32(result.datasets.count)
        for (name, values) in result.datasets {
            w.string(name)
            switch values {
            case .doubles(let d): w.u8(0); w.u32(d.count); for x in d { w.u64(x.bitPattern) }
            case .ints(let i): w.u8(1); w.u32(i.count); for x in i { w.u64(UInt64(bitPattern: x)) }
            case .strings(let s): w.u8(2); w.u32(s.count); for x in s { w.string(x) }
            }
        }
        w.string(result.kind ?? "")
        w.u32(result.metrics.count)
        for m in result.metrics {
            w.string(m.name); w.string(m.description); w.string(m.unit); w.u64((m.ideal ?? .nan).bitPattern); w.string(m.better.rawValue)
        }
        return try Self.framed(w.bytes)
    }

    /// A payload as a part file: header, zlib-compressed payload, CRC-32.
    static func framed(_ payload: [UInt8]) throws -> [UInt8] {
        var bound = compressBound(uLong(payload.count))
        var packed = [UInt8](repeating: 0, count: Int(bound))
        let rc = packed.withUnsafeMutableBufferPointer { out in
            payload.withUnsafeBufferPointer { inp in compress2(out.baseAddress, &bound, inp.baseAddress, uLong(payload.count), 6) }
        }
        guard rc == Z_OK else { throw ResultsError(.io, file: "", object: "/", operation: "compress result part", detail: "zlib error \(rc)") }
        packed.removeLast(packed.count - Int(bound))
        var header = ByteWriter()
        header.bytes = Self.magic
        header.u64(UInt64(payload.count)); header.u64(UInt64(packed.count))
        header.u32(Int(Self.crc(header.bytes[8..<24], packed)))
        return header.bytes + packed
    }

    static func crc(_ lengths: ArraySlice<UInt8>, _ packed: [UInt8]) -> UInt32 {
        var c = crc32(0, nil, 0)
        c = Array(lengths).withUnsafeBufferPointer { crc32(c, $0.baseAddress, uInt($0.count)) }
        c = packed.withUnsafeBufferPointer { crc32(c, $0.baseAddress, uInt($0.count)) }
        return UInt32(truncatingIfNeeded: c)
    }

    /// Decodes a part; any damage (length, CRC, zlib, structure) throws naming `file`.
    static func decode(_ bytes: [UInt8], file: String) throws -> ResultPart {
        func bad(_ why: String) -> ResultsError {
            ResultsError(.invalidArgument, file: file, object: "/", operation: "read result part", detail: why)
        }
        guard bytes.count >= headerSize, Array(bytes[0..<8]) == magic else { throw bad("not a result part (no BPRPART1 header)") }
        var h = ByteReader(bytes: bytes, at: 8, file: file)
        let rawLength = try h.u64(), packedLength = try h.u64(), crc = try h.u32()
        guard packedLength == UInt64(bytes.count - headerSize) else {
            throw bad("\(bytes.count - headerSize) bytes of data, the header says \(packedLength) (truncated?)")
        }
        let packed = Array(bytes[headerSize...])
        guard Self.crc(bytes[8..<24], packed) == crc else { throw bad("CRC-32 mismatch (damaged)") }
        // zlib expands at most about 1032:1.
        guard rawLength <= packedLength &* 1100 &+ 1024 else { throw bad("payload length \(rawLength) is impossible for \(packedLength) compressed bytes") }
        var raw = [UInt8](repeating: 0, count: Int(rawLength))
        var got = uLong(rawLength)
        let rc = raw.withUnsafeMutableBufferPointer { out in
            packed.withUnsafeBufferPointer { inp in uncompress(out.baseAddress, &got, inp.baseAddress, uLong(packed.count)) }
        }
        guard rc == Z_OK, got == uLong(rawLength) else { throw bad("zlib could not expand it (error \(rc))") }
        var r = ByteReader(bytes: raw, at: 0, file: file)
        let run = try r.string(), variant = try r.string()
        var result = SuiteResult(suiteName: try r.string(), suiteVersion: try r.string(), dataSHA256: try r.string())
        for _ in 0..<(try r.count()) { result.headline.append(try r.string()) }
        for _ in 0..<(try r.count()) {
            let name = try r.string(), metric = try r.string()
            guard let role = MetricRole(rawValue: name) else { throw bad("unknown metric role '\(name)'") }
            result.roles[role] = metric
        }
        for _ in 0..<(try r.count()) {
            let name = try r.string()
            switch try r.u8() {
            case 0: result.attributes.append((name, .double(Double(bitPattern: try r.u64()))))
            case 1: result.attributes.append((name, .int(Int(Int64(bitPattern: try r.u64())))))
            case 2: result.attributes.append((name, .string(try r.string())))
            case let k: throw bad("attribute '\(name)': unknown kind \(k)")
            }
        }
        for _ in 0..<(try r.count()) {
            let name = try r.string()
            let kind = try r.u8()
            let n = try r.count(each: kind == 2 ? 4 : 8)
            switch kind {
            case 0: result.datasets.append((name, .doubles(try (0..<n).map { _ in Double(bitPattern: try r.u64()) })))
            case 1: result.datasets.append((name, .ints(try (0..<n).map { _ in Int64(bitPattern: try r.u64()) })))
            case 2: result.datasets.append((name, .strings(try (0..<n).map { _ in try r.string() })))
            default: throw bad("dataset '\(name)': unknown kind \(kind)")
            }
        }
        if r.at < raw.count {
            let kind = try r.string()
            result.kind = kind.isEmpty ? nil : kind
            for _ in 0..<(try r.count()) {
                let name = try r.string(), description = try r.string(), unit = try r.string()
                let ideal = Double(bitPattern: try r.u64()), better = try r.string()
                guard let b = MetricInfo.Better(rawValue: better) else { throw bad("metric '\(name)': unknown direction '\(better)'") }
                result.metrics.append(MetricInfo(name, description, unit: unit, ideal: ideal.isNaN ? nil : ideal, better: b))
            }
        }
        guard r.at == raw.count else { throw bad("\(raw.count - r.at) bytes after the last metric") }
        return ResultPart(run: run, variant: variant, result: result)
    }
}

struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func string(_ s: String) { let u = Array(s.utf8); u32(u.count); bytes += u }
}

struct ByteReader {
    let bytes: [UInt8]
    var at: Int
    let file: String
    func short(_ need: Int) -> ResultsError {
        ResultsError(.invalidArgument, file: file, object: "/", operation: "read result part",
                     detail: "ends after \(at) bytes where \(need) more were expected")
    }
    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, bytes.count - at >= n else { throw short(n) }
        defer { at += n }
        return bytes[at..<(at + n)]
    }
    mutating func u8() throws -> UInt8 { try take(1).first! }
    mutating func u32() throws -> UInt32 { try take(4).reversed().reduce(0) { $0 << 8 | UInt32($1) } }
    mutating func u64() throws -> UInt64 { try take(8).reversed().reduce(0) { $0 << 8 | UInt64($1) } }
    /// A count of items of at least `each` bytes, checked against what is left.
    mutating func count(each: Int = 1) throws -> Int {
        let n = Int(try u32())
        guard n <= (bytes.count - at) / max(1, each) else { throw short(n * each) }
        return n
    }
    mutating func string() throws -> String {
        let n = Int(try u32())
        return String(decoding: try take(n), as: UTF8.self)
    }
}
