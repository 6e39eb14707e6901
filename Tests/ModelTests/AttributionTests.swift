import BackpackIO
import BackpackModel
import BackpackModelFolder
import BackpackTokenizer
import Foundation
import Testing
import TestSupport

/// The sense-by-position attribution of log p(a) - log p(b) against the project's PyTorch
/// Backpack (Tools/attribution/make_goldens.py -> golden/attribution.json) on the tiny fixture
/// and the demo model: every contribution alpha[l, n-1, j] (E_a - E_b) . C(x_j)_l within
/// 1e-4 + 1e-5 max|c| (float32 forward passes in both, float64 sums), and the identity
/// sum = log p(a) - log p(b) that makes the decomposition exact.
@Suite struct AttributionTests {
    static let goldenFile = "Tools/attribution/golden/attribution.json"

    struct Case { let ids: [Int]; let a: Int; let b: Int; let contributions: [[Double]]; let total: Double; let difference: Double; let text: String? }

    static func golden(_ model: String) throws -> (sha256: String, cases: [Case]) {
        let data = try Data(contentsOf: TestPaths.repoRoot.appendingPathComponent(goldenFile))
        let top = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let section = try #require(top[model] as? [String: Any], "\(goldenFile): no `\(model)` section")
        let cases = try #require(section["cases"] as? [[String: Any]])
        return (try #require(section["model_sha256"] as? String), try cases.map { c in
            Case(ids: try #require(c["ids"] as? [Int]), a: try #require(c["a"] as? Int), b: try #require(c["b"] as? Int),
                 contributions: try #require(c["contributions"] as? [[Double]]), total: try #require(c["total"] as? Double),
                 difference: try #require(c["logit_difference"] as? Double), text: c["text"] as? String)
        })
    }

    /// Every contribution within 1e-4 + 1e-5 max|c|; returns the largest deviation.
    func compare(_ got: SenseAttribution, _ want: Case, _ label: String) -> Double {
        #expect(got.ids == want.ids, "\(label)")
        #expect(got.contributions.count == want.contributions.count, "\(label): senses")
        let scale = want.contributions.joined().reduce(0) { max($0, abs($1)) }
        let tolerance = 1e-4 + 1e-5 * scale
        var worst = 0.0
        for (g, w) in zip(got.contributions, want.contributions) {
            #expect(g.count == w.count, "\(label): positions")
            for (x, y) in zip(g, w) { worst = max(worst, abs(x - y)) }
        }
        #expect(worst <= tolerance, "\(label): max |contribution - PyTorch| \(worst) > \(tolerance)")
        #expect(abs(got.logitDifference - want.difference) <= tolerance, "\(label): logit difference \(got.logitDifference) vs \(want.difference)")
        return worst
    }

    /// sum of the contributions = logit(a) - logit(b) from the forward pass, which is
    /// log p(a) - log p(b) from its log-softmax. Both sides are float32 computations of the same
    /// sum in different orders: the tolerance is 1e-5 of the absolute mass plus 1e-5.
    func checkIdentity(_ got: SenseAttribution, logits row: ArraySlice<Float>, _ label: String) {
        let values = row.map(Double.init)
        let top = values.max()!
        let logSumExp = top + log(values.reduce(0) { $0 + exp($1 - top) })
        let logRatio = (values[got.a] - logSumExp) - (values[got.b] - logSumExp)
        let tolerance = 1e-5 + 1e-5 * got.absoluteMass
        #expect(abs(got.total - logRatio) <= tolerance, "\(label): sum \(got.total) vs log p(a) - log p(b) \(logRatio)")
        #expect(abs(got.total - got.logitDifference) <= tolerance, "\(label): sum \(got.total) vs logit difference \(got.logitDifference)")
    }

