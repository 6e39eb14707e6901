import BackpackCheckpoint
import BackpackEditing
import BackpackModel
import BackpackModelFolder
import BackpackTokenizer
import Foundation
import Testing
import TestSupport

enum Fixture {
    static var expected: SafetensorsFile { get throws { try ReferenceFixture.expected } }
    static let inputs = ReferenceFixture.inputs
    /// Test edit files, beside this source file (no resource bundle).
    static let editsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Edits")

    static func model() throws -> LanguageModel { try ModelDirectory(TestPaths.tinyModel).load() }

    static func toyTokenizer() throws -> GPT2Tokenizer { try GPT2Tokenizer.load(from: TestPaths.toyTokenizer) }

    static func edit(_ name: String) throws -> EditFile {
        try EditFile.load(editsDirectory.appendingPathComponent(name + ".yaml"))
    }

    static func maxDiff(_ a: some Collection<Float>, _ b: some Collection<Float>) -> Float { ReferenceFixture.maxDiff(a, b) }
    static func ids(_ name: String) throws -> [[Int]] { try ReferenceFixture.ids(name) }
    static func row(_ name: String, _ b: Int) throws -> ArraySlice<Float> { try ReferenceFixture.row(name, b) }

    /// A small Backpack with GPT-2's vocabulary (random weights), for validating shipped edits.
    static func smallGPT2Backpack(architecture: BackpackConfig.Architecture = .backpack) -> LanguageModel {
        var c = BackpackConfig.backpackGPT2
        c.nEmbd = 32; c.nLayer = 2; c.nHead = 2; c.nPositions = 64
        if architecture == .gpt2 { c.architectures = [BackpackConfig.Architecture.gpt2.rawValue]; c.numSenses = nil }
        return LanguageModel(parameters: RandomInitializer.parameters(config: c, seed: 7))
    }

    static func gpt2Tokenizer() throws -> GPT2Tokenizer { try GPT2Tokenizer.load(from: TestPaths.gpt2Tokenizer) }
}
