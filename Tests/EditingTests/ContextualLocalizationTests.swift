import BackpackEditing
import BackpackModel
import BackpackPrompts
import BackpackTokenizer
import Foundation
import Testing
import TestSupport

/// `localized ... by: contextual`: senses ranked by their attributed contribution at the word's
/// position over a pronoun suite's prompts, alpha included.
@Suite struct ContextualLocalizationTests {
    static let suite = Fixture.editsDirectory.appendingPathComponent("fit-suite.yaml")
    static let tokens = [73, 259], a = 383, b = 239

    /// Per word and sense, the mean over prompts equals fit_scale's slope h_p for that sense
    /// alone, sum over the word's positions j of alpha[l, n-1, j] (E_a - E_b) . C(w)_l, an
    /// independent computation of the same quantity (weights summed first, then one
    /// projection). Tolerance 1e-6 + 1e-5 |value|: the two batch the prompts differently, so
    /// alpha may differ in the last float32 bits.
    @Test func equalsFitScaleSlopePerSense() throws {
        let model = try Fixture.model(), tokenizer = try Fixture.toyTokenizer()
        let suite = try PronounSuite.load(Self.suite)
        let table = try Localization.rankContextual(model: model, tokens: Self.tokens, a: Self.a, b: Self.b, suite: suite, tokenizer: tokenizer)
        #expect(table.senses.count == model.config.senses)
        for pair in zip(table.senses, table.senses.dropFirst()) { #expect(abs(pair.0.mean) >= abs(pair.1.mean)) }
        var worst = 0.0
        for (w, token) in Self.tokens.enumerated() {
            let prompts = suite.prompts.map { suite.ids(prompt: $0, word: [token], tokenizer: tokenizer) }
            for l in 0..<model.config.senses {
                let h = try FitScale.terms(model: model, prompts: prompts, token: token, senses: [l], a: Self.a, b: Self.b).h
                let mean = h.reduce(0, +) / Double(h.count)
                #expect(abs(table.perWord[w][l] - mean) <= 1e-6 + 1e-5 * abs(mean), "word \(token) sense \(l)")
                worst = max(worst, abs(table.perWord[w][l] - mean))
            }
        }
        #expect(table.perWord.joined().contains { $0 != 0 })
        print("contextual localization vs fit_scale slopes: max|d| \(worst)")
    }

    @Test func editFileSelectsTheTopContextualSense() throws {
        let model = try Fixture.model(), tokenizer = try Fixture.toyTokenizer()
        let table = try Localization.rankContextual(model: model, tokens: Self.tokens, a: Self.a, b: Self.b,
                                                    suite: try PronounSuite.load(Self.suite), tokenizer: tokenizer)
        let file = try parse("""
            schema: backpack-edit/1
            interventions:
              - tokens: [73, 259]
                senses: {localized: {pair: [{token: 383}, {token: 239}], top: 2, by: contextual, suite: fit-suite.yaml}}
                scale: 0
            """)
        let outcome = try Editor.apply([file], to: model, tokenizer: tokenizer)
        #expect(outcome.records[0].senses == table.senses.prefix(2).map(\.sense))
        #expect(outcome.records[0].localization == table.senses)
        // after the edit the chosen senses of the words contribute nothing at their positions
        let after = try Localization.rankContextual(model: outcome.model, tokens: Self.tokens, a: Self.a, b: Self.b,
                                                    suite: try PronounSuite.load(Self.suite), tokenizer: tokenizer)
        for l in outcome.records[0].senses { #expect(after.perWord.allSatisfy { $0[l] == 0 }) }
    }

    @Test(arguments: [
        ("senses: {localized: {pair: [he, she], by: contextual}}", "missing `suite:`"),
        ("senses: {localized: {pair: [he, she], by: sideways, suite: fit-suite.yaml}}", "expected static or contextual"),
        ("senses: {localized: {pair: [he, she], suite: fit-suite.yaml}}", "only used with `by: contextual`"),
    ])
    func badContextualSelectionsAreErrors(line: String, message: String) throws {
        do {
            _ = try parse("schema: backpack-edit/1\ninterventions:\n  - tokens: [73]\n    \(line)\n    scale: 0\n")
            Issue.record("no error for \(line)")
        } catch {
            #expect("\(error)".contains("inline.yaml:4:"), "\(error)")
            #expect("\(error)".contains(message), "\(error)")
        }
    }

    @Test func missingSuiteAndMissingTokenizerAreErrors() throws {
        let model = try Fixture.model()
        let missing = try parse("schema: backpack-edit/1\ninterventions:\n  - tokens: [73]\n    senses: {localized: {pair: [{token: 383}, {token: 239}], by: contextual, suite: nowhere.yaml}}\n    scale: 0\n")
        #expect(throws: EditError.self) { try Editor.plan([missing], config: model.config, tokenizer: try Fixture.toyTokenizer()) }
        let fine = try parse("schema: backpack-edit/1\ninterventions:\n  - tokens: [73]\n    senses: {localized: {pair: [{token: 383}, {token: 239}], by: contextual, suite: fit-suite.yaml}}\n    scale: 0\n")
        do { _ = try Editor.plan([fine], config: model.config, tokenizer: nil); Issue.record("no error without a tokenizer") } catch {
            #expect("\(error)".contains("needs a tokenizer"), "\(error)")
        }
    }
}
