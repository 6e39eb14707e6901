import BackpackEditing
import BackpackModel
import BackpackModelFolder
import BackpackTokenizer
import Foundation
import Testing
import TestSupport
@testable import BackpackEvaluation
import BackpackPrompts

/// fit_scale and the pronoun-bias suite read one pronoun-suite definition and build prompts with
/// one function: the same prompt is the same ids in both, and equals encoding the filled-in text
/// (what the paper's script does) for every shipped prompt and single-token noun.
@Suite struct PromptBuilderTests {
    static let tokenizers: [(String, Result<GPT2Tokenizer, Error>)] = [
        ("demo", Result { try GPT2Tokenizer.load(from: TestPaths.demoModel) }),
        ("gpt2", Result { try GPT2Tokenizer.builtinGPT2() }),
    ]

    @Test(arguments: ["pronoun-bias", "pronoun-fit"], [0, 1])
    func splicedIdsEqualEncodedText(suiteName: String, tokenizerIndex: Int) throws {
        let (name, loaded) = Self.tokenizers[tokenizerIndex]
        let tokenizer = try loaded.get()
        let evaluations = TestPaths.repoRoot.appendingPathComponent("Evaluations")
        let suite = try Suite.resolve(suiteName, evaluationsDirectory: evaluations)
        guard let config = suite.config as? PronounBiasConfig else { Issue.record("\(suiteName) is not a pronoun suite"); return }
        // fit_scale's reader of the same file
        let fitDefinition = try PronounSuite.load(suite.file)
        #expect(fitDefinition.prompts == config.prompts && fitDefinition.placeholder == config.placeholder)
        var checked = 0
        for noun in config.nouns {
            let id = tokenizer.encode(" " + noun)
            guard id.count == 1 else { continue }
            for prompt in config.prompts {
                let spliced = fitDefinition.ids(prompt: prompt, word: id, tokenizer: tokenizer)
                let text = tokenizer.encode(config.definition.text(prompt: prompt, noun: noun))
                #expect(spliced == text, "\(name) \(suiteName): '\(prompt)' with '\(noun)'")
                checked += 1
            }
        }
        print("prompt builder: \(checked) prompts of \(suiteName) identical both ways with the \(name) tokenizer")
        #expect(checked >= 100)
        // The prepared suite's ids are the builder's.
        let model = BackpackConfig.backpackGPT2
        if name == "gpt2" {
            let prepared = try #require(try suite.prepare(tokenizer: tokenizer, config: model) as? PronounBiasSuite)
            for (i, prompt) in prepared.prompts.enumerated() {
                #expect(prepared.tokenized[i] == tokenizer.encode(prompt))
            }
        }
    }
}
