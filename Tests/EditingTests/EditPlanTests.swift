import BackpackEditing
import BackpackModel
import Foundation
import Testing

@Suite struct EditPlanTests {
    let mixed = """
        schema: backpack-edit/1
        interventions:
          - tokens: [73, 259]
            senses: [1]
            scale: 0.5
          - scope: vocabulary
            senses: [0, 2]
            project_out: {direction: {embedding_difference: [{token: 383}, {token: 239}]}, strength: 1.0}
          - tokens: [17]
            target: input_embedding
            scale: 0.25
        """

    @Test func planExposesScopesAndWhetherTheTrunkIsShared() throws {
        let base = try Fixture.model()
        let words = try Editor.plan([try Fixture.edit("nullspace"), try Fixture.edit("scale_half")], config: base.config, tokenizer: nil)
        #expect(words.steps.map(\.scope) == [.words, .words])
        #expect(!words.changesTrunk && words.sharesTrunkWithBase)
        let plan = try Editor.plan([try parse(mixed)], config: base.config, tokenizer: nil)
        #expect(plan.steps.map(\.scope) == [.words, .vocabulary, .inputEmbedding])
        #expect(plan.steps.map(\.tokens) == [[73, 259], [], [17]])
        #expect(plan.changesTrunk && !plan.sharesTrunkWithBase)
        // the plan applied equals the one-call convenience, bit for bit
        let seqs = try Fixture.ids("seq3")
        let a = try plan.apply(to: base), b = try Editor.apply([try parse(mixed)], to: base, tokenizer: nil)
        let la = try a.model.forward(batch: seqs), lb = try b.model.forward(batch: seqs)
        #expect(zip(la, lb).allSatisfy { $0.logits == $1.logits })
        #expect(a.records.map(\.scope) == [.words, .vocabulary, .inputEmbedding])
    }

    @Test func scopeKeepsTheManifestSpelling() throws {
        let outcome = try Editor.apply([try parse(mixed)], to: try Fixture.model(), tokenizer: nil)
        let json = try outcome.records.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        #expect(json[0].contains("\"scope\":\"words\""))
        #expect(json[1].contains("\"scope\":\"vocabulary\""))
        #expect(json[2].contains("\"scope\":\"input_embedding\""))
        let decoded = try JSONDecoder().decode(InterventionRecord.self, from: Data(json[2].utf8))
        #expect(decoded.scope == .inputEmbedding)
    }

    @Test func planRefusesAModelOfAnotherShape() throws {
        let base = try Fixture.model()
        let plan = try Editor.plan([try Fixture.edit("nullspace")], config: base.config, tokenizer: nil)
        let other = Fixture.smallGPT2Backpack()
        do {
            _ = try plan.apply(to: other)
            Issue.record("expected an error applying a plan to a model of another shape")
        } catch let e as EditError {
            #expect(e.description.contains("nullspace.yaml: the edits were resolved for \(base.config.architecture.rawValue), vocab_size 512, num_senses 4, n_embd 64; expected a model of that shape, found \(other.config.architecture.rawValue), vocab_size 50264, num_senses 16, n_embd 32"))
        }
    }
}
