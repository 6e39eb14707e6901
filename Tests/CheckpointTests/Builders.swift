import Foundation
@testable import BackpackCheckpoint

/// Byte-level builders for hand-made (and deliberately broken) test inputs.
enum Build {
    static func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }
    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }

    /// A safetensors file from a raw header string and data bytes.
    static func safetensors(header: String, data: [UInt8], lengthOverride: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        return le64(lengthOverride ?? UInt64(h.count)) + h + data
    }

    struct ZipMember {
        var name: String
        var data: [UInt8]
        var method: UInt16 = 0
        var flags: UInt16 = 0
        var localOffsetOverride: UInt32? = nil
        var extra: [UInt8] = []
    }

    /// A zip archive of stored members (CRC left 0: the reader does not check it).
    static func zip(_ members: [ZipMember], countOverride: UInt16? = nil, zip64: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        for m in members {
            let offset = UInt32(out.count)
            let name = Array(m.name.utf8)
            out += le32(0x0403_4b50) + le16(20) + le16(m.flags) + le16(m.method) + le16(0) + le16(0) + le32(0)
            out += le32(UInt32(m.data.count)) + le32(UInt32(m.data.count)) + le16(UInt16(name.count)) + le16(UInt16(m.extra.count))
            out += name + m.extra + m.data
            central += le32(0x0201_4b50) + le16(20) + le16(20) + le16(m.flags) + le16(m.method) + le16(0) + le16(0) + le32(0)
            central += le32(UInt32(m.data.count)) + le32(UInt32(m.data.count)) + le16(UInt16(name.count)) + le16(0) + le16(0)
            central += le16(0) + le16(0) + le32(0) + le32(m.localOffsetOverride ?? offset) + name
        }
        let cdOffset = out.count
        out += central
        let count = UInt16(members.count)
        if zip64 {
            let rec = out.count
            out += le32(0x0606_4b50) + le64(44) + le16(45) + le16(45) + le32(0) + le32(0)
            out += le64(UInt64(members.count)) + le64(UInt64(members.count)) + le64(UInt64(central.count)) + le64(UInt64(cdOffset))
            out += le32(0x0706_4b50) + le32(0) + le64(UInt64(rec)) + le32(1)
            out += le32(0x0605_4b50) + le16(0) + le16(0) + le16(0xFFFF) + le16(0xFFFF) + le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) + le16(0)
        } else {
            out += le32(0x0605_4b50) + le16(0) + le16(0) + le16(countOverride ?? count) + le16(countOverride ?? count)
            out += le32(UInt32(central.count)) + le32(UInt32(cdOffset)) + le16(0)
        }
        return out
    }
}

/// Assembles protocol-2 pickles opcode by opcode.
struct Pickle {
    var bytes: [UInt8] = [0x80, 0x02]
    mutating func op(_ b: UInt8) { bytes.append(b) }
    mutating func global(_ module: String, _ name: String) { bytes += [0x63] + Array("\(module)\n\(name)\n".utf8) }
    mutating func str(_ s: String) { let u = Array(s.utf8); bytes += [0x58] + Build.le32(UInt32(u.count)) + u }
    mutating func int(_ v: Int) { bytes += [0x4a] + Build.le32(UInt32(truncatingIfNeeded: v)) }
    mutating func mark() { op(0x28) }
    mutating func tuple() { op(0x74) }
    mutating func intTuple(_ v: [Int]) { mark(); for x in v { int(x) }; tuple() }
    mutating func stop() { op(0x2e) }

    /// `{name: _rebuild_tensor_v2(storage(key), offset, shape, stride, False, OrderedDict())}`.
    static func stateDict(_ tensors: [(name: String, storageType: String, key: String, numel: Int, offset: Int, shape: [Int], stride: [Int])]) -> [UInt8] {
        var p = Pickle()
        p.op(0x7d)  // EMPTY_DICT
        p.mark()
        for t in tensors {
            p.str(t.name)
            p.global("torch._utils", "_rebuild_tensor_v2")
            p.mark()
            p.mark(); p.str("storage"); p.global("torch", t.storageType); p.str(t.key); p.str("cpu"); p.int(t.numel); p.tuple()
            p.op(0x51)  // BINPERSID
            p.int(t.offset)
            p.intTuple(t.shape)
            p.intTuple(t.stride)
            p.op(0x89)  // NEWFALSE
            p.global("collections", "OrderedDict"); p.op(0x29); p.op(0x52)
            p.tuple()
            p.op(0x52)  // REDUCE
        }
        p.op(0x75)  // SETITEMS
        p.stop()
        return p.bytes
    }
}

/// A torch-style archive `archive/data.pkl` + `archive/data/<key>` storages.
func torchArchive(pickle: [UInt8], storages: [(String, [UInt8])], extra: [Build.ZipMember] = []) -> [UInt8] {
    var members = [Build.ZipMember(name: "archive/data.pkl", data: pickle)]
    members += extra
    members.append(Build.ZipMember(name: "archive/byteorder", data: Array("little".utf8)))
    for (k, d) in storages { members.append(Build.ZipMember(name: "archive/data/\(k)", data: d)) }
    members.append(Build.ZipMember(name: "archive/version", data: Array("3\n".utf8)))
    return Build.zip(members)
}

func floatBytes(_ v: [Float]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }

func write(_ bytes: [UInt8], _ dir: URL, _ name: String) throws -> URL {
    let u = dir.appendingPathComponent(name)
    try Data(bytes).write(to: u)
    return u
}
