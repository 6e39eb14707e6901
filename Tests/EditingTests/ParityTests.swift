import BackpackEditing
import BackpackModel
import Foundation
import Testing
import TestSupport

/// The fixture edits of Tests/Fixtures/tiny, written as edit files, against the PyTorch
/// reference: logits 1e-4, senses 1e-5 (the tolerances of the model's own parity tests).
@Suite struct EditParityTests {
    static let edits = ["scale0", "scale_half", "nullspace", "nullspace_all", "knowledge_projection"]

    @Test(arguments: edits)
    func matchesReference(edit: String) throws {
        let base = try Fixture.model()
        let outcome = try Editor.apply([try Fixture.edit(edit)], to: base, tokenizer: nil)
        let model = outcome.model
        var worstLogits: Float = 0, worstSenses: Float = 0
        for input in Fixture.inputs {
            let batch = try Fixture.ids(input)
            let outputs = try model.forward(batch: batch, options: .init(logits: .all, senses: true))
            for (b, out) in outputs.enumerated() {
                let l = Fixture.maxDiff(out.logits, try Fixture.row("\(edit)_\(input)_logits", b))
                let s = Fixture.maxDiff(try #require(out.senses), try Fixture.row("\(edit)_\(input)_senses", b))
                worstLogits = max(worstLogits, l); worstSenses = max(worstSenses, s)
                #expect(l <= 1e-4, "\(edit) \(input)[\(b)] logits \(l)")
                #expect(s <= 1e-5, "\(edit) \(input)[\(b)] senses \(s)")
            }
        }
        let wordIDs = try Fixture.expected.ints("\(edit)_word_ids")
        let after = try Fixture.expected.floats("\(edit)_word_senses_after")
        let before = try Fixture.expected.floats("\(edit)_word_senses_before")
        let vectors = model.senseVectors(wordIDs), baseVectors = base.senseVectors(wordIDs)
        let kd = model.config.senses * model.config.nEmbd
        var worstWord: Float = 0, worstBefore: Float = 0
        for (w, id) in wordIDs.enumerated() {
            worstWord = max(worstWord, Fixture.maxDiff(try #require(vectors[id]), after[(w * kd)..<((w + 1) * kd)]))
            worstBefore = max(worstBefore, Fixture.maxDiff(try #require(baseVectors[id]), before[(w * kd)..<((w + 1) * kd)]))
        }
        print("edit parity \(edit): max|d| logits \(worstLogits) (tol 1e-4), senses \(worstSenses) (tol 1e-5), word senses after \(worstWord), before \(worstBefore) (tol 1e-5)")
        #expect(worstWord <= 1e-5)
        #expect(worstBefore <= 1e-5)
        #expect(outcome.records.count == 1)
        #expect(outcome.records[0].tokens == wordIDs.sorted() || Set(outcome.records[0].tokens) == Set(wordIDs))
    }

    @Test func editsComposeInOrder() throws {
        // scale 0.5 twice equals scale 0.25 once
        let base = try Fixture.model()
        let half = try Fixture.edit("scale_half")
        let twice = try Editor.apply([half, half], to: base, tokenizer: nil).model
        let v = twice.senseVectors([73])[73] ?? [], b = base.senseVectors([73])[73] ?? []
        let d = base.config.nEmbd
        let quarter = (0..<(4 * d)).map { i in i / d == 3 ? b[i] * 0.25 : b[i] }
        #expect(Fixture.maxDiff(v, quarter) <= 1e-6)
    }
}
