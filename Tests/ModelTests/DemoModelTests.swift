import BackpackCheckpoint
import BackpackModel
import BackpackTokenizer
import Foundation
import Testing
import TestSupport

/// The embedded demo model (Models/backpack-demo) against the PyTorch implementation that
/// trained it (Tools/train-demo-model/backpack.py, CPU float32): `parity.safetensors` holds its
/// outputs on three held-out windows. Same tolerances as the reference fixture.
@Suite struct DemoModelTests {
    static let directory = TestPaths.repoRoot.appendingPathComponent("Models/backpack-demo")

    @Test(arguments: ["seq0", "seq1", "seq2"])
    func matchesPyTorch(sequence: String) throws {
        let dir = try ModelDirectory(Self.directory)
        let model = try dir.load()
        let parity = try SafetensorsFile(url: Self.directory.appendingPathComponent("parity.safetensors"))
        let ids = try parity.ints("\(sequence)_input_ids")
        let out = try model.forward(ids, options: .init(logits: .all, senses: true, contextualization: true))
        func diff(_ a: [Float], _ name: String) throws -> Float {
            let b = try parity.floats(name)
            #expect(a.count == b.count)
            return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
        }
        let logits = try diff(out.logits, "\(sequence)_logits")
        let senses = try diff(try #require(out.senses), "\(sequence)_senses")
        let alpha = try diff(try #require(out.contextualization), "\(sequence)_contextualization")
        print("demo parity \(sequence): max|d| logits \(logits) (tol 1e-4), senses \(senses), contextualization \(alpha) (tol 1e-5)")
        #expect(logits <= 1e-4)
        #expect(senses <= 1e-5)
        #expect(alpha <= 1e-5)
    }

    @Test func tokenizerReproducesTheParityText() throws {
        let dir = try ModelDirectory(Self.directory)
        let tokenizer = try #require(try dir.tokenizer())
        let parity = try SafetensorsFile(url: Self.directory.appendingPathComponent("parity.safetensors"))
        for sequence in ["seq0", "seq1", "seq2"] {
            let text = try #require(parity.metadata["\(sequence)_text"])
            #expect(tokenizer.encode(text) == (try parity.ints("\(sequence)_input_ids")))
        }
        #expect(tokenizer.count == dir.config.vocabSize)
    }

    /// The paper's profession nouns are single tokens here (the tokenizer was trained so).
    @Test func professionsAreSingleTokens() throws {
        let tokenizer = try #require(try ModelDirectory(Self.directory).tokenizer())
        let list = try String(contentsOf: TestPaths.repoRoot.appendingPathComponent("Edits/lists/paper-professions.txt"), encoding: .utf8)
        let words = list.split(separator: "\n").map { String($0) }.filter { !$0.hasPrefix("#") && !$0.isEmpty }
        #expect(words.count == 40)
        for word in words + ["he", "she"] { #expect(tokenizer.encode(" " + word).count == 1, "\(word)") }
    }
}
