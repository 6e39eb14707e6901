import BackpackCheckpoint
import BackpackModel
import Foundation
import Testing
import TestSupport

/// Plain GPT-2 (the paper's Transformer baseline) shares the trunk: a checkpoint saved by
/// Hugging Face transformers (Tools/gpt2-fixture, eager attention, inverse-layer scaling on)
/// must give transformers' logits. Tolerance 1e-4 as for the Backpack.
@Suite struct GPT2Tests {
    static let directory = TestPaths.repoRoot.appendingPathComponent("Tests/ModelTests/Fixtures/gpt2-tiny")

    @Test(arguments: ["seq0", "seq1"])
    func matchesTransformers(sequence: String) throws {
        let dir = try ModelDirectory(Self.directory)
        #expect(dir.config.architecture == .gpt2)
        let model = try dir.load()
        #expect(!model.isBackpack)
        let expected = try SafetensorsFile(url: Self.directory.appendingPathComponent("expected.safetensors"))
        let ids = try expected.ints("\(sequence)_input_ids")
        let out = try model.forward(ids)
        #expect(out.senses == nil)
        let reference = try expected.floats("\(sequence)_logits")
        let diff = zip(out.logits, reference).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
        print("GPT-2 parity \(sequence): max|d| logits \(diff) (tol 1e-4)")
        #expect(diff <= 1e-4)

        // the KV-cached path agrees with the full pass
        let session = GenerationSession(model: model)
        let V = model.config.vocabSize
        var last = try session.feed(Array(ids.prefix(3)))
        for id in ids.dropFirst(3) { last = try session.feed([id]) }
        let cachedDiff = zip(last, out.logits[((ids.count - 1) * V)...]).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
        #expect(cachedDiff <= 1e-4)
    }
}
