import BackpackEditing
import BackpackModel
import Foundation
import Testing
import TestSupport

/// Every shipped edit in Edits/ parses, validates and applies on a small random model with
/// GPT-2's vocabulary and tokenizer.
@Suite struct ShippedEditsTests {
    static let backpackEdits = ["paper-remove-sense10", "paper-optimize-sense10", "debias-project-gender", "macbook-apple-to-hp",
                                "seed-debias-localized"]

    static func load(_ name: String) throws -> EditFile {
        try EditFile.load(TestPaths.repoRoot.appendingPathComponent("Edits/\(name).yaml"))
    }

    @Test(arguments: backpackEdits)
    func appliesToASmallBackpack(name: String) throws {
        let tok = try Fixture.gpt2Tokenizer()
        let model = Fixture.smallGPT2Backpack()
        let file = try Self.load(name)
        try Editor.validate([file], config: model.config, tokenizer: tok)
        let outcome = try Editor.apply([file], to: model, tokenizer: tok)
        for r in outcome.records { print("\(name): \(r.summary); skipped \(r.skipped)") }
        #expect(!outcome.model.senseOverrides.isEmpty)
        if name == "paper-optimize-sense10" {
            for fit in outcome.records[0].fitted { #expect(fit.objective <= fit.objectiveAtOne) }
        }
    }

    /// Backpack-LM-debias scales the contextualization weights of senses 10, 2, 3 by 0.4 for every
    /// token: the same as C(x)_l scaled by 0.4 for every x, which the vocabulary-wide edit folds
    /// into the sense network. Any token's senses show it; the other senses are untouched.
    @Test func seedDebiasScalesThreeSensesOfEveryToken() throws {
        let tok = try Fixture.gpt2Tokenizer()
        let model = Fixture.smallGPT2Backpack()
        let outcome = try Editor.apply([try Self.load("seed-debias-senses-10-2-3")], to: model, tokenizer: tok)
        #expect(outcome.model.senseOverrides.isEmpty)
        #expect(outcome.records[0].scope == .vocabulary && outcome.records[0].senses == [10, 2, 3])
        let d = model.config.nEmbd, ids = [tok.encode(" nurse")[0], 0, 50000]
        let before = model.senseVectors(ids), after = outcome.model.senseVectors(ids)
        var worst: Float = 0
        for id in ids {
            let b = try #require(before[id]), a = try #require(after[id])
            for l in 0..<model.config.senses {
                let factor: Float = [10, 2, 3].contains(l) ? 0.4 : 1
                for e in 0..<d { worst = max(worst, abs(a[l * d + e] - factor * b[l * d + e])) }
            }
        }
        print("seed debias: max |C'(x)_l - s_l C(x)_l| = \(worst) (tol 1e-5)")
        #expect(worst <= 1e-5)
    }

    @Test func gpt2BaselineUntiesAndProjects() throws {
        let tok = try Fixture.gpt2Tokenizer()
        let model = Fixture.smallGPT2Backpack(architecture: .gpt2)
        let file = try Self.load("gpt2-nullspace-baseline")
        let outcome = try Editor.apply([file], to: model, tokenizer: tok)
        let edited = outcome.model
        #expect(edited.config.tieWordEmbeddings == false)
        let lmHead = try #require(edited.parameters.weights["lm_head.weight"])
        #expect(lmHead.values == model.parameters["transformer.wte.weight"].values)
        let she = tok.encode(" she")[0], he = tok.encode(" he")[0], nurse = tok.encode(" nurse")[0]
        let dir = zip(model.embeddingRow(she), model.embeddingRow(he)).map { $0 - $1 }
        let d = model.config.nEmbd
        let wte = edited.parameters["transformer.wte.weight"].values
        let row = Array(wte[(nurse * d)..<((nurse + 1) * d)])
        let dot = zip(row, dir).reduce(Float(0)) { $0 + $1.0 * $1.1 }
        #expect(abs(dot) < 1e-5)
        // the senses of a Backpack edit are refused on a plain GPT-2
        #expect(throws: EditError.self) { try Editor.validate([try Self.load("paper-remove-sense10")], config: model.config, tokenizer: tok) }
        // `pieces: skip`: the paper keeps a profession only when " " + noun is one GPT-2 token;
        // these 10 of its 40 are several.
        let multiToken = ["carpenter", "librarian", "salesperson", "mover", "hairdresser", "janitor", "receptionist",
                          "housekeeper", "cashier", "laborer"]
        #expect(outcome.records[0].tokens.count == 30)
        #expect(outcome.records[0].skipped.count == multiToken.count)
        for w in multiToken {
            #expect(outcome.records[0].skipped.contains { $0.hasPrefix("\" \(w)\"") }, "\(w) was not skipped: \(outcome.records[0].skipped)")
        }
    }
}
