import BackpackEditing
import BackpackModel
import Foundation
import Testing
import TestSupport

/// The library example of the README, compiled and run (paths made absolute).
@Suite struct ReadmeExampleTests {
    @Test func libraryExampleRuns() throws {
        let root = TestPaths.repoRoot
        // --- README: Using the library ---
        let dir = try ModelDirectory(root.appendingPathComponent("Models/backpack-demo"))
        let model = try dir.load()
        let tokenizer = try #require(try dir.tokenizer(), "the demo model ships its tokenizer")
        let ids = tokenizer.encode("My nurse said that")
        let he = tokenizer.encode(" he")[0], she = tokenizer.encode(" she")[0]
        func heOverShe(_ m: LanguageModel) throws -> Float {
            let logits = try m.forward(ids, options: .init(logits: .last)).logits
            return logits[he] - logits[she]                  // log p(he) - log p(she)
        }
        let edit = try EditFile.load(root.appendingPathComponent("Edits/remove-gender-sense.yaml"))
        let edited = try Editor.apply([edit], to: model, tokenizer: tokenizer).model
        print("log p(he)/p(she): before \(try heOverShe(model)), after \(try heOverShe(edited))")
        // --- end ---
        #expect(try heOverShe(model) != heOverShe(edited))
    }
}
