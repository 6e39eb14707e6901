import Foundation
import Testing
import TestSupport
import BackpackCheckpoint
import BackpackModel
import BackpackModelFolder
import BackpackTokenizer

/// A small file that claims something huge; it must be refused quickly, before allocating.
struct SizeClaim: CustomTestStringConvertible, Sendable {
    let label: String
    /// Files to write into a model directory (config.json is the tiny fixture's unless given).
    let files: @Sendable () -> [String: [UInt8]]
    /// backpack arguments; "DIR" is replaced by the directory.
    let arguments: [String]
    let expect: String
    var testDescription: String { label }
}

private func st(_ header: String, data: Int = 16) -> [UInt8] {
    let h = Array(header.utf8)
    return le64(UInt64(h.count)) + h + [UInt8](repeating: 0, count: data)
}

private func pickleArchive(_ pickle: [UInt8]) -> [UInt8] {
    // One stored member `archive/data.pkl` (the reader does not check CRCs).
    let name = Array("archive/data.pkl".utf8)
    func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
    var out = le32(0x0403_4b50) + le16(20) + le16(0) + le16(0) + le16(0) + le16(0) + le32(0)
    out += le32(UInt32(pickle.count)) + le32(UInt32(pickle.count)) + le16(name.count) + le16(0) + name + pickle
    let cd = out.count
    out += le32(0x0201_4b50) + le16(20) + le16(20) + le16(0) + le16(0) + le16(0) + le16(0) + le32(0)
    out += le32(UInt32(pickle.count)) + le32(UInt32(pickle.count)) + le16(name.count) + le16(0) + le16(0)
    out += le16(0) + le16(0) + le32(0) + le32(0) + name
    let cdSize = out.count - cd
    out += le32(0x0605_4b50) + le16(0) + le16(0) + le16(1) + le16(1) + le32(UInt32(cdSize)) + le32(UInt32(cd)) + le16(0)
    return out
}

private let merges = Array("#version: 0.2\n".utf8)

