import BackpackEditing
import BackpackModel
import BackpackModelFolder
import BackpackPrompts
import BackpackTokenizer
import Foundation
import Testing
import TestSupport

func parse(_ text: String, name: String = "inline.yaml") throws -> EditFile {
    try EditFile.parse(text, url: Fixture.editsDirectory.appendingPathComponent(name))
}

@Suite struct VocabularyFoldTests {
    /// A vocabulary-wide edit folded into final_mlp.c_proj equals the same edit applied to every
    /// token's senses through overrides.
    @Test(arguments: [
        "scale: 0.3",
        "project_out: {direction: {embedding_difference: [{token: 383}, {token: 239}]}, strength: 0.8}",
        "add: {direction: {embedding_difference: [{token: 383}, {token: 239}]}, amount: 2.5}",
        "replace_association: {remove: {token: 17}, add: {token: 483}}",
    ])
    func foldEqualsOverrides(operation: String) throws {
        let base = try Fixture.model()
        let folded = try Editor.apply([try parse("""
            schema: backpack-edit/1
            interventions:
              - scope: vocabulary
                senses: [1, 3]
                \(operation)
            """)], to: base, tokenizer: nil)
        #expect(folded.model.senseOverrides.isEmpty)
        let seqs = try Fixture.ids("seq3") + Fixture.ids("batch")
        let distinct = Array(Set(seqs.flatMap { $0 })).sorted()
        let perToken = try Editor.apply([try parse("""
            schema: backpack-edit/1
            interventions:
              - tokens: [\(distinct.map(String.init).joined(separator: ", "))]
                senses: [1, 3]
                \(operation)
            """)], to: base, tokenizer: nil)
        let a = try folded.model.forward(batch: seqs, options: .init(senses: true))
        let b = try perToken.model.forward(batch: seqs, options: .init(senses: true))
        let original = try base.forward(batch: seqs)
        var worstLogits: Float = 0, worstSenses: Float = 0, change: Float = 0
        for i in seqs.indices {
            worstLogits = max(worstLogits, Fixture.maxDiff(a[i].logits, b[i].logits))
            worstSenses = max(worstSenses, Fixture.maxDiff(a[i].senses ?? [], b[i].senses ?? []))
            change = max(change, Fixture.maxDiff(a[i].logits, original[i].logits))
        }
        print("vocabulary fold (\(operation)): max|d| folded vs overrides logits \(worstLogits), senses \(worstSenses); change vs base \(change)")
        #expect(worstLogits <= 1e-4)
        #expect(worstSenses <= 1e-5)
        #expect(change > 1e-3)
    }
}

@Suite struct ValidationTests {
    func error(_ text: String, tokenizer: GPT2Tokenizer? = nil, model: LanguageModel? = nil) throws -> String {
        do {
            let file = try parse(text)
            let m = try model ?? Fixture.model()
            try Editor.validate([file], config: m.config, tokenizer: tokenizer)
        } catch let e as EditError {
            print("validation: \(e)")
            return e.description
        }
        Issue.record("expected an error for:\n\(text)")
        return ""
    }

    let head = "schema: backpack-edit/1\ninterventions:\n"

    @Test func unknownKey() throws {
        let e = try error(head + "  - tokens: [1]\n    senses: [0]\n    scale: 0\n    colour: red\n")
        // `contains`: operations that other tests register (OperationRegistryTests) follow the built-in ones in the list
        #expect(e.contains("inline.yaml:6:5: intervention: unknown key 'colour'; expected one of name, words, tokens, scope, variants, pieces, senses, target, scale, project_out, replace_association, add, fit_scale, erase"))
    }

    @Test func senseOutOfRange() throws {
        let e = try error(head + "  - tokens: [1]\n    senses: [9]\n    scale: 0\n")
        #expect(e.contains("inline.yaml:4:14: sense 9 is out of range; expected 0..<4"))
    }

