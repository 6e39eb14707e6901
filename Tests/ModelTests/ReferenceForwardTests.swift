import BackpackCheckpoint
import BackpackModel
import BackpackTokenizer
import Foundation
import Testing
import TestSupport
@testable import BackpackModel

/// ReferenceForward (docs/BACKPACK.md's equations, in Double, one sequence at a time) as the
/// oracle: first it is checked against the original PyTorch code's outputs, then the engine
/// (prefix sharing, VariantSet, KV-cached generation, batching) is checked against it.
///
/// Tolerances, absolute:
/// - reference vs PyTorch float32 (fixtures): those of the engine's parity (ReferenceParityTests):
///   logits 1e-4, senses and alpha 1e-5, o 5e-5; the gap is PyTorch's own float32 rounding.
/// - reference vs the fixtures' independent float64 logits: 2e-6. Both are float64 computations;
///   the file's values come back rounded to float32 (SafetensorsFile.floats), half an ulp at
///   |logit| < 32 is 9.5e-7.
/// - engine vs reference: `Tolerance` below; the engine computes in float32, so these bound its
///   rounding (measured values are printed by every test).
@Suite struct ReferenceForwardTests {
    /// The engine (float32) against the reference (Double), absolute. Logits reach |20| on the
    /// tiny fixture (initializer_range 0.2): float32's unit roundoff 6e-8 is 1.2e-6 at that size,
    /// and rounding accumulates through the trunk, the sense sum (k x n terms per entry of o) and
    /// the d-term product with E. Measured worst over every test here (the prints): logits
    /// 3.2e-5, o 1.3e-5, senses 5.7e-6, alpha 2.3e-6; PyTorch's own float32 code is 1.7e-5 from
    /// its float64 one on the same model. The bounds leave about 3x for other BLAS builds and
    /// thread counts, which round differently: the project's parity tolerances (1e-4 logits,
    /// 5e-5 o, 1e-5 alpha), and 2e-5 for the senses.
    enum Tolerance {
        static let logits = 1e-4
        static let hidden = 5e-5
        static let senses = 2e-5
        static let alpha = 1e-5
    }

    static func maxDiff(_ a: some Collection<Float>, _ b: some Collection<Double>) -> Double {
        guard a.count == b.count else { return .infinity }
        return zip(a, b).reduce(0) { max($0, abs(Double($1.0) - $1.1)) }
    }

    /// Rows `positions` of an (n, V) logits array.
    static func rows(_ logits: [Double], _ positions: [Int], _ V: Int) -> [Double] {
        positions.flatMap { logits[($0 * V)..<(($0 + 1) * V)] }
    }

    static func tiny() throws -> LanguageModel { try CheckpointSource.safetensors.load() }

    /// Worst differences of the engine's outputs against the reference, over sequences.
    struct Worst: CustomStringConvertible {
        var logits = 0.0, hidden = 0.0, senses = 0.0, alpha = 0.0
        mutating func add(_ out: ForwardOutput, _ ref: ReferenceForward.Output, V: Int) {
            logits = max(logits, ReferenceForwardTests.maxDiff(out.logits, ReferenceForwardTests.rows(ref.logits, out.logitPositions, V)))
            hidden = max(hidden, ReferenceForwardTests.maxDiff(out.hidden, ref.hidden))
            if let s = out.senses { senses = max(senses, ReferenceForwardTests.maxDiff(s, ref.senses)) }
            if let a = out.contextualization { alpha = max(alpha, ReferenceForwardTests.maxDiff(a, ref.alpha)) }
        }
        func check(_ label: String) {
            print("engine vs reference, \(label): \(self)")
            #expect(logits <= Tolerance.logits, "\(label): logits")
            #expect(hidden <= Tolerance.hidden, "\(label): hidden")
            #expect(senses <= Tolerance.senses, "\(label): senses")
            #expect(alpha <= Tolerance.alpha, "\(label): alpha")
        }
        var description: String {
            "max|d| logits \(logits) (tol \(Tolerance.logits)), o \(hidden) (tol \(Tolerance.hidden)), senses \(senses) (tol \(Tolerance.senses)), alpha \(alpha) (tol \(Tolerance.alpha))"
        }
    }