let sizeClaims: [SizeClaim] = [
    SizeClaim(label: "safetensors: 2^40-element tensor in a tiny file",
              files: { ["model.safetensors": st(#"{"w":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4398046511104]}}"#)] },
              arguments: ["info", "DIR"], expect: "lie outside the 16-byte data section"),
    SizeClaim(label: "safetensors: 2^40-element tensor with a 4-byte range",
              files: { ["model.safetensors": st(#"{"w":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4]}}"#)] },
              arguments: ["info", "DIR"], expect: "needs 4398046511104 bytes"),
    SizeClaim(label: "safetensors: header length 2^63",
              files: { ["model.safetensors": le64(1 << 63) + [UInt8](repeating: 0x7b, count: 64)] },
              arguments: ["info", "DIR"], expect: "header length 9223372036854775808 exceeds"),
    SizeClaim(label: "safetensors: 2^16 dims in the shape",
              files: { ["model.safetensors": st(#"{"w":{"dtype":"F32","shape":["# + String(repeating: "1,", count: 1 << 16) + #"1],"data_offsets":[0,4]}}"#)] },
              arguments: ["info", "DIR"], expect: "model.safetensors"),
    SizeClaim(label: "pickle: BINUNICODE of 2^31 bytes",
              files: { ["pytorch_model.bin": pickleArchive([0x80, 0x02, 0x58] + le32(1 << 31) + [0x41, 0x2e])] },
              arguments: ["info", "DIR"], expect: "BINUNICODE needs 2147483648 bytes"),
    SizeClaim(label: "pickle: BINBYTES8 of 2^62 bytes",
              files: { ["pytorch_model.bin": pickleArchive([0x80, 0x04, 0x8e] + le64(1 << 62) + [0x41, 0x2e])] },
              arguments: ["info", "DIR"], expect: "BINBYTES length 4611686018427387904 exceeds"),
    SizeClaim(label: "pickle: storage of 2^40 elements",
              files: { ["pytorch_model.bin": pickleArchive([0x80, 0x02, 0x28, 0x58] + le32(7) + Array("storage".utf8)
                  + [0x63] + Array("torch\nFloatStorage\n".utf8) + [0x58] + le32(1) + [0x30] + [0x58] + le32(3) + Array("cpu".utf8)
                  + [0x8a, 0x08] + le64(1 << 40) + [0x74, 0x51, 0x2e])] },
              arguments: ["info", "DIR"], expect: "storage '0' has no entry"),
    SizeClaim(label: "zip: central directory of 2^62 entries",
              files: { ["pytorch_model.bin": le32(0x0606_4b50) + le64(44) + [UInt8](repeating: 0, count: 12) + le64(1 << 62) + le64(1 << 62)
                  + le64(0) + le64(0) + le32(0x0706_4b50) + le32(0) + le64(0) + le32(1)
                  + le32(0x0605_4b50) + [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff] + le32(0xffff_ffff) + le32(0xffff_ffff) + [0, 0]] },
              arguments: ["info", "DIR"], expect: "cannot hold 4611686018427387904 entries"),
    SizeClaim(label: "config.json: vocab_size 2^24 x n_embd 2^16 with a tiny checkpoint",
              files: { ["config.json": Array(#"{"architectures":["BackpackGPT2LMHeadModel"],"model_type":"gpt2","n_embd":65536,"n_layer":1024,"n_head":1,"n_positions":1048576,"vocab_size":16777216,"num_senses":16}"#.utf8)] },
              arguments: ["info", "DIR"], expect: "DIR"),
    SizeClaim(label: "config.json: sizes beyond the limits",
              files: { ["config.json": Array(#"{"n_embd":4611686018427387904,"n_layer":1,"n_head":1,"n_positions":1,"vocab_size":4611686018427387904,"num_senses":1}"#.utf8)] },
              arguments: ["info", "DIR"], expect: "sizes a Backpack model can have"),
    SizeClaim(label: "vocab.json: one piece with id 2^24-1",
              files: { ["vocab.json": Array(#"{"a": 16777215}"#.utf8), "merges.txt": merges] },
              arguments: ["tokenize", "--model", "TINY", "--tokenizer", "DIR/vocab.json", "a"], expect: "ids are too sparse: the largest id is 16777215"),
    SizeClaim(label: "vocab.json: id 2^62",
              files: { ["vocab.json": Array(#"{"a": 4611686018427387904}"#.utf8), "merges.txt": merges] },
              arguments: ["tokenize", "--model", "TINY", "--tokenizer", "DIR/vocab.json", "a"], expect: "out of range"),
    SizeClaim(label: "tokenizer.json: added token id 2^24-1",
              files: { ["tokenizer.json": Array(#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":{"type":"ByteLevel"},"added_tokens":[{"id":16777215,"content":"<x>"}]}"#.utf8)] },
              arguments: ["tokenize", "--model", "TINY", "--tokenizer", "DIR/tokenizer.json", "a"], expect: "ids are too sparse"),
]

@Suite struct SizeLimitTests {
    /// Through the CLI: exit 1 with the reason, within 10 s, peak RSS of the process less than
    /// 128 MiB above that of `backpack info` on the tiny model.
    @Test(arguments: sizeClaims)
    func refusedWithoutAllocating(_ c: SizeClaim) throws {
        let dir = try TestPaths.temporaryDirectory("claims")
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = c.files()
        if files["config.json"] == nil {
            try FileManager.default.copyItem(at: TestPaths.tinyModel.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        }
        if files["model.safetensors"] == nil, files["pytorch_model.bin"] == nil {
            try FileManager.default.copyItem(at: TestPaths.tinyModel.appendingPathComponent("model.safetensors"), to: dir.appendingPathComponent("model.safetensors"))
        }
        for (name, bytes) in files { try writeBytes(bytes, dir.appendingPathComponent(name)) }
        let args = c.arguments.map {
            $0.replacingOccurrences(of: "DIR", with: dir.path).replacingOccurrences(of: "TINY", with: TestPaths.tinyModel.path)
        }
        let r = try Child.backpack(args)
        print("size claim '\(c.label)': status \(r.status.map(String.init) ?? "signal \(r.signal ?? 0)"), peak RSS \(r.maxRSSKiB / 1024) MiB, \(String(format: "%.2f", r.seconds)) s: \(r.err.split(separator: "\n").first ?? "")")
        HostileCorpus.report("size\t\(c.label)\t\(r.maxRSSKiB / 1024) MiB\t\(r.err.split(separator: "\n").first.map(String.init)?.replacingOccurrences(of: dir.path, with: "DIR") ?? "")")
        #expect(r.signal == nil, "\(r)")
        #expect(r.status == 1, "\(r)")
        #expect(r.err.contains(c.expect.replacingOccurrences(of: "DIR", with: dir.path)), "\(r)")
        #expect(Child.rssIsSmall(r), "peak RSS \(r.maxRSSKiB) KiB (baseline \(Child.baselineRSSKiB) KiB): \(r)")
    }

    /// In process: the readers refuse the same claims and this process's peak RSS (VmHWM) does
    /// not grow by more than 64 MiB (other tests run in parallel, so the bound is loose).
    @Test func readersDoNotAllocateForClaims() throws {
        let dir = try TestPaths.temporaryDirectory("claims-api")
        defer { try? FileManager.default.removeItem(at: dir) }
        let before = peakRSSKiB()
        let s = dir.appendingPathComponent("a.safetensors")
        try writeBytes(st(#"{"w":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4398046511104]}}"#), s)
        #expect(throws: CheckpointError.self) { try SafetensorsFile(url: s) }
        let p = dir.appendingPathComponent("p.bin")
        try writeBytes(pickleArchive([0x80, 0x02, 0x58] + le32(1 << 31) + [0x41, 0x2e]), p)
        #expect(throws: CheckpointError.self) { try TorchCheckpoint(url: p) }
        let v = dir.appendingPathComponent("vocab.json"), m = dir.appendingPathComponent("merges.txt")
        try writeBytes(Array(#"{"a": 4611686018427387904}"#.utf8), v)
        try writeBytes(merges, m)
        #expect(throws: TokenizerError.self) { try GPT2Tokenizer(vocabulary: v, merges: m) }
        // Regression: ids up to 2^24 were accepted and sized two id-indexed tables (~400 MB).
        try writeBytes(Array(#"{"a": 16777215}"#.utf8), v)
        #expect(throws: TokenizerError.self) { try GPT2Tokenizer(vocabulary: v, merges: m) }
        let c = dir.appendingPathComponent("config.json")
        try writeBytes(Array(#"{"n_embd":4611686018427387904,"n_layer":1,"n_head":1,"n_positions":1,"vocab_size":1}"#.utf8), c)
        #expect(throws: (any Error).self) { try BackpackConfig.load(c) }
        let grew = peakRSSKiB() - before
        print("peak RSS grew by \(grew) KiB while refusing size claims in process")
        #expect(grew < 64 << 10)
    }
}
