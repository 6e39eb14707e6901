import BackpackCheckpoint
@testable import BackpackEditing
import BackpackModel
import BackpackIO
import Foundation
import Testing
import TestSupport

/// `erase` against EleutherAI's concept-erasure 0.2.4 (Tests/Fixtures/leace, written by
/// Tools/leace/make_goldens.py through the project's PyTorch Backpack).
@Suite struct ConceptErasureGoldenTests {
    static let folder = TestPaths.fixtures.appendingPathComponent("leace")

    struct Case {
        let name, model, edit, editSHA, modelSHA, scope: String
        let senses: [Int]
        let fitTokens: [Int]
        let fitLabels: [Double]
        let prompts: Int
        let varianceRemoved: [Int: Double]
        let logitChange: Double
    }

    static func manifest() throws -> [String: Any] {
        let data = try Data(contentsOf: folder.appendingPathComponent("goldens.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func cases() throws -> [Case] {
        let list = try #require(try manifest()["cases"] as? [[String: Any]])
        return try list.map { c in
            let removed = try #require(c["variance_removed"] as? [String: Double])
            return Case(name: try #require(c["name"] as? String), model: try #require(c["model"] as? String),
                        edit: try #require(c["edit"] as? String), editSHA: try #require(c["edit_sha256"] as? String),
                        modelSHA: try #require(c["model_sha256"] as? String), scope: try #require(c["scope"] as? String),
                        senses: try #require(c["senses"] as? [Int]), fitTokens: try #require(c["fit_tokens"] as? [Int]),
                        fitLabels: try #require(c["fit_labels"] as? [Double]), prompts: try #require(c["prompts"] as? Int),
                        varianceRemoved: Dictionary(uniqueKeysWithValues: removed.map { (Int($0.key) ?? -1, $0.value) }),
                        logitChange: try #require(c["max_abs_logit_change"] as? Double))
        }
    }

    static var goldens: SafetensorsFile { get throws { try SafetensorsFile(url: folder.appendingPathComponent("goldens.safetensors")) } }

    static let caseNames = ["tiny-leace-vocabulary", "tiny-orth-tokens", "tiny-leace-localized-vocabulary",
                            "demo-leace-gender", "demo-leace-professions"]

    @Test func goldensListTheCasesTested() throws {
        #expect(try Self.cases().map(\.name) == Self.caseNames)
    }

    /// The erased model's logits equal concept-erasure's through the PyTorch Backpack within
    /// 1e-3 * max|logit| (float32 model, float64 fits on both sides); the senses, fit words and
    /// the share of variance removed are the reference's too.
    @Test(arguments: caseNames)
    func erasedLogitsMatchConceptErasure(name: String) throws {
        let c = try #require(try Self.cases().first { $0.name == name })
        let root = TestPaths.repoRoot
        let editURL = root.appendingPathComponent(c.edit), modelURL = root.appendingPathComponent(c.model)
        // a golden made from another edit file or model is refused, not compared
        #expect(try FileDigest.sha256(editURL) == c.editSHA, "\(c.edit) changed since the goldens were made: rerun Tools/leace/make_goldens.py")
        #expect(try FileDigest.sha256(modelURL.appendingPathComponent("model.safetensors")) == c.modelSHA)
        let dir = try ModelDirectory(modelURL)
        let outcome = try Editor.apply([try EditFile.load(editURL)], to: try dir.load(), tokenizer: try dir.tokenizer())
        let record = try #require(outcome.records.first)
        #expect(record.senses == c.senses)
        #expect(record.scope.rawValue == c.scope)
        #expect(record.erasure.map(\.sense) == c.senses)
        for fit in record.erasure {
            let reference = try #require(c.varianceRemoved[fit.sense])
            #expect(abs(fit.varianceRemoved - reference) <= 1e-6, "sense \(fit.sense): variance removed \(fit.varianceRemoved) vs \(reference)")
            #expect(fit.rank == 1 && fit.samples == c.fitTokens.count)
        }
        #expect(try Self.goldens.floats("\(name).labels").map(Double.init) == c.fitLabels)
        var worst: Float = 0, scale: Float = 0
        for p in 0..<c.prompts {
            let ids = try Self.goldens.ints("\(name).prompt\(p).input_ids")
            let reference = try Self.goldens.floats("\(name).prompt\(p).logits")
            let logits = try outcome.model.forward(ids, options: .init(logits: .all)).logits
            #expect(logits.count == reference.count)
            worst = max(worst, Fixture.maxDiff(logits, reference))
            scale = max(scale, reference.reduce(0) { max($0, abs($1)) })
        }
        print("erase golden \(name): senses \(c.senses), max|d| logits \(worst) (tol 1e-3 * max|logit| = \(1e-3 * scale)); the edit moves logits by \(c.logitChange)")
        #expect(worst <= 1e-3 * scale)
        // the comparison could fail: the edit moves the logits by far more than the tolerance
        #expect(c.logitChange > 1e-2 * Double(scale))
    }

    /// The Swift fitter on the reference's own float32 inputs reproduces its eraser: mean and
    /// M = proj_left proj_right within 1e-6 of their largest entry (the goldens' float64 values are
    /// read as float32).
    @Test func fitterMatchesConceptErasureOnTheSameInputs() throws {
        let g = try Self.goldens
        var checked = 0
        func compare(_ label: String, _ x: [Float], d: Int, labels: [Double], method: ErasureMethod, key: String) throws {
            let rows = (0..<(x.count / d)).map { i in x[(i * d)..<((i + 1) * d)].map(Double.init) }
            let eraser = try ConceptErasure.fit(rows, labels: labels, method: method)
            let mean = try g.floats("\(key).mean").map(Double.init), m = try g.floats("\(key).correction").map(Double.init)
            let dm = zip(eraser.mean, mean).reduce(0.0) { max($0, abs($1.0 - $1.1)) }
            let dM = zip(eraser.correction, m).reduce(0.0) { max($0, abs($1.0 - $1.1)) }
            let sm = mean.reduce(0.0) { max($0, abs($1)) }, sM = m.reduce(0.0) { max($0, abs($1)) }
            print("erase fit \(label) (\(method.rawValue), n \(rows.count), d \(d)): max|d| mean \(dm), M \(dM) (max|M| \(sM))")
            #expect(eraser.correction.count == m.count && eraser.mean.count == mean.count)
            #expect(dm <= 1e-6 * max(sm, 1e-3), "\(label) mean")
            #expect(dM <= 1e-6 * sM, "\(label) M")
            #expect(sM > 1e-3, "\(label): an eraser that changes nothing proves nothing")
            checked += 1
        }
        for c in try Self.cases() {
            let labels = try g.floats("\(c.name).labels").map(Double.init)
            let method: ErasureMethod = c.name.contains("orth") ? .orth : .leace
            for l in c.senses {
                let x = try g.floats("\(c.name).sense\(l).x")
                try compare("\(c.name) sense \(l)", x, d: x.count / labels.count, labels: labels, method: method, key: "\(c.name).sense\(l)")
            }
        }
        let synthetic = try #require(try Self.manifest()["synthetic"] as? [String: Any])
        let d = try #require(synthetic["d"] as? Int)
        for method in ErasureMethod.allCases {
            try compare("synthetic", try g.floats("synthetic.x"), d: d, labels: try g.floats("synthetic.labels").map(Double.init),
                        method: method, key: "synthetic.\(method.rawValue)")
        }
        #expect(checked == 9 + 2)   // nine senses of five cases, two synthetic fits
    }
}

@Suite struct ConceptErasureTests {
    /// Two classes with different means in a few directions, correlated noise.
    static func data(n: Int, d: Int, seed: UInt64) -> ([[Double]], [Double]) {
        var state = seed
        func uniform() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        func normal() -> Double { (-2 * log(max(uniform(), 1e-300))).squareRoot() * cos(2 * .pi * uniform()) }
        let shift = (0..<d).map { _ in normal() }
        var x: [[Double]] = [], z: [Double] = []
        for i in 0..<n {
            let label = Double(i % 2)
            let e = (0..<d).map { _ in normal() }
            x.append((0..<d).map { j in e[j] + 0.5 * e[(j + 1) % d] + label * shift[j] })
            z.append(label)
        }
        return (x, z)
    }

    /// LEACE's guarantee: after erasure the two classes have the same mean (no linear function
    /// of x' predicts z better than a constant), and the overall mean is kept. For both methods.
    @Test(arguments: ErasureMethod.allCases)
    func classMeansCoincideAfterErasure(method: ErasureMethod) throws {
        for (n, d) in [(200, 8), (20, 32)] {   // more and fewer samples than dimensions
            let (x, z) = Self.data(n: n, d: d, seed: 42)
            let eraser = try ConceptErasure.fit(x, labels: z, method: method)
            let erased = x.map { eraser.apply($0) }
            func classMean(_ rows: [[Double]], _ label: Double) -> [Double] {
                let picked = zip(rows, z).filter { $0.1 == label }.map(\.0)
                return (0..<d).map { j in picked.reduce(0) { $0 + $1[j] } / Double(picked.count) }
            }
            let before = zip(classMean(x, 1), classMean(x, 0)).reduce(0.0) { max($0, abs($1.0 - $1.1)) }
            let after = zip(classMean(erased, 1), classMean(erased, 0)).reduce(0.0) { max($0, abs($1.0 - $1.1)) }
            let meanShift = (0..<d).reduce(0.0) { m, j in
                max(m, abs(erased.reduce(0) { $0 + $1[j] } / Double(n) - x.reduce(0) { $0 + $1[j] } / Double(n)))
            }
            print("erase \(method.rawValue) n \(n) d \(d): max|class-mean difference| \(before) -> \(after), rank \(eraser.rank), variance removed \(eraser.varianceRemoved)")
            #expect(eraser.rank == 1)
            #expect(before > 0.5)
            #expect(after <= 1e-9 * before)
            #expect(meanShift <= 1e-12)
            #expect(eraser.varianceRemoved > 0 && eraser.varianceRemoved < 1)
        }
    }

    /// Labels that say nothing (the same mean in both classes) leave nothing to erase: rank 0,
    /// the identity. Flipping every label gives the same eraser.
    @Test func uninformativeLabelsEraseNothingAndFlippedLabelsGiveTheSameEraser() throws {
        let x: [[Double]] = [[1, 2], [1, 2], [3, -1], [3, -1]]
        let eraser = try ConceptErasure.fit(x, labels: [1, 0, 1, 0])
        #expect(eraser.rank == 0)
        #expect(eraser.correction.allSatisfy { $0 == 0 })
        #expect(eraser.apply([5, 7]) == [5, 7])
        let (data, z) = Self.data(n: 50, d: 6, seed: 3)
        let a = try ConceptErasure.fit(data, labels: z), b = try ConceptErasure.fit(data, labels: z.map { 1 - $0 })
        #expect(zip(a.correction, b.correction).allSatisfy { abs($0 - $1) <= 1e-12 })
    }

    /// LAPACK's dsyevd through the OpenBLAS shim (LinearAlgebra's, the module's one
    /// eigensolver): A v = lambda v, ascending, orthonormal.
    @Test func symmetricEigendecomposition() throws {
        let a: [Double] = [4, 1, 2, 1, 3, 0, 2, 0, 5]
        let (values, vectors) = try LinearAlgebra.symmetricEigen(a, n: 3)
        #expect(values == values.sorted())
        for j in 0..<3 {
            let v = (0..<3).map { vectors[$0 * 3 + j] }
            let av = ConceptErasure.matvec(a, v, 3)
            #expect(zip(av, v).allSatisfy { abs($0 - values[j] * $1) <= 1e-12 })
            #expect(abs(v.reduce(0) { $0 + $1 * $1 } - 1) <= 1e-12)
        }
        #expect(abs(values.reduce(0, +) - 12) <= 1e-12)   // the trace
    }

    /// The covariance-trace constraint (never reached under the defaults: see constrainTrace)
    /// on an oblique projection that raises the trace: the mixture's trace is exactly tr(Sigma).
    @Test func traceConstraintMixesToTheOriginalTrace() throws {
        let d = 3
        let sigma: [Double] = [2, 0.5, 0, 0.5, 1, 0.2, 0, 0.2, 0.5]
        // P = I - a b^T with b . a = 1 (a projection), a far from b: it stretches the trace
        let u: [Double] = [1, 0, 0], a: [Double] = [1, 3, 0], b: [Double] = [1, 0, 0]
        var p = ConceptErasure.identity(d)
        for i in 0..<d { for j in 0..<d { p[i * d + j] -= a[i] * b[j] } }
        #expect(ConceptErasure.traceProduct(p, sigma, p, d) > ConceptErasure.trace(sigma, d))
        let mixed = try #require(try ConceptErasure.constrainTrace(p, u: u, sigma: sigma, d: d))
        #expect(mixed.alpha > 0 && mixed.alpha < 1)
        #expect(abs(ConceptErasure.traceProduct(mixed.p, sigma, mixed.p, d) - ConceptErasure.trace(sigma, d)) <= 1e-12)
        // an orthogonal projection never raises it
        var q = ConceptErasure.identity(d)
        q[0] = 0
        #expect(try ConceptErasure.constrainTrace(q, u: u, sigma: sigma, d: d) == nil)
    }

    /// A vocabulary-wide erase folded into final_mlp.c_proj gives every token the eraser's output,
    /// and a word-level one only the listed tokens.
    @Test func vocabularyFoldAndWordOverridesApplyTheEraser() throws {
        let base = try Fixture.model()
        let d = base.config.nEmbd
        let pairs = (0..<8).map { "[{token: \(10 + 2 * $0)}, {token: \(11 + 2 * $0)}]" }.joined(separator: ", ")
        for (scope, edited) in [("scope: vocabulary", [7, 300, 511]), ("tokens: [7, 300]", [7, 300])] {
            let text = "schema: backpack-edit/1\ninterventions:\n  - \(scope)\n    senses: [2]\n    erase: {pairs: [\(pairs)]}\n"
            let file = try EditFile.parse(text, url: URL(fileURLWithPath: "/tmp/erase.yaml"))
            let model = try Editor.apply([file], to: base, tokenizer: nil).model
            let fitIDs = (0..<16).map { 10 + $0 }
            let fitVectors = base.senseVectors(fitIDs)
            let x = try fitIDs.map { id in try #require(fitVectors[id])[(2 * d)..<(3 * d)].map(Double.init) }
            let eraser = try ConceptErasure.fit(x, labels: (0..<16).map { $0 % 2 == 0 ? 1 : 0 })
            for id in [7, 300, 511] {
                let before = try #require(base.senseVectors([id])[id]), after = try #require(model.senseVectors([id])[id])
                let expected = edited.contains(id) ? eraser.apply(before[(2 * d)..<(3 * d)].map(Double.init)).map(Float.init)
                    : Array(before[(2 * d)..<(3 * d)])
                #expect(Fixture.maxDiff(after[(2 * d)..<(3 * d)], expected) <= 2e-5, "\(scope) token \(id)")
                // the other senses are untouched
                #expect(Fixture.maxDiff(after[0..<(2 * d)], before[0..<(2 * d)]) <= 1e-5)
            }
        }
    }
}

/// Edit-file errors of `erase`, each at file:line:column.
@Suite struct EraseEditFileErrorTests {
    func error(_ text: String, tokenizer: Bool = false) throws -> EditError {
        let url = URL(fileURLWithPath: "/tmp/erase-errors.yaml")
        let config = try ModelDirectory(TestPaths.tinyModel).config
        do {
            let file = try EditFile.parse("schema: backpack-edit/1\ninterventions:\n" + text, url: url)
            _ = try Editor.plan([file], config: config, tokenizer: tokenizer ? try Fixture.toyTokenizer() : nil)
        } catch let e as EditError {
            return e
        }
        Issue.record("expected an error for:\n\(text)")
        return EditError(file: "none", "no error")
    }

    @Test func onePairIsRefusedAtThePairs() throws {
        let e = try error("  - scope: vocabulary\n    senses: [1]\n    erase: {pairs: [[{token: 1}, {token: 2}]]}\n")
        #expect(e.description.hasPrefix("/tmp/erase-errors.yaml:5:20: erase pairs: one pair"), "\(e)")
    }

    @Test func aTokenOutsideTheVocabularyIsRefusedAtTheToken() throws {
        let e = try error("  - scope: vocabulary\n    senses: [1]\n    erase:\n      pairs: [[{token: 1}, {token: 2}], [{token: 3}, {token: 900}]]\n")
        #expect(e.description.hasPrefix("/tmp/erase-errors.yaml:6:62: token id 900 is out of range"), "\(e)")
    }

    @Test func noSingleTokenWordOnASideIsRefused() throws {
        // the toy tokenizer's vocabulary has no single token for these long words
        let e = try error("  - scope: vocabulary\n    senses: [1]\n    erase:\n      pairs: [[zyzzyvaxq, he], [qwertyzxcv, she]]\n",
                          tokenizer: true)
        #expect(e.description.hasPrefix("/tmp/erase-errors.yaml:6:14: erase pairs: no first word of any pair is a single token"), "\(e)")
    }

    @Test func wordsNeedATokenizer() throws {
        let e = try error("  - scope: vocabulary\n    senses: [1]\n    erase: {pairs: [[she, he], [her, his]]}\n")
        #expect(e.description.hasPrefix("/tmp/erase-errors.yaml:5:22: erase pair word 'she': words need a tokenizer"), "\(e)")
    }

    @Test func unknownMethodAndMissingPairs() throws {
        let m = try error("  - scope: vocabulary\n    senses: [1]\n    erase: {method: lda, pairs: [[{token: 1}, {token: 2}], [{token: 3}, {token: 4}]]}\n")
        #expect(m.description.hasPrefix("/tmp/erase-errors.yaml:5:21: erase method: unknown method 'lda'; expected leace or orth"), "\(m)")
        let p = try error("  - scope: vocabulary\n    senses: [1]\n    erase: {method: orth}\n")
        #expect(p.description.hasPrefix("/tmp/erase-errors.yaml:5:12: erase: missing `pairs:`"), "\(p)")
    }

    @Test func aMissingPairsFileIsRefusedAtItsPath() throws {
        let e = try error("  - scope: vocabulary\n    senses: [1]\n    erase: {pairs: {file: no-such-pairs.txt}}\n")
        #expect(e.description.hasPrefix("/tmp/erase-errors.yaml:5:27: cannot read the pairs file"), "\(e)")
    }

    /// Localized senses over the whole vocabulary rank over erase's pairs; other operations still refuse them.
    @Test func localizedVocabularyScopeIsForEraseOnly() throws {
        let e = try error("  - scope: vocabulary\n    senses: {localized: {pair: [{token: 1}, {token: 2}]}}\n    scale: 0\n")
        #expect(e.description.hasPrefix("/tmp/erase-errors.yaml:3:5: scope: vocabulary needs explicit senses"), "\(e)")
        let ok = try EditFile.parse("schema: backpack-edit/1\ninterventions:\n  - scope: vocabulary\n    senses: {localized: {pair: [{token: 1}, {token: 2}]}}\n    erase: {pairs: [[{token: 1}, {token: 2}], [{token: 3}, {token: 4}]]}\n",
                                    url: URL(fileURLWithPath: "/tmp/ok.yaml"))
        #expect(ok.interventions.first?.operation.name == "erase")
    }
}