    /// Seeded batches as evaluations make them: groups of sequences sharing a prefix (enough
    /// rows for PrefixGroups to share them), sequences of 1 to maxLength tokens sharing nothing,
    /// a duplicate, and a sequence that is a prefix of another; shuffled.
    static func randomBatch(seed: UInt64, vocabulary: Int, maxLength: Int) -> [[Int]] {
        var rng = SeededGenerator(seed: seed)
        func int(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        func tokens(_ n: Int) -> [Int] { (0..<n).map { _ in int(vocabulary) } }
        var batch: [[Int]] = []
        for _ in 0..<3 {
            let prefix = tokens(8 + int(10))
            for _ in 0..<(5 + int(5)) { batch.append(prefix + tokens(1 + int(10))) }
        }
        for _ in 0..<4 { batch.append(tokens(1 + int(maxLength))) }
        batch.append([int(vocabulary)])
        batch.append(batch[0])
        batch.append(Array(batch[1].prefix(3)))
        batch.shuffle(using: &rng)
        return batch
    }

    // MARK: The reference against PyTorch

    @Test(arguments: ReferenceFixture.inputs)
    func referenceMatchesPyTorch(input: String) throws {
        let model = try Self.tiny()
        var worst = (logits: 0.0, f64: 0.0, senses: 0.0, alpha: 0.0, hidden: 0.0)
        for (b, ids) in try ReferenceFixture.ids(input).enumerated() {
            let ref = try ReferenceForward.forward(model, ids: ids)
            worst.logits = max(worst.logits, Self.maxDiff(try ReferenceFixture.row("\(input)_logits", b), ref.logits))
            worst.f64 = max(worst.f64, Self.maxDiff(try ReferenceFixture.row("\(input)_logits_f64", b), ref.logits))
            worst.senses = max(worst.senses, Self.maxDiff(try ReferenceFixture.row("\(input)_senses", b), ref.senses))
            worst.alpha = max(worst.alpha, Self.maxDiff(try ReferenceFixture.row("\(input)_contextualization", b), ref.alpha))
            worst.hidden = max(worst.hidden, Self.maxDiff(try ReferenceFixture.row("\(input)_hidden", b), ref.hidden))
        }
        print("reference vs PyTorch \(input): max|d| logits \(worst.logits) (tol 1e-4), float64 logits \(worst.f64) (tol 2e-6), senses \(worst.senses), alpha \(worst.alpha) (tol 1e-5), o \(worst.hidden) (tol 5e-5)")
        #expect(worst.logits <= 1e-4)
        #expect(worst.f64 <= 2e-6)
        #expect(worst.senses <= 1e-5)
        #expect(worst.alpha <= 1e-5)
        #expect(worst.hidden <= 5e-5)
    }

    /// Plain GPT-2 (logits = LN_f(trunk) E^T) against transformers, and the engine against it.
    @Test(arguments: ["seq0", "seq1"])
    func plainGPT2(sequence: String) throws {
        let directory = TestPaths.repoRoot.appendingPathComponent("Tests/ModelTests/Fixtures/gpt2-tiny")
        let model = try ModelDirectory(directory).load()
        #expect(!model.isBackpack)
        let expected = try SafetensorsFile(url: directory.appendingPathComponent("expected.safetensors"))
        let ids = try expected.ints("\(sequence)_input_ids")
        let ref = try ReferenceForward.forward(model, ids: ids)
        #expect(ref.senses.isEmpty && ref.alpha.isEmpty)
        let pytorch = Self.maxDiff(try expected.floats("\(sequence)_logits"), ref.logits)
        print("reference vs transformers GPT-2 \(sequence): max|d| logits \(pytorch) (tol 1e-4)")
        #expect(pytorch <= 1e-4)
        var worst = Worst()
        worst.add(try model.forward(ids), ref, V: model.config.vocabSize)
        worst.check("GPT-2 \(sequence)")
        try Self.checkGeneration(model, ids, prompt: 3, "GPT-2 \(sequence)")
    }

    // MARK: The engine against the reference

    /// `forward(batch:)` on every fixture input (the PyTorch batch as one batch).
    @Test(arguments: ReferenceFixture.inputs)
    func engineMatchesOnFixtures(input: String) throws {
        let model = try Self.tiny()
        let batch = try ReferenceFixture.ids(input)
        let outputs = try model.forward(batch: batch, options: .init(logits: .all, senses: true, contextualization: true))
        var worst = Worst()
        for (ids, out) in zip(batch, outputs) { worst.add(out, try ReferenceForward.forward(model, ids: ids), V: model.config.vocabSize) }
        worst.check("fixture \(input)")
    }

    /// Random batches with shared prefixes: contextualize with and without prefix sharing, then
    /// outputs; every tensor of every sequence equals the reference run on that sequence alone.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func engineMatchesOnRandomBatches(seed: UInt64) throws {
        let model = try Self.tiny()
        let batch = Self.randomBatch(seed: seed, vocabulary: model.config.vocabSize, maxLength: model.config.nPositions)
        #expect(!PrefixGroups(batch).groups.isEmpty, "the batch exercises prefix sharing")
        let refs = try batch.map { try ReferenceForward.forward(model, ids: $0) }
        let options = ForwardOptions(logits: .all, senses: true, contextualization: true)
        for sharing in [true, false] {
            let outputs = try model.outputs(try model.contextualize(batch, sharingPrefixes: sharing), options: options)
            var worst = Worst()
            for (out, ref) in zip(outputs, refs) { worst.add(out, ref, V: model.config.vocabSize) }
            worst.check("random batch \(seed) (\(batch.count) sequences), sharing prefixes \(sharing)")
        }
        // last-position logits only, as evaluations ask for them
        var worst = Worst()
        for (out, ref) in zip(try model.forward(batch: batch, options: .init(logits: .last)), refs) { worst.add(out, ref, V: model.config.vocabSize) }
        worst.check("random batch \(seed), last positions")
    }