    @Test func strengthOutsideUnitInterval() throws {
        let e = try error(head + "  - tokens: [1]\n    senses: all\n    project_out: {direction: {embedding_difference: [{token: 1}, {token: 2}]}, strength: 1.5}\n")
        #expect(e.contains("inline.yaml:5:"))
        #expect(e.contains("strength 1.5: expected a number in [0, 1]"))
    }

    @Test func wrongType() throws {
        let e = try error(head + "  - tokens: [1]\n    senses: [0]\n    scale: high\n")
        #expect(e.contains("inline.yaml:5:12: scale: expected a finite number, found 'high'"))
        let s = try error(head + "  - tokens: [1]\n    senses: three\n    scale: 0\n")
        #expect(s.contains("inline.yaml:4:13: senses: expected a list of indices"))
    }

    @Test func tokenOutOfRange() throws {
        let e = try error(head + "  - tokens: [1, 9999]\n    senses: [0]\n    scale: 0\n")
        #expect(e.contains("inline.yaml:3:17: token id 9999 is out of range; expected 0..<512"))
    }

    @Test func operationsAreExclusive() throws {
        let e = try error(head + "  - tokens: [1]\n    senses: [0]\n    scale: 0\n    add: {direction: {embedding_difference: [{token: 1}, {token: 2}]}, amount: 1}\n")
        #expect(e.contains("inline.yaml:3:5: intervention: expected exactly one operation"))
    }

    @Test func schemaAndSyntax() throws {
        let e = try error("schema: backpack-edit/2\ninterventions: []\n")
        #expect(e.contains("inline.yaml:1:9: unsupported schema 'backpack-edit/2'"))
        let s = try error("schema: backpack-edit/1\ninterventions: [\n")
        #expect(s.contains("inline.yaml:") && s.contains("YAML syntax"))
    }

    @Test func unknownAndMultiTokenWords() throws {
        let tok = try Fixture.gpt2Tokenizer()
        let model = Fixture.smallGPT2Backpack()
        let e = try error(head + "  - words: [nurse, hairdresserx]\n    senses: [10]\n    scale: 0\n", tokenizer: tok, model: model)
        #expect(e.contains("inline.yaml:3:20: word 'hairdresserx': \" hairdresserx\" is"))
        #expect(e.contains("pieces: all"))
        let d = try error(head + "  - words: [nurse]\n    senses: [10]\n    project_out: {direction: {embedding_difference: [she, zzqxjw]}}\n",
                          tokenizer: tok, model: model)
        #expect(d.contains("inline.yaml:5:") && d.contains("'zzqxjw'"))
        let f = try error(head + "  - words: {file: lists/does-not-exist.txt}\n    senses: [10]\n    scale: 0\n", tokenizer: tok, model: model)
        #expect(f.contains("inline.yaml:3:19: cannot read the word list"))
    }

    @Test func piecesPolicies() throws {
        let tok = try Fixture.gpt2Tokenizer()
        let model = Fixture.smallGPT2Backpack()
        let macbook = tok.encode(" hairdresserx")
        #expect(macbook.count > 1)
        for (policy, expected) in [("all", macbook), ("first", [macbook[0]]), ("skip", [])] {
            let file = try parse(head + "  - words: [hairdresserx, nurse]\n    pieces: \(policy)\n    senses: all\n    scale: 0.5\n")
            let outcome = try Editor.apply([file], to: model, tokenizer: tok)
            #expect(outcome.records[0].tokens == expected + tok.encode(" nurse"), "\(policy)")
        }
    }
}

