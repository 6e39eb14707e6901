import BackpackCheckpoint
import BackpackIO
import Foundation
import Testing
import TestSupport

/// Runs the built `backpack` binary; returns (exit status, stdout, stderr).
func backpack(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
    let r = try BackpackRun.run(arguments, environment: environment)
    #expect(!r.signaled, "backpack \(arguments) ended by a signal")
    return (r.status, r.out, r.err)
}

@Suite struct CommandTests {
    let tiny = TestPaths.tinyModel.path
    let toy = TestPaths.toyTokenizer.path

    @Test func forwardWritesTheReferenceTensors() throws {
        let expected = try SafetensorsFile(url: TestPaths.tinyModel.appendingPathComponent("expected.safetensors"))
        let ids = try expected.ints("seq2_input_ids")
        let dir = try TestPaths.temporaryDirectory("cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("forward.safetensors")
        let r = try backpack(["forward", "--model", tiny, "--ids", ids.map(String.init).joined(separator: ","), "--out", out.path])
        #expect(r.status == 0, "\(r.err)")
        let written = try SafetensorsFile(url: out)
        #expect(written.tensors["logits"]?.shape == [16, 512])
        #expect(written.tensors["senses"]?.shape == [4, 16, 64])
        #expect(written.tensors["contextualization"]?.shape == [4, 16, 16])
        #expect(written.tensors["hidden"]?.shape == [16, 64])
        for (name, reference, tolerance) in [("logits", "seq2_logits", Float(1e-4)), ("senses", "seq2_senses", 1e-5),
                                             ("contextualization", "seq2_contextualization", 1e-5), ("hidden", "seq2_hidden", 1e-5)] {
            let a = try written.floats(name), b = try expected.floats(reference)
            let diff = zip(a, b).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
            print("backpack forward vs reference \(name): max|d| \(diff) (tol \(tolerance))")
            #expect(diff <= tolerance)
        }
    }

    @Test func infoDescribesTheCheckpoint() throws {
        let r = try backpack(["info", TestPaths.tinyLegacyBin.path])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("BackpackGPT2LMHeadModel"))
        #expect(r.out.contains("sense network"))
        #expect(r.out.contains("pytorch_model.bin"))
    }

    @Test func tokenizeAndSensesWithAGivenTokenizer() throws {
        let t = try backpack(["tokenize", "--model", tiny, "--tokenizer", toy, "--ids-only", "the cat"])
        #expect(t.status == 0, "\(t.err)")
        #expect(!t.out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        let s = try backpack(["senses", "--model", tiny, "--tokenizer", toy, "--no-space", "a", "--top", "3"])
        #expect(s.status == 0, "\(s.err)")
        #expect(s.out.components(separatedBy: "\n").filter { $0.hasPrefix("sense ") }.count == 4)
    }

    @Test func generateIsReproducible() throws {
        let args = ["generate", "--model", tiny, "--tokenizer", toy, "--prompt", "the", "--max-tokens", "8", "--seed", "3"]
        let a = try backpack(args), b = try backpack(args)
        #expect(a.status == 0, "\(a.err)")
        #expect(a.out == b.out)
    }

    @Test func initWritesALoadableCheckpoint() throws {
        let dir = try TestPaths.temporaryDirectory("cli-init")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("config.json")
        try Data(#"{"architectures":["BackpackGPT2LMHeadModel"],"n_embd":32,"n_layer":2,"n_head":2,"n_positions":16,"vocab_size":100,"num_senses":4}"#.utf8).write(to: config)
        let out = dir.appendingPathComponent("model")
        let r = try backpack(["init", "--config", config.path, "--seed", "7", "--out", out.path])
        #expect(r.status == 0, "\(r.err)")
        let f = try backpack(["forward", "--model", out.path, "--ids", "1,2,3", "--out", dir.appendingPathComponent("f.safetensors").path])
        #expect(f.status == 0, "\(f.err)")
        let again = dir.appendingPathComponent("model2")
        _ = try backpack(["init", "--config", config.path, "--seed", "7", "--out", again.path])
        #expect(try FileDigest.sha256(out.appendingPathComponent("model.safetensors"))
                == FileDigest.sha256(again.appendingPathComponent("model.safetensors")))
        // no temporary directories left beside the output
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).allSatisfy { !$0.hasPrefix(".") })
    }

    /// Bad input: exit status 1 (never a signal), one message naming the file or option and the reason.
    @Test(arguments: [
        (["info", "/nonexistent/model"], "/nonexistent/model"),
        (["forward", "--model", "/work", "--ids", "1", "--out", "/tmp/x.safetensors"], "config.json"),
        (["forward", "--ids", "1,99999", "--out", "/tmp/backpack-x.safetensors"], "out of range"),
        (["forward", "--ids", "1,x", "--out", "/tmp/backpack-x.safetensors"], "not an integer"),
        (["tokenize", "--tokenizer", "/nonexistent/tok.json", "hi"], "/nonexistent/tok.json"),
        (["init", "--config", "/nonexistent/config.json", "--out", "/tmp/backpack-never"], "/nonexistent/config.json"),
    ])
    func badInputIsAClearError(arguments: [String], mention: String) throws {
        var args = arguments
        if args.first == "forward" && !args.contains("--model") { args += ["--model", tiny] }
        let r = try backpack(args)
        #expect(r.status != 0)
        #expect(r.err.contains(mention), "stderr: \(r.err)")
    }

    @Test func tooLongSequenceIsRefused() throws {
        let ids = Array(repeating: "1", count: 65).joined(separator: ",")
        let r = try backpack(["forward", "--model", tiny, "--ids", ids, "--out", "/tmp/backpack-never.safetensors"])
        #expect(r.status == 1)
        #expect(r.err.contains("n_positions"))
    }

    @Test func corruptConfigNamesTheKey() throws {
        let dir = try TestPaths.temporaryDirectory("cli-config")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: TestPaths.tinyModel.appendingPathComponent("model.safetensors"),
                                          to: dir.appendingPathComponent("model.safetensors"))
        try Data(#"{"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 64, "num_senses": 4}"#.utf8)
            .write(to: dir.appendingPathComponent("config.json"))
        let r = try backpack(["info", dir.path])
        #expect(r.status == 1)
        #expect(r.err.contains("vocab_size"))
        try Data(#"{"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 64, "num_senses": 4, "vocab_size": 300}"#.utf8)
            .write(to: dir.appendingPathComponent("config.json"))
        let shape = try backpack(["info", dir.path])
        #expect(shape.status == 1)
        #expect(shape.err.contains("shape"))
    }
}