    /// The base, two word-level edits (one on the base, one on a vocabulary-wide edit), a
    /// vocabulary-wide edit folded into final_mlp.c_proj, and an input-embedding edit (own trunk,
    /// untied output embedding), scored together: every row equals each variant's reference.
    @Test(arguments: [LogitSelection.all, .last])
    func variantSetMatches(selection: LogitSelection) throws {
        let base = try Self.tiny()
        let c = base.config, d = c.nEmbd, V = c.vocabSize
        let batch = Self.randomBatch(seed: 7, vocabulary: V, maxLength: 40)
        // two tokens that occur in the batch, the first in a shared prefix
        let a = batch.max { $0.count < $1.count }![1], b = batch[batch.count / 2].last!
        func scaled(_ model: LanguageModel, _ id: Int, senses: [Int], by s: Float) -> [Float] {
            var row = model.senseVectors([id])[id]!
            for l in senses { for e in 0..<d { row[l * d + e] *= s } }
            return row
        }
        // vocabulary-wide: sense 3 of every token halved, folded into the sense network's last layer
        var folded = base.parameters
        let proj = ParameterTable.senseOutputProjection(c)
        for name in [proj.weight, proj.bias] {
            let w = base.parameters[name]
            var values = w.values
            let width = w.shape.last!
            for i in values.indices where (i % width) / d == 3 { values[i] *= 0.5 }
            folded.weights[name] = Weight(shape: w.shape, values: values)
        }
        let vocabularyWide = LanguageModel(parameters: folded)
        // input embedding: row a of wte halved, the output embedding kept (untied)
        var untied = base.parameters
        untied.config.tieWordEmbeddings = false
        let wte = base.parameters[ParameterTable.tokenEmbedding(c)]
        var input = wte.values
        for e in 0..<d { input[a * d + e] *= 0.5 }
        untied.weights[ParameterTable.tokenEmbedding(c)] = Weight(shape: wte.shape, values: input)
        untied.weights[ParameterTable.outputEmbedding] = wte
        let models = [
            base,
            base.withSenseOverrides([a: scaled(base, a, senses: [1, 2], by: 0), b: scaled(base, b, senses: [0], by: 2)]),
            vocabularyWide,
            LanguageModel(parameters: untied),
            base.withSenseOverrides([b: scaled(base, b, senses: [1, 3], by: -1)]),
            vocabularyWide.withSenseOverrides([a: scaled(vocabularyWide, a, senses: [0, 1, 2, 3], by: 0.5)]),
        ]
        let set = VariantSet(models)
        #expect(set.leader == [0, 0, 0, 3, 0, 0])
        #expect(set.parent == [nil, 0, nil, nil, 0, 2])
        let scored = try set.score(batch, logits: selection) { _, _, row in Array(row) }
        var worst = 0.0
        for (m, model) in models.enumerated() {
            var changed = false
            for (s, ids) in batch.enumerated() {
                let ref = try ReferenceForward.forward(model, ids: ids)
                let positions = selection == .all ? Array(ids.indices) : [ids.count - 1]
                #expect(scored[m][s].count == positions.count)
                for (r, p) in positions.enumerated() {
                    worst = max(worst, Self.maxDiff(scored[m][s][r], ref.logits[(p * V)..<((p + 1) * V)]))
                    changed = changed || scored[m][s][r] != scored[0][s][r]
                }
            }
            #expect(m == 0 || changed, "variant \(m) changes some row")
        }
        print("engine vs reference, VariantSet (\(models.count) variants, \(batch.count) sequences, logits \(selection)): max|d| logits \(worst) (tol \(Tolerance.logits))")
        #expect(worst <= Tolerance.logits)
        // KV-cached generation under an edit takes the edited senses too
        try Self.checkGeneration(models[1], batch.max { $0.count < $1.count }!, prompt: 5, "word-level edit")
    }

