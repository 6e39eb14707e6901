import Foundation
import Testing
import TestSupport
@testable import BackpackCheckpoint
import BackpackIO

private struct ExpectedManifest {
    let safetensorsKeys: [String]
    let binKeys: [String]
    let binShapes: [String: [Int]]
    let metadata: [String: String]
    let npz: [String: (shape: [Int], dtype: String)]

    init() throws {
        let url = TestPaths.tinyModel.appendingPathComponent("expected.json")
        // expected.json holds NaN literals (Python's json); replace them before Foundation parses.
        var text = try String(contentsOf: url, encoding: .utf8)
        text = text.replacingOccurrences(of: "NaN", with: "null")
        let root = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
        let keys = root["keys"] as? [String: Any] ?? [:]
        safetensorsKeys = keys["safetensors_keys"] as? [String] ?? []
        binKeys = keys["bin_keys"] as? [String] ?? []
        binShapes = (keys["bin_shapes"] as? [String: [Int]]) ?? [:]
        metadata = keys["safetensors_metadata"] as? [String: String] ?? [:]
        var npz: [String: (shape: [Int], dtype: String)] = [:]
        for (k, v) in root["npz_keys"] as? [String: [Any]] ?? [:] {
            npz[k] = ((v.first as? [Int]) ?? [], (v.last as? String) ?? "")
        }
        self.npz = npz
    }
}

/// Aliases a pytorch_model.bin keeps and model.safetensors drops.
private let aliases = [
    "lm_head.weight": "backpack.gpt2_model.wte.weight",
    "backpack.word_embeddings.weight": "backpack.gpt2_model.wte.weight",
    "backpack.position_embeddings.weight": "backpack.gpt2_model.wpe.weight",
]

private func bitsEqual(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}

private func timed<T>(_ label: String, _ body: () throws -> T) rethrows -> (T, Double) {
    let t0 = DispatchTime.now().uptimeNanoseconds
    let r = try body()
    let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    print("[checkpoint] open \(label): \(String(format: "%.2f", s * 1000)) ms")
    return (r, s)
}

@Suite struct FixtureTests {
    let tiny = TestPaths.tinyModel

