import BackpackCheckpoint
import BackpackEditing
import BackpackModel
import BackpackTokenizer
import Foundation
import Testing
import TestSupport

enum Fixture {
    static let expected: SafetensorsFile = {
        try! SafetensorsFile(url: TestPaths.tinyModel.appendingPathComponent("expected.safetensors"))
    }()
    static let inputs = ["seq0", "seq1", "seq2", "seq3", "batch"]
    /// Test edit files, beside this source file (no resource bundle).
    static let editsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Edits")

    static func model() throws -> LanguageModel { try ModelDirectory(TestPaths.tinyModel).load() }

    static func toyTokenizer() throws -> GPT2Tokenizer { try GPT2Tokenizer.load(from: TestPaths.toyTokenizer) }

    static func edit(_ name: String) throws -> EditFile {
        try EditFile.load(editsDirectory.appendingPathComponent(name + ".yaml"))
    }

    static func maxDiff(_ a: some Collection<Float>, _ b: some Collection<Float>) -> Float {
        precondition(a.count == b.count, "size mismatch \(a.count) vs \(b.count)")
        return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    static func ids(_ name: String) throws -> [[Int]] {
        let info = try #require(expected.tensors["\(name)_input_ids"])
        let flat = try expected.ints("\(name)_input_ids")
        let rows = info.shape[0], n = info.shape[1]
        return (0..<rows).map { Array(flat[($0 * n)..<(($0 + 1) * n)]) }
    }

    static func row(_ name: String, _ b: Int) throws -> ArraySlice<Float> {
        let info = try #require(expected.tensors[name])
        let all = try expected.floats(name)
        let per = all.count / info.shape[0]
        return all[(b * per)..<((b + 1) * per)]
    }

    /// A small Backpack with GPT-2's vocabulary (random weights), for validating shipped edits.
    static func smallGPT2Backpack(architecture: BackpackConfig.Architecture = .backpack) -> LanguageModel {
        var c = BackpackConfig.backpackGPT2
        c.nEmbd = 32; c.nLayer = 2; c.nHead = 2; c.nPositions = 64
        if architecture == .gpt2 { c.architectures = [BackpackConfig.Architecture.gpt2.rawValue]; c.numSenses = nil }
        return LanguageModel(parameters: RandomInitializer.parameters(config: c, seed: 7))
    }

    static func gpt2Tokenizer() throws -> GPT2Tokenizer { try GPT2Tokenizer.load(from: TestPaths.gpt2Tokenizer) }
}