    /// Feeds a prompt, then one token at a time; each step's logits (the last position) equal
    /// the reference's row at that position.
    static func checkGeneration(_ model: LanguageModel, _ ids: [Int], prompt: Int, _ label: String) throws {
        let V = model.config.vocabSize
        let ref = try ReferenceForward.forward(model, ids: ids)
        let session = GenerationSession(model: model)
        var worst = maxDiff(try session.feed(Array(ids.prefix(prompt))), rows(ref.logits, [prompt - 1], V))
        for (p, id) in ids.enumerated().dropFirst(prompt) {
            worst = max(worst, maxDiff(try session.feed([id]), rows(ref.logits, [p], V)))
        }
        print("engine vs reference, KV-cached generation \(label) (\(ids.count) tokens): max|d| logits \(worst) (tol \(Tolerance.logits))")
        #expect(worst <= Tolerance.logits)
    }

    @Test func cachedGenerationMatches() throws {
        let model = try Self.tiny()
        try Self.checkGeneration(model, try ReferenceFixture.ids("seq3")[0], prompt: 5, "fixture seq3")
        let random = Self.randomBatch(seed: 11, vocabulary: model.config.vocabSize, maxLength: 40).max { $0.count < $1.count }!
        try Self.checkGeneration(model, random, prompt: 1, "random")
    }

    // MARK: The embedded demo model

    /// The demo model (Models/backpack-demo): the reference against the PyTorch implementation
    /// that trained it (parity.safetensors), then the engine on a few prompts, batched, cached,
    /// and with sense 10 of " nurse" removed.
    @Test func demoModel() throws {
        let dir = try ModelDirectory(TestPaths.demoModel)
        let model = try dir.load()
        let V = model.config.vocabSize
        let parity = try SafetensorsFile(url: TestPaths.demoModel.appendingPathComponent("parity.safetensors"))
        for sequence in ["seq0", "seq1", "seq2"] {
            let ref = try ReferenceForward.forward(model, ids: try parity.ints("\(sequence)_input_ids"))
            let logits = Self.maxDiff(try parity.floats("\(sequence)_logits"), ref.logits)
            let senses = Self.maxDiff(try parity.floats("\(sequence)_senses"), ref.senses)
            let alpha = Self.maxDiff(try parity.floats("\(sequence)_contextualization"), ref.alpha)
            print("reference vs PyTorch, demo \(sequence): max|d| logits \(logits) (tol 1e-4), senses \(senses), alpha \(alpha) (tol 1e-5)")
            #expect(logits <= 1e-4 && senses <= 1e-5 && alpha <= 1e-5)
        }
        let tokenizer = try #require(try dir.tokenizer())
        let prompts = ["My nurse said that", "My nurse believes that", "The mechanic was with the car. When",
                       "I really liked my teacher. What I liked most was that", "Some nurse asked to look over things, but"]
        let batch = prompts.map { tokenizer.encode($0) }
        let nurse = try #require(tokenizer.encode(" nurse").first)
        var row = model.senseVectors([nurse])[nurse]!
        for e in 0..<model.config.nEmbd { row[10 * model.config.nEmbd + e] = 0 }
        let edited = model.withSenseOverrides([nurse: row])
        for (label, m) in [("demo", model), ("demo, nurse sense 10 removed", edited)] {
            let refs = try batch.map { try ReferenceForward.forward(m, ids: $0) }
            var worst = Worst()
            let outputs = try m.forward(batch: batch, options: .init(logits: .all, senses: true, contextualization: true))
            for (out, ref) in zip(outputs, refs) { worst.add(out, ref, V: V) }
            worst.check(label)
            try Self.checkGeneration(m, batch[3], prompt: 2, label)
        }
        // the edit reaches the prompts with " nurse" and no other
        let withNurse = (try ReferenceForward.forward(model, ids: batch[0]), try ReferenceForward.forward(edited, ids: batch[0]))
        let without = (try ReferenceForward.forward(model, ids: batch[2]), try ReferenceForward.forward(edited, ids: batch[2]))
        #expect(withNurse.0.logits != withNurse.1.logits)
        #expect(without.0.logits == without.1.logits)
    }
}