    @Test(arguments: ["tiny", "demo"])
    func matchesPyTorch(model name: String) throws {
        let (sha, cases) = try Self.golden(name)
        let directory = name == "tiny" ? TestPaths.tinyModel : TestPaths.demoModel
        try #require(try FileDigest.sha256(directory.appendingPathComponent("model.safetensors")) == sha,
                     "\(Self.goldenFile) was made from another \(name) model.safetensors; rerun its command")
        let model = try ModelDirectory(directory).load()
        let tokenizer = name == "demo" ? try ModelDirectory(directory).tokenizer() : nil
        #expect(!cases.isEmpty)
        for c in cases {
            if let text = c.text, let tokenizer { #expect(tokenizer.encode(text) == c.ids, "tokenization of '\(text)'") }
            let got = try model.attribution(c.ids, a: c.a, b: c.b)
            let worst = compare(got, c, "\(name) \(c.text ?? "\(c.ids)")")
            let out = try model.forward(c.ids, options: .init(logits: .last))
            checkIdentity(got, logits: try #require(out.logits(at: c.ids.count - 1, vocabulary: model.config.vocabSize)), name)
            print("attribution \(name) \(c.text ?? "\(c.ids.count) tokens"): max|d| \(worst), sum \(got.total), logit difference \(got.logitDifference) (PyTorch \(c.difference))")
        }
    }

    /// The numbers issue 21 quotes from the published PyTorch code on the demo model.
    @Test func demoReproducesTheIssue() throws {
        let dir = try ModelDirectory(TestPaths.demoModel)
        let model = try dir.load()
        let tokenizer = try #require(try dir.tokenizer())
        let he = tokenizer.encode(" he"), she = tokenizer.encode(" she")
        try #require(he.count == 1 && she.count == 1)
        for (text, total, positions) in [("My nurse said that", -0.86, [-0.58, -0.76, -0.08, 0.55]),
                                         ("The carpenter said that", 1.43, [0.12, 0.82, -0.04, 0.54])] {
            let got = try model.attribution(tokenizer.encode(text), a: he[0], b: she[0])
            #expect(abs(got.total - total) < 0.005, "\(text): \(got.total)")
            #expect(got.byPosition.count == positions.count)
            for (x, y) in zip(got.byPosition, positions) { #expect(abs(x - y) < 0.005, "\(text): \(got.byPosition)") }
        }
    }

    /// Word-level sense edits are honoured: a sense scaled to zero contributes nothing, the other
    /// senses of the word and every other position are unchanged (same alpha), and the sum is
    /// the edited model's logit difference.
    @Test func senseOverridesAreHonoured() throws {
        let base = try ModelDirectory(TestPaths.tinyModel).load()
        let ids = [17, 260, 33, 260, 5], a = 45, b = 46, word = 260, zeroed = 2
        let (k, d) = (base.config.senses, base.config.nEmbd)
        var senses = try #require(base.senseVectors([word])[word])
        for e in 0..<d { senses[zeroed * d + e] = 0 }
        let edited = base.withSenseOverrides([word: senses])
        let before = try base.attribution(ids, a: a, b: b)
        let after = try edited.attributions(base.contextualize([ids]), a: a, b: b)[0]
        for l in 0..<k {
            for j in ids.indices {
                if ids[j] == word && l == zeroed {
                    #expect(after.contributions[l][j] == 0)
                    #expect(before.contributions[l][j] != 0)
                } else {
                    #expect(abs(after.contributions[l][j] - before.contributions[l][j]) <= 1e-12)
                }
            }
        }
        let out = try edited.forward(ids, options: .init(logits: .last))
        checkIdentity(after, logits: try #require(out.logits(at: ids.count - 1, vocabulary: base.config.vocabSize)), "edited")
        #expect(abs(after.total - before.total) > 1e-6)
        let split = after.split(at: [word])
        #expect(abs(split.noun.reduce(0, +) + split.context.reduce(0, +) - after.total) <= 1e-12)
        #expect(split.noun[zeroed] == 0)
    }

    @Test func plainGPT2IsRefused() throws {
        let model = try ModelDirectory(TestPaths.repoRoot.appendingPathComponent("Tests/ModelTests/Fixtures/gpt2-tiny")).load()
        #expect(throws: ModelError.self) { try model.attribution([1, 2, 3], a: 4, b: 5) }
        do { _ = try model.attribution([1, 2, 3], a: 4, b: 5) } catch {
            #expect("\(error)".contains("plain GPT-2"))
        }
    }
}