    @Test func safetensorsNamesShapesAndMetadataMatchManifest() throws {
        let m = try ExpectedManifest()
        let (st, secs) = try timed("tiny/model.safetensors") { try SafetensorsFile(url: tiny.appendingPathComponent("model.safetensors")) }
        #expect(secs < 1)
        #expect(st.tensors.keys.sorted() == m.safetensorsKeys.sorted())
        #expect(!m.safetensorsKeys.isEmpty)
        #expect(st.metadata == m.metadata)
        for (name, info) in st.tensors {
            #expect(info.dtype == .f32)
            if let shape = m.binShapes[name] { #expect(info.shape == shape, "\(name)") }
            #expect(try st.floats(name).count == info.count)
        }
        #expect(st.files == [tiny.appendingPathComponent("model.safetensors")])
    }

    @Test func binNamesAndShapesMatchManifest() throws {
        let m = try ExpectedManifest()
        let (bin, secs) = try timed("tiny/pytorch_model.bin") { try TorchCheckpoint(url: tiny.appendingPathComponent("pytorch_model.bin")) }
        #expect(secs < 1)
        #expect(bin.names == m.binKeys || bin.tensors.keys.sorted() == m.binKeys.sorted())
        #expect(bin.tensors.keys.sorted() == m.binKeys.sorted())
        for (name, shape) in m.binShapes { #expect(bin.tensors[name]?.shape == shape, "\(name)") }
    }

    @Test func everyBinTensorEqualsSafetensorsBitForBit() throws {
        let st = try SafetensorsFile(url: tiny.appendingPathComponent("model.safetensors"))
        let bin = try TorchCheckpoint(url: tiny.appendingPathComponent("pytorch_model.bin"))
        var compared = 0
        for name in bin.tensors.keys.sorted() {
            let ref = st.tensors[name] != nil ? name : aliases[name]
            guard let ref else { Issue.record("no counterpart for \(name)"); continue }
            #expect(bin.tensors[name]?.shape == st.tensors[ref]?.shape, "\(name)")
            #expect(bitsEqual(try bin.floats(name), try st.floats(ref)), "\(name) != \(ref)")
            compared += 1
        }
        #expect(compared == bin.tensors.count)
        #expect(compared == 47)
    }

    @Test func legacyBinHasSameWeightsAndBoolBuffers() throws {
        let tinyBin = try TorchCheckpoint(url: tiny.appendingPathComponent("pytorch_model.bin"))
        let url = TestPaths.tinyLegacyBin.appendingPathComponent("pytorch_model.bin")
        let (legacy, secs) = try timed("tiny-legacy-bin/pytorch_model.bin") { try TorchCheckpoint(url: url) }
        #expect(secs < 1)
        for name in tinyBin.tensors.keys {
            #expect(bitsEqual(try legacy.floats(name), try tinyBin.floats(name)), "\(name)")
        }
        for layer in 0..<2 {
            let bias = "backpack.gpt2_model.h.\(layer).attn.bias"
            let info = try #require(legacy.tensors[bias])
            #expect(info.dtype == .bool)
            #expect(info.shape == [1, 1, 64, 64])
            let mask = try legacy.ints(bias)
            #expect(mask.count == 64 * 64)
            var causal = true
            for i in 0..<64 { for j in 0..<64 where mask[i * 64 + j] != (j <= i ? 1 : 0) { causal = false } }
            #expect(causal)
            #expect(throws: CheckpointError.self) { try legacy.floats(bias) }
            let mb = try #require(legacy.tensors["backpack.gpt2_model.h.\(layer).attn.masked_bias"])
            #expect(mb.shape == [])
            #expect(try legacy.floats(mb.name).count == 1)
        }
    }

    @Test func expectedSafetensorsArrays() throws {
        let m = try ExpectedManifest()
        let (exp, _) = try timed("tiny/expected.safetensors") { try SafetensorsFile(url: tiny.appendingPathComponent("expected.safetensors")) }
        #expect(exp.tensors.keys.sorted() == m.npz.keys.sorted())
        let dtypes: [String: DType] = ["float32": .f32, "float64": .f64, "int64": .i64]
        for (name, e) in m.npz {
            let info = try #require(exp.tensors[name])
            #expect(info.shape == e.shape, "\(name)")
            #expect(info.dtype == dtypes[e.dtype], "\(name)")
            if info.dtype == .i64 {
                #expect(try exp.ints(name).count == info.count)
                #expect(throws: CheckpointError.self) { try exp.floats(name) }
            } else {
                #expect(try exp.floats(name).count == info.count)
            }
        }
        #expect(try exp.ints("seq1_input_ids").allSatisfy { (0..<512).contains($0) })
    }

    @Test func unknownNameThrowsNamingIt() throws {
        let st = try SafetensorsFile(url: tiny.appendingPathComponent("model.safetensors"))
        let e = #expect(throws: CheckpointError.self) { try st.floats("nope.weight") }
        #expect(e?.description.contains("nope.weight") == true)
        let bin = try TorchCheckpoint(url: tiny.appendingPathComponent("pytorch_model.bin"))
        #expect(throws: CheckpointError.self) { try bin.ints("nope") }
    }

    @Test func sha256MatchesSha256sum() throws {
        for url in [tiny.appendingPathComponent("model.safetensors"), tiny.appendingPathComponent("pytorch_model.bin")] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["sha256sum", url.path]
            let pipe = Pipe()
            p.standardOutput = pipe
            try p.run()
            let out = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            let expected = String(decoding: out, as: UTF8.self).split(separator: " ").first.map(String.init)
            #expect(try FileDigest.sha256(url) == expected)
        }
        let dir = try TestPaths.temporaryDirectory("sha")
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = try write([], dir, "empty")
        #expect(try FileDigest.sha256(empty) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(throws: InputError.self) { try FileDigest.sha256(dir.appendingPathComponent("missing")) }
    }
}

@Suite struct WriterTests {
    @Test func roundTrip() throws {
        let dir = try TestPaths.temporaryDirectory("writer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("out.safetensors")
        let a: [Float] = (0..<6).map { Float($0) * 0.5 - 1 }
        let b: [Float] = [.pi]
        let c: [Float] = [Float.nan, -0.0, .infinity, Float(bitPattern: 1)]
        try SafetensorsWriter.write([("z.last", [2, 3], a), ("a.scalar", [], b), ("m.empty", [0, 4], []), ("m.mid", [4], c)],
                                    metadata: ["format": "pt", "note": "quote \" and\nnewline"], to: url)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["out.safetensors"])
        let f = try SafetensorsFile(url: url)
        #expect(f.metadata == ["format": "pt", "note": "quote \" and\nnewline"])
        #expect(f.names == ["a.scalar", "m.empty", "m.mid", "z.last"])
        #expect(f.tensors["z.last"]?.shape == [2, 3])
        #expect(f.tensors["a.scalar"]?.shape == [])
        #expect(bitsEqual(try f.floats("z.last"), a))
        #expect(bitsEqual(try f.floats("a.scalar"), b))
        #expect(bitsEqual(try f.floats("m.mid"), c))
        #expect(try f.floats("m.empty").isEmpty)
        let raw = try Data(contentsOf: url)
        let headerLen = raw.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect((8 + headerLen) % 8 == 0)

        // Rewriting the tiny model reproduces every tensor.
        let st = try SafetensorsFile(url: TestPaths.tinyModel.appendingPathComponent("model.safetensors"))
        let all = try st.names.map { (name: $0, shape: st.tensors[$0]!.shape, values: try st.floats($0)) }
        let copy = dir.appendingPathComponent("copy.safetensors")
        try SafetensorsWriter.write(all, metadata: st.metadata, to: copy)
        let back = try SafetensorsFile(url: copy)
        for name in st.names { #expect(bitsEqual(try back.floats(name), try st.floats(name))) }
        // Same layout as HF's writer (sorted names, same alignment): identical bytes.
        #expect(try FileDigest.sha256(copy) == FileDigest.sha256(st.url))
    }

    @Test func badInputLeavesNoFile() throws {
        let dir = try TestPaths.temporaryDirectory("writer-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("out.safetensors")
        #expect(throws: CheckpointError.self) { try SafetensorsWriter.write([("a", [2, 2], [1, 2, 3])], metadata: [:], to: url) }
        #expect(throws: CheckpointError.self) { try SafetensorsWriter.write([("a", [1], [1]), ("a", [1], [2])], metadata: [:], to: url) }
        #expect(throws: CheckpointError.self) { try SafetensorsWriter.write([("a", [-1], [])], metadata: [:], to: url) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        // An existing file is replaced atomically, never truncated in place.
        try SafetensorsWriter.write([("a", [1], [1])], metadata: [:], to: url)
        try SafetensorsWriter.write([("b", [2], [1, 2])], metadata: [:], to: url)
        #expect(try SafetensorsFile(url: url).tensors.keys.sorted() == ["b"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["out.safetensors"])
    }

    @Test func shardedIndex() throws {
        let dir = try TestPaths.temporaryDirectory("sharded")
        defer { try? FileManager.default.removeItem(at: dir) }
        try SafetensorsWriter.write([("a", [2], [1, 2]), ("b", [1], [3])], metadata: [:], to: dir.appendingPathComponent("s-1.safetensors"))
        try SafetensorsWriter.write([("c", [1, 1], [4])], metadata: [:], to: dir.appendingPathComponent("s-2.safetensors"))
        let index = dir.appendingPathComponent("model.safetensors.index.json")
        try Data(#"{"metadata":{"total_size":16},"weight_map":{"a":"s-1.safetensors","b":"s-1.safetensors","c":"s-2.safetensors"}}"#.utf8).write(to: index)
        let s = try ShardedSafetensors(index: index)
        #expect(s.tensors.keys.sorted() == ["a", "b", "c"])
        #expect(s.files.count == 2)
        #expect(try s.floats("c") == [4])
        #expect(try s.floats("a") == [1, 2])
        try Data(#"{"weight_map":{"a":"../s-1.safetensors"}}"#.utf8).write(to: index)
        #expect(throws: CheckpointError.self) { try ShardedSafetensors(index: index) }
        try Data(#"{"weight_map":{"zz":"s-1.safetensors"}}"#.utf8).write(to: index)
        let e = #expect(throws: CheckpointError.self) { try ShardedSafetensors(index: index) }
        #expect(e?.reason.contains("zz") == true)
    }
}

@Suite struct LoaderTests {
    @Test func opensFoldersAndFiles() throws {
        #expect(try CheckpointLoader.open(TestPaths.tinyModel) is SafetensorsFile)
        #expect(try CheckpointLoader.open(TestPaths.tinyLegacyBin) is TorchCheckpoint)
        #expect(try CheckpointLoader.open(TestPaths.tinyModel.appendingPathComponent("pytorch_model.bin")) is TorchCheckpoint)
        #expect(throws: CheckpointError.self) { try CheckpointLoader.open(TestPaths.toyTokenizer) }
    }

    /// Opt-in: `BACKPACK_EXTRA_CHECKPOINTS=/path/a:/path/b` (e.g. the real 684 MB pytorch_model.bin).
    /// Opening must take well under a second; every tensor must be readable.
    @Test func extraCheckpointsOpenFast() throws {
        let env = ProcessInfo.processInfo.environment["BACKPACK_EXTRA_CHECKPOINTS"] ?? ""
        for path in env.split(separator: ":") where !path.isEmpty {
            let url = URL(fileURLWithPath: String(path))
            let (archive, secs) = try timed(url.path) { try CheckpointLoader.open(url) }
            #expect(secs < 1, "\(path): \(secs) s")
            let t0 = DispatchTime.now().uptimeNanoseconds
            var total = 0
            for (name, info) in archive.tensors where info.dtype.isFloatingPoint { total += try archive.floats(name).count }
            print("[checkpoint] read \(archive.tensors.count) tensors (\(total) floats) of \(path) in \(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6) ms")
        }
    }
}