@Suite struct FitScaleTests {
    @Test func fittedScaleBeatsIdentityAndMatchesForwardPasses() throws {
        let base = try Fixture.model()
        let tok = try Fixture.toyTokenizer()
        let outcome = try Editor.apply([try Fixture.edit("fit-tiny")], to: base, tokenizer: tok)
        let fits = outcome.records[0].fitted
        #expect(fits.count == 2)
        let suite = try PronounSuite.load(Fixture.editsDirectory.appendingPathComponent("fit-suite.yaml"))
        let d = base.config.nEmbd
        for fit in fits {
            #expect(fit.objective <= fit.objectiveAtOne)
            // brute force: real forward passes with the override at the fitted s
            var v = base.senseVectors([fit.token])[fit.token] ?? []
            for i in (3 * d)..<(4 * d) { v[i] *= Float(fit.scale) }
            let edited = base.withSenseOverrides([fit.token: v])
            let prompts = suite.prompts.map { suite.ids(prompt: $0, word: [fit.token], tokenizer: tok) }
            #expect(prompts.allSatisfy { $0.contains(fit.token) })
            let outs = try edited.forward(batch: prompts, options: .init(logits: .last))
            let V = base.config.vocabSize
            var bias = 0.0
            for out in outs {
                let gap = Double(out.logits[383] - out.logits[239])
                _ = V
                bias += exp(abs(gap))
            }
            bias /= Double(outs.count)
            let objective = bias + abs(1 - fit.scale)
            let rel = abs(objective - fit.objective) / max(1, abs(objective))
            print("fit_scale token \(fit.token): s = \(fit.scale), objective \(fit.objective) (at s=1: \(fit.objectiveAtOne)), brute force \(objective), rel diff \(rel), bias \(fit.biasBefore) -> \(fit.biasAfter), \(fit.evaluations) evaluations")
            #expect(rel <= 1e-4)
        }
    }

    @Test func nelderMeadFindsAParabolaMinimum() {
        let (x, evals) = NelderMead.minimize1D(start: 1) { ($0 - 0.3) * ($0 - 0.3) + 2 }
        #expect(abs(x - 0.3) < 1e-3)
        #expect(evals < 200)
    }
}

@Suite struct LocalizationTests {
    @Test func ranksByMeanContribution() throws {
        let model = try Fixture.model()
        let table = Localization.rank(model: model, tokens: [73, 259, 421], a: 383, b: 239)
        #expect(table.senses.count == 4)
        #expect(table.perWord.count == 3)
        for pair in zip(table.senses, table.senses.dropFirst()) { #expect(abs(pair.0.mean) >= abs(pair.1.mean)) }
        // localized selection picks the top sense
        let file = try parse("schema: backpack-edit/1\ninterventions:\n  - tokens: [73, 259, 421]\n    senses: {localized: {pair: [{token: 383}, {token: 239}], top: 1}}\n    scale: 0\n")
        let outcome = try Editor.apply([file], to: model, tokenizer: nil)
        #expect(outcome.records[0].senses == [table.senses[0].sense])
    }
}

@Suite struct CheckpointTests {
    @Test func savedDirectoryReproducesTheEditedModel() throws {
        let dir = try ModelDirectory(TestPaths.tinyModel)
        let base = try dir.load()
        let files = [try Fixture.edit("nullspace"), try parse("""
            schema: backpack-edit/1
            interventions:
              - scope: vocabulary
                senses: [0]
                scale: 0.5
            """), try Fixture.edit("scale_half")]
        let outcome = try Editor.apply(files, to: base, tokenizer: nil)
        let tmp = try TestPaths.temporaryDirectory("edit")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let out = tmp.appendingPathComponent("edited")
        try EditedCheckpoint.write(outcome, files: files, base: dir, to: out, toolVersion: "test")
        let reloaded = try ModelDirectory(out).load()
        let seqs = try Fixture.ids("seq3") + Fixture.ids("batch")
        let a = try outcome.model.forward(batch: seqs), b = try reloaded.forward(batch: seqs)
        let worst = zip(a, b).map { Fixture.maxDiff($0.logits, $1.logits) }.max() ?? 0
        print("saved edited checkpoint: max|d| logits in-memory vs reloaded \(worst)")
        #expect(worst == 0)
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("edit-manifest.json"))) as? [String: Any]
        #expect((manifest?["edits"] as? [Any])?.count == 3)
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(ModelFolder.senseOverridesFile).path))
        // never into the input
        #expect(throws: (any Error).self) {
            try EditedCheckpoint.write(outcome, files: files, base: dir, to: TestPaths.tinyModel, toolVersion: "test")
        }
    }
}
