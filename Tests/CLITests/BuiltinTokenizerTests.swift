import Foundation
import Testing
import TestSupport

/// A model directory with GPT-2's vocabulary and no tokenizer files (like the published
/// stanfordnlp/backpack-gpt2) gets GPT-2's built-in BPE, and `backpack info` says so.
@Suite struct BuiltinTokenizerTests {
    /// A small random Backpack with GPT-2's padded vocabulary (50264), weights only.
    func gpt2VocabularyModel(_ tag: String) throws -> URL {
        let dir = try TestPaths.temporaryDirectory(tag)
        let config = """
            {"architectures": ["BackpackGPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 16, "n_layer": 1,
             "n_head": 2, "n_positions": 32, "vocab_size": 50264, "num_senses": 2, "sense_intermediate_scale": 2,
             "scale_attn_by_inverse_layer_idx": true}
            """
        try Data(config.utf8).write(to: dir.appendingPathComponent("arch.json"))
        let model = dir.appendingPathComponent("model")
        let r = try backpack(["init", "--config", dir.appendingPathComponent("arch.json").path, "--seed", "1", "--out", model.path])
        #expect(r.status == 0, "\(r.err)")
        return model
    }

    @Test func infoNamesTheBuiltinTokenizer() throws {
        let model = try gpt2VocabularyModel("builtin-info")
        defer { try? FileManager.default.removeItem(at: model.deletingLastPathComponent()) }
        let files = try FileManager.default.contentsOfDirectory(atPath: model.path).sorted()
        #expect(files == ["config.json", "model.safetensors"])
        let r = try backpack(["info", "--model", model.path])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("tokenizer    50257 tokens: GPT-2 BPE (built in"), "\(r.out)")
        // GPT-2's ids for "Hello world" are 15496, 995 (tiktoken gpt2).
        let t = try backpack(["tokenize", "--model", model.path, "--ids-only", "Hello world"])
        #expect(t.status == 0, "\(t.err)")
        #expect(t.out.trimmingCharacters(in: .whitespacesAndNewlines) == "15496,995", "\(t.out)")
    }

    @Test func otherVocabulariesStillNeedATokenizer() throws {
        // The tiny fixture (vocab 512) has no tokenizer files: no built-in guess, a clear message.
        let r = try backpack(["tokenize", "--model", TestPaths.tinyModel.path, "hello"])
        #expect(r.status == 1)
        #expect(r.err.contains("is not GPT-2's; pass --tokenizer PATH"), "\(r.err)")
        let info = try backpack(["info", "--model", TestPaths.tinyModel.path])
        #expect(info.status == 0, "\(info.err)")
        #expect(info.out.contains("tokenizer    none in the directory (pass --tokenizer PATH)"), "\(info.out)")
    }
}
