import Foundation
import Testing
import TestSupport
@testable import BackpackCheckpoint

/// One broken input and a fragment the error must contain.
struct BadInput: CustomTestStringConvertible, Sendable {
    let label: String
    let bytes: @Sendable () throws -> [UInt8]
    let expect: String
    var testDescription: String { label }
}

private func expectFailure(_ c: BadInput, open: (URL) throws -> Void) throws {
    let dir = try TestPaths.temporaryDirectory("corrupt")
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = try write(try c.bytes(), dir, "input.bin")
    do {
        try open(url)
        Issue.record("\(c.label): opened without error")
    } catch let e as CheckpointError {
        #expect(e.description.contains(c.expect), "\(c.label): \(e.description)")
        #expect(e.file.hasSuffix("input.bin"))
    } catch {
        Issue.record("\(c.label): unexpected error type \(error)")
    }
}

private let d16 = [UInt8](repeating: 0, count: 16)
private func tinyBytes(_ name: String) throws -> [UInt8] {
    Array(try Data(contentsOf: TestPaths.tinyModel.appendingPathComponent(name)))
}

let safetensorsCases: [BadInput] = [
    BadInput(label: "empty file", bytes: { [] }, expect: "shorter than the 8-byte header length"),
    BadInput(label: "length beyond file", bytes: { Build.safetensors(header: "{}", data: [], lengthOverride: 1 << 40) }, expect: "exceeds the"),
    BadInput(label: "length huge (sign bit)", bytes: { Build.safetensors(header: "{}", data: [], lengthOverride: UInt64.max) }, expect: "exceeds the"),
    BadInput(label: "invalid JSON", bytes: { Build.safetensors(header: #"{"a": {"dtype": "F32",}"#, data: d16) }, expect: "invalid JSON"),
    BadInput(label: "not an object", bytes: { Build.safetensors(header: "[1,2]", data: []) }, expect: "expected a JSON object"),
    BadInput(label: "unknown dtype", bytes: { Build.safetensors(header: #"{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#, data: d16) }, expect: "tensor 'w': unknown dtype 'F128'"),
    BadInput(label: "negative dim", bytes: { Build.safetensors(header: #"{"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}"#, data: d16) }, expect: "tensor 'w': shape[0] = -4 is negative"),
    BadInput(label: "wrong shape", bytes: { Build.safetensors(header: #"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}"#, data: d16) }, expect: "tensor 'w': shape [2, 3] x F32 needs 24 bytes"),
    BadInput(label: "shape overflow", bytes: { Build.safetensors(header: #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#, data: d16) }, expect: "overflows"),
    BadInput(label: "offsets out of order", bytes: { Build.safetensors(header: #"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#, data: d16) }, expect: "out of order"),
    BadInput(label: "offsets outside data", bytes: { Build.safetensors(header: #"{"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}"#, data: d16) }, expect: "outside the 16-byte data section"),
    BadInput(label: "overlapping offsets", bytes: { Build.safetensors(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, data: d16) }, expect: "overlap"),
    BadInput(label: "duplicate names", bytes: { Build.safetensors(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, data: d16) }, expect: "duplicate key 'a'"),
    BadInput(label: "non-string metadata", bytes: { Build.safetensors(header: #"{"__metadata__":{"n":3}}"#, data: []) }, expect: "__metadata__['n'] must be a string"),
    BadInput(label: "missing offsets", bytes: { Build.safetensors(header: #"{"w":{"dtype":"F32","shape":[4]}}"#, data: d16) }, expect: "tensor 'w': 'data_offsets'"),
    BadInput(label: "deep JSON", bytes: { Build.safetensors(header: String(repeating: "[", count: 10_000), data: []) }, expect: "nesting deeper"),
    BadInput(label: "truncated real file", bytes: { Array(try tinyBytes("model.safetensors").dropLast(1000)) }, expect: "outside the"),
    BadInput(label: "truncated inside header", bytes: { Array(try tinyBytes("model.safetensors").prefix(200)) }, expect: "exceeds the"),
]

@Suite struct SafetensorsCorruptionTests {
    @Test(arguments: safetensorsCases)
    func rejects(_ c: BadInput) throws {
        try expectFailure(c) { _ = try SafetensorsFile(url: $0) }
    }
}

// MARK: - zip / pytorch_model.bin

private let goodStorage = floatBytes([1, 2, 3, 4, 5, 6])
private func goodPickle(shape: [Int] = [2, 3], stride: [Int] = [3, 1], offset: Int = 0, numel: Int = 6, type: String = "FloatStorage") -> [UInt8] {
    Pickle.stateDict([(name: "w", storageType: type, key: "0", numel: numel, offset: offset, shape: shape, stride: stride)])
}

@Suite struct TorchSyntheticTests {
    @Test func goodArchiveLoads() throws {
        let dir = try TestPaths.temporaryDirectory("torch-good")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = try write(torchArchive(pickle: goodPickle(), storages: [("0", goodStorage)]), dir, "m.bin")
        let t = try TorchCheckpoint(url: url)
        #expect(t.tensors["w"]?.shape == [2, 3])
        #expect(try t.floats("w") == [1, 2, 3, 4, 5, 6])
        // A view at an offset, with a size-1 dim whose stride is arbitrary.
        let view = try write(torchArchive(pickle: goodPickle(shape: [1, 2], stride: [99, 1], offset: 3), storages: [("0", goodStorage)]), dir, "v.bin")
        #expect(try TorchCheckpoint(url: view).floats("w") == [4, 5])
        // zip64 end of central directory.
        var z64 = [Build.ZipMember(name: "archive/data.pkl", data: goodPickle())]
        z64.append(Build.ZipMember(name: "archive/data/0", data: goodStorage))
        let u64 = try write(Build.zip(z64, zip64: true), dir, "z64.bin")
        #expect(try TorchCheckpoint(url: u64).floats("w") == [1, 2, 3, 4, 5, 6])
        // Half and bfloat16 storages convert.
        let half: [UInt8] = [0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x00, 0x7c]  // 1, -2, 2^-24, inf
        let h = try write(torchArchive(pickle: goodPickle(shape: [4], stride: [1], numel: 4, type: "HalfStorage"), storages: [("0", half)]), dir, "h.bin")
        #expect(try TorchCheckpoint(url: h).floats("w") == [1, -2, Float(bitPattern: 0x3380_0000), .infinity])
        let bf: [UInt8] = [0x80, 0x3f, 0x00, 0xc0]  // 1, -2
        let b = try write(torchArchive(pickle: goodPickle(shape: [2], stride: [1], numel: 2, type: "BFloat16Storage"), storages: [("0", bf)]), dir, "b.bin")
        #expect(try TorchCheckpoint(url: b).floats("w") == [1, -2])
    }
}

private func evil(_ body: (inout Pickle) -> Void) -> [UInt8] {
    var p = Pickle()
    body(&p)
    p.stop()
    return torchArchive(pickle: p.bytes, storages: [])
}

let torchCases: [BadInput] = [
    BadInput(label: "not a zip", bytes: { [0x80, 0x02, 0x8a, 0x0a] + [UInt8](repeating: 0, count: 40) }, expect: "legacy"),
    BadInput(label: "truncated central directory", bytes: { Array(try tinyBytes("pytorch_model.bin").dropLast(30)) }, expect: "end-of-central-directory record not found"),
    BadInput(label: "central directory count too large", bytes: {
        Build.zip([Build.ZipMember(name: "archive/data.pkl", data: goodPickle())], countOverride: 500) }, expect: "cannot hold 500 entries"),
    BadInput(label: "compressed entry", bytes: {
        Build.zip([Build.ZipMember(name: "archive/data.pkl", data: goodPickle(), method: 8)]) }, expect: "entry 'archive/data.pkl' is compressed (method 8)"),
    BadInput(label: "encrypted entry", bytes: {
        Build.zip([Build.ZipMember(name: "archive/data.pkl", data: goodPickle(), flags: 1)]) }, expect: "encrypted"),
    BadInput(label: "local header offset outside", bytes: {
        Build.zip([Build.ZipMember(name: "archive/data.pkl", data: goodPickle(), localOffsetOverride: 0x00FF_FFFF)]) }, expect: "outside the archive"),
    BadInput(label: "local header offset at wrong place", bytes: {
        Build.zip([Build.ZipMember(name: "archive/data.pkl", data: goodPickle(), localOffsetOverride: 5)]) }, expect: "bad signature"),
    BadInput(label: "duplicate entries", bytes: {
        torchArchive(pickle: goodPickle(), storages: [("0", goodStorage), ("0", goodStorage)]) }, expect: "duplicate entry name 'archive/data/0'"),
    BadInput(label: "no data.pkl", bytes: { Build.zip([Build.ZipMember(name: "x/y", data: [1])]) }, expect: "no '<prefix>/data.pkl'"),
    BadInput(label: "missing storage", bytes: { torchArchive(pickle: goodPickle(), storages: []) }, expect: "storage '0' has no entry"),
    BadInput(label: "storage size mismatch", bytes: { torchArchive(pickle: goodPickle(), storages: [("0", Array(goodStorage.prefix(20)))]) }, expect: "declares 6 x F32 but its entry holds 20 bytes"),
    BadInput(label: "non-contiguous", bytes: { torchArchive(pickle: goodPickle(shape: [3, 2], stride: [1, 3]), storages: [("0", goodStorage)]) }, expect: "tensor 'w': not contiguous"),
    BadInput(label: "beyond storage", bytes: { torchArchive(pickle: goodPickle(offset: 2), storages: [("0", goodStorage)]) }, expect: "exceed storage '0'"),
    BadInput(label: "negative size", bytes: { torchArchive(pickle: goodPickle(shape: [-2, -3]), storages: [("0", goodStorage)]) }, expect: "negative or overflows"),
    BadInput(label: "overflowing size", bytes: { torchArchive(pickle: goodPickle(shape: [1 << 30, 1 << 30, 1 << 30], stride: [1, 1, 1]), storages: [("0", goodStorage)]) }, expect: "negative or overflows"),
    BadInput(label: "unknown storage type", bytes: { torchArchive(pickle: goodPickle(type: "ComplexFloatStorage"), storages: [("0", goodStorage)]) }, expect: "refusing global 'torch.ComplexFloatStorage'"),
    BadInput(label: "big-endian", bytes: {
        Build.zip([Build.ZipMember(name: "a/data.pkl", data: goodPickle()), Build.ZipMember(name: "a/byteorder", data: Array("big".utf8))]) }, expect: "byteorder is 'big'"),
    // Hand-assembled hostile pickles.
    BadInput(label: "os.system", bytes: { evil { p in p.global("os", "system"); p.str("echo pwned"); p.op(0x85); p.op(0x52) } },
             expect: "data.pkl: refusing global 'os.system' (only collections.OrderedDict"),
    BadInput(label: "builtins.eval", bytes: { evil { p in p.global("builtins", "eval"); p.str("1+1"); p.op(0x85); p.op(0x52) } },
             expect: "refusing global 'builtins.eval'"),
    BadInput(label: "posix.system", bytes: { evil { p in p.global("posix", "system"); p.str("id"); p.op(0x85); p.op(0x52) } },
             expect: "refusing global 'posix.system'"),
    BadInput(label: "subprocess.Popen", bytes: { evil { p in p.global("subprocess", "Popen"); p.mark(); p.str("ls"); p.tuple(); p.op(0x85); p.op(0x52) } },
             expect: "refusing global 'subprocess.Popen'"),
    BadInput(label: "STACK_GLOBAL os.system", bytes: { evil { p in p.str("os"); p.str("system"); p.op(0x93); p.str("id"); p.op(0x85); p.op(0x52) } },
             expect: "refusing global 'os.system'"),
    BadInput(label: "torch.storage._load_from_bytes", bytes: { evil { p in p.global("torch.storage", "_load_from_bytes"); p.bytes += [0x43, 1, 0]; p.op(0x85); p.op(0x52) } },
             expect: "refusing global 'torch.storage._load_from_bytes'"),
    BadInput(label: "REDUCE on a storage type", bytes: { evil { p in p.global("torch", "FloatStorage"); p.op(0x29); p.op(0x52) } },
             expect: "REDUCE on torch.FloatStorage is not allowed"),
    BadInput(label: "REDUCE on a non-callable", bytes: { evil { p in p.str("x"); p.op(0x29); p.op(0x52) } }, expect: "REDUCE on a str"),
    BadInput(label: "INST opcode", bytes: { evil { p in p.bytes += Array("ios\nsystem\n".utf8) } }, expect: "unsupported or disallowed opcode 0x69"),
    BadInput(label: "huge BINUNICODE length", bytes: { evil { p in p.bytes += [0x58, 0xff, 0xff, 0xff, 0x7f, 0x41] } }, expect: "BINUNICODE needs 2147483647 bytes but only"),
    BadInput(label: "huge BINBYTES8 length", bytes: { evil { p in p.bytes += [0x8e] + Build.le64(UInt64.max) } }, expect: "exceeds the"),
    BadInput(label: "deep tuples", bytes: { evil { p in p.op(0x29); for _ in 0..<100 { p.op(0x85) } } }, expect: "nesting deeper than 64"),
    BadInput(label: "many MARKs", bytes: { evil { p in for _ in 0..<1000 { p.mark() } } }, expect: "nested MARKs"),
    BadInput(label: "memo get unset", bytes: { evil { p in p.bytes += [0x68, 7] } }, expect: "memo index 7 was never stored"),
    BadInput(label: "stack underflow", bytes: { evil { p in p.op(0x52) } }, expect: "stack underflow"),
    BadInput(label: "no STOP", bytes: { torchArchive(pickle: [0x80, 0x02, 0x7d], storages: []) }, expect: "without STOP"),
    BadInput(label: "not a dict", bytes: { evil { p in p.op(0x5d) } }, expect: "expected a state dict"),
    BadInput(label: "non-tensor value", bytes: { evil { p in p.op(0x7d); p.str("k"); p.int(3); p.op(0x73) } }, expect: "'k' is a int, expected a tensor"),
]

@Suite struct TorchCorruptionTests {
    @Test(arguments: torchCases)
    func rejects(_ c: BadInput) throws {
        try expectFailure(c) { _ = try TorchCheckpoint(url: $0) }
    }

    /// Every truncation of a small valid archive fails cleanly (no crash), except the complete file.
    @Test func everyTruncationThrows() throws {
        let full = torchArchive(pickle: goodPickle(), storages: [("0", goodStorage)])
        let dir = try TestPaths.temporaryDirectory("trunc")
        defer { try? FileManager.default.removeItem(at: dir) }
        for n in 0..<full.count {
            let url = try write(Array(full.prefix(n)), dir, "t.bin")
            #expect(throws: CheckpointError.self) { try TorchCheckpoint(url: url) }
        }
    }

    /// Every single-byte corruption of the pickle either loads or throws; never traps.
    @Test func pickleByteFlipsNeverCrash() throws {
        let pkl = goodPickle()
        let dir = try TestPaths.temporaryDirectory("flip")
        defer { try? FileManager.default.removeItem(at: dir) }
        for i in 2..<pkl.count {
            for v: UInt8 in [0x00, 0xff, 0x7f, pkl[i] ^ 0x01] {
                var m = pkl
                m[i] = v
                let url = try write(torchArchive(pickle: m, storages: [("0", goodStorage)]), dir, "f.bin")
                _ = try? TorchCheckpoint(url: url)
            }
        }
    }
}

@Suite struct SafetensorsFuzzTests {
    @Test func everyTruncationThrows() throws {
        let dir = try TestPaths.temporaryDirectory("st-trunc")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("ok.safetensors")
        try SafetensorsWriter.write([("a", [2], [1, 2]), ("b", [3], [3, 4, 5])], metadata: ["k": "v"], to: src)
        let full = Array(try Data(contentsOf: src))
        for n in 0..<full.count {
            let url = try write(Array(full.prefix(n)), dir, "t.safetensors")
            #expect(throws: CheckpointError.self) { try SafetensorsFile(url: url) }
        }
    }
}
