import BackpackModel
import BackpackTokenizer
import Foundation
import Testing
import TestSupport
@testable import BackpackEvaluation

/// lambada and wikitext (lm-evaluation-harness's definitions) on small files written here,
/// checked against log-probabilities from LanguageModel.forward directly.
@Suite struct HarnessTests {
    /// Sum of log p(continuation | context) and greedy-match from one plain forward pass.
    static func direct(_ model: LanguageModel, context: [Int], continuation: [Int]) throws -> (ll: Double, greedy: Bool) {
        let input = Array((context + continuation).dropLast())
        let out = try model.forward(input, options: ForwardOptions(logits: .all))
        let V = model.config.vocabSize
        var ll = 0.0, greedy = true
        for (k, target) in continuation.enumerated() {
            let p = context.count - 1 + k
            let row = Array(out.logits[(p * V)..<((p + 1) * V)]).map(Double.init)
            let m = row.max() ?? 0
            ll += row[target] - (m + log(row.reduce(0.0) { $0 + exp($1 - m) }))
            if row.firstIndex(of: m) != target { greedy = false }
        }
        return (ll, greedy)
    }

    @Test func rollingWindowsAsTheHarness() {
        // get_rolling_token_windows(1...10, prefix 0, max_seq_len 4, context_len 1) + make_disjoint_window, by hand
        let w = HarnessScorer.rollingWindows(Array(1...10), prefix: 0, maxLength: 4)
        #expect(w.map(\.context) == [[0], [4], [6, 7, 8]])
        #expect(w.map(\.continuation) == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]])
        // every model input (context + continuation minus the last token) is max_length long
        #expect(w.allSatisfy { $0.context.count + $0.continuation.count - 1 == 4 })
        #expect(HarnessScorer.rollingWindows([7], prefix: 0, maxLength: 4).map(\.continuation) == [[7]])
        #expect(HarnessScorer.rollingWindows([], prefix: 0, maxLength: 4).isEmpty)
    }

    @Test func wikitextPreprocessing() {
        #expect(WikitextSuite.detokenize("a @-@ b @,@ c @.@ d , e ( f ) the dogs ' bone = = Head = =") == "a-b,c.d, e (f) the dogs' bone == Head ==")
        #expect(WikitextSuite.detokenize("\" quoted \" and it 's") == "\"quoted\" and it's")
        // len(re.split(r"\s+", s)) counts the empty pieces at the ends
        #expect(WikitextSuite.wordCount(" a  b\n") == 4)
        #expect(WikitextSuite.wordCount("a b") == 2)
        let text = " \n = One = \n \n Alpha beta . \n = = Sub = = \n gamma \n = Two = \n delta \n"
        let pages = WikitextSuite.pages(text)
        #expect(pages.count == 2)
        #expect(pages[0] == " = One = \n \n Alpha beta . \n = = Sub = = \n gamma ")
        #expect(pages[1] == " = Two = \n delta \n")
    }

    @Test func lambadaMatchesDirectForward() throws {
        let (model, tokenizer) = try ModelEvalTests.smallRandomModel()
        let tmp = try TestPaths.temporaryDirectory("lambada")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let docs = ["the man was with the car and then he drove", "She said that it was late", "one"]
        let jsonl = try docs.map { String(decoding: try JSONSerialization.data(withJSONObject: ["text": $0]), as: UTF8.self) }.joined(separator: "\n") + "\n"
        try FileManager.default.createDirectory(at: tmp.appendingPathComponent("lambada"), withIntermediateDirectories: true)
        try jsonl.write(to: tmp.appendingPathComponent("lambada/lambada_test.jsonl"), atomically: true, encoding: .utf8)
        let suite = try Suite.load(TestPaths.repoRoot.appendingPathComponent("Evaluations/lambada.yaml"))
        // the shipped suite pins the real file's SHA-256: a different file is refused, naming it
        #expect(throws: SuiteError.self) { try suite.prepare(tokenizer: tokenizer, config: model.config, locations: DataLocations(dataDirectory: tmp)) }
        let yaml = tmp.appendingPathComponent("lambada.yaml")
        try "suite: lambada\nversion: 1\nkind: lambada\ndata_file: lambada/lambada_test.jsonl\nbatch_tokens: 8\n".write(to: yaml, atomically: true, encoding: .utf8)
        let prepared = try #require(try Suite.load(yaml).prepare(tokenizer: tokenizer, config: model.config, locations: DataLocations(dataDirectory: tmp)) as? LambadaSuite)
        #expect(prepared.contexts == ["the man was with the car and then he", "She said that it was", ""])
        #expect(prepared.targets == [" drove", " late", " one"])
        let r = try prepared.evaluate(model) { _ in }
        guard case .doubles(let ll)? = r.dataset("loglikelihood"), case .ints(let greedy)? = r.dataset("is_greedy") else { Issue.record("missing datasets"); return }
        var want: [(ll: Double, greedy: Bool)] = []
        for (c, t) in zip(prepared.contexts, prepared.targets) {
            let ctx = c.isEmpty ? [try #require(tokenizer.endOfTextID)] : tokenizer.encode(c)
            want.append(try Self.direct(model, context: ctx, continuation: tokenizer.encode(t)))
        }
        // float32 logits, batched vs one sequence: tolerance 1e-4 absolute on a sum of a few log-probs
        for i in want.indices {
            #expect(abs(ll[i] - want[i].ll) < 1e-4)
            #expect(greedy[i] == (want[i].greedy ? 1 : 0))
        }
        let ppl = try #require(r["perplexity"]?.doubleValue), acc = try #require(r["acc"]?.doubleValue)
        #expect(abs(ppl - exp(-want.map(\.ll).reduce(0, +) / 3)) < 1e-4 * ppl)
        #expect(acc == Double(want.filter(\.greedy).count) / 3)
        #expect(r.dataSHA256.count == 64)
    }

    @Test func wikitextMatchesDirectForward() throws {
        let (model, tokenizer) = try ModelEvalTests.smallRandomModel()
        let tmp = try TestPaths.temporaryDirectory("wikitext")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let text = " \n = Robert Boulter = \n \n Robert Boulter is an English film , television and theatre actor . He had a guest @-@ starring role in 2000 . \n \n = = Career = = \n He appeared in ( the play ) Herons . \n = Second page = \n \n It was 3 @.@ 5 metres long . \n"
        try text.write(to: tmp.appendingPathComponent("wiki.test.raw"), atomically: true, encoding: .utf8)
        let yaml = tmp.appendingPathComponent("w.yaml")
        try "suite: w\nversion: 1\nkind: wikitext\ndata_file: wiki.test.raw\nmax_length: 8\nbatch_tokens: 20\n".write(to: yaml, atomically: true, encoding: .utf8)
        let prepared = try #require(try Suite.load(yaml).prepare(tokenizer: tokenizer, config: model.config, locations: DataLocations(dataDirectory: tmp)) as? WikitextSuite)
        #expect(prepared.pages.count == 2)
        let r = try prepared.evaluate(model) { _ in }
        let eot = try #require(tokenizer.endOfTextID)
        var total = 0.0, words = 0, bytes = 0
        for page in prepared.pages {
            // rolling windows by hand: every token once, each window's model input 8 tokens or the whole page
            let ids = tokenizer.encode(WikitextSuite.detokenize(page))
            #expect(ids.count > 8)
            for w in HarnessScorer.rollingWindows(ids, prefix: eot, maxLength: 8) {
                total += try Self.direct(model, context: w.context, continuation: w.continuation).ll
            }
            words += page.split(whereSeparator: { $0 == " " || $0 == "\n" }).count + 1   // whitespace-run count + 1 (runs between words, plus the ends)
            bytes += page.utf8.count
        }
        // each page here starts with " " and ends with whitespace: re.split gives one empty piece at each end,
        // so the word count is (non-empty pieces) + 2; the split above counts pieces + 1
        words += prepared.pages.count
        #expect(r["n_words"] == .int(words) && r["n_bytes"] == .int(bytes))
        let sum = try #require(r["loglikelihood_sum"]?.doubleValue)
        #expect(abs(sum - total) < 1e-3)   // float32 logits over ~60 tokens: 1e-3 absolute
        #expect(abs(try #require(r["word_perplexity"]?.doubleValue) - exp(-total / Double(words))) < 1e-4 * exp(-total / Double(words)))
        #expect(abs(try #require(r["bits_per_byte"]?.doubleValue) - (-total / (Double(bytes) * log(2)))) < 1e-4)
        // one window as long as the model allows: the same sum as one pass per page after <|endoftext|>
        let long = tmp.appendingPathComponent("w2.yaml")
        try "suite: w2\nversion: 1\nkind: wikitext\ndata_file: wiki.test.raw\n".write(to: long, atomically: true, encoding: .utf8)
        let r2 = try Suite.load(long).prepare(tokenizer: tokenizer, config: model.config, locations: DataLocations(dataDirectory: tmp)).evaluate(model) { _ in }
        var whole = 0.0
        for page in prepared.pages { whole += try Self.direct(model, context: [eot], continuation: tokenizer.encode(WikitextSuite.detokenize(page))).ll }
        #expect(abs(try #require(r2["loglikelihood_sum"]?.doubleValue) - whole) < 1e-3)
    }
}
