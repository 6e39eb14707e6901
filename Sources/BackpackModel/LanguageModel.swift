import BackpackModelFolder
import Foundation

// A Backpack-GPT2 language model (or plain GPT-2, which shares the trunk), computing exactly
// what the published `modeling_backpack_gpt2.py` computes in eval mode (docs/BACKPACK.md;
// ReferenceForward.swift states the same as plain equations):
//   C = SenseNetwork(E[ids])          (k, n, d)   per distinct id, cached
//   hc = Trunk(E[ids] + P)            (n, d)
//   alpha = SenseWeights(hc)          (k, n, n)   rows sum to 1
//   o = sum_l alpha[l] @ C[l]         (n, d)      no final LayerNorm
//   logits = o E^T                    (n, V)      tied embedding
// Shapes: n = sequence length, d = n_embd, k = num_senses, V = vocab_size.
// A sense edit changes only C, so `forward` is two halves: `contextualize` (hc, alpha: the same
// for the base model and every sense edit of it) and `outputs` (o and the logits, per variant).

/// Which positions' logits to compute (the output layer is the costliest part per position).
public enum LogitSelection: Sendable, Equatable {
    case all, last, none
    /// The same rows of every sequence.
    case positions([Int])
    /// Each sequence's own rows, [sequence][row]: the rows an evaluation scores (those that
    /// predict the tokens it scores; a sliding window's context rows and a sequence's last row
    /// are not among them), so that no logits are computed for rows nobody reads.
    case rows([[Int]])

    /// Whether the scores are sums over the rows of sequences (every row, or the scored rows of
    /// sequence likelihoods), where VariantSet updates word-level variants' logits (Variants.swift).
    var sumsOverRows: Bool {
        switch self {
        case .all, .rows: return true
        case .last, .none, .positions: return false
        }
    }
}

public struct ForwardOptions: Sendable {
    public var logits: LogitSelection
    public var senses: Bool
    public var contextualization: Bool
    public init(logits: LogitSelection = .all, senses: Bool = false, contextualization: Bool = false) {
        self.logits = logits; self.senses = senses; self.contextualization = contextualization
    }
}

/// What one sequence's forward pass produced.
public struct ForwardOutput: Sendable {
    public let ids: [Int]
    /// o (n, d): the summed sense representation (for plain GPT-2: LN_f of the trunk output).
    public let hidden: [Float]
    /// (logitPositions.count, V)
    public let logits: [Float]
    public let logitPositions: [Int]
    /// (k, n, d), when asked for
    public let senses: [Float]?
    /// alpha (k, n, n), when asked for
    public let contextualization: [Float]?

    /// The logits row of a position that was computed.
    public func logits(at position: Int, vocabulary: Int) -> ArraySlice<Float>? {
        guard let r = logitPositions.firstIndex(of: position) else { return nil }
        return logits[(r * vocabulary)..<((r + 1) * vocabulary)]
    }
}

public final class LanguageModel: @unchecked Sendable {
    public let config: BackpackConfig
    public let parameters: ParameterSet
    /// Word-level sense edits: token id -> its k sense vectors (k*d), replacing the computed ones.
    public let senseOverrides: [Int: [Float]]
    /// The senses an edit set, per overridden id, when not all of them: the others are the
    /// model's own vectors as computed now (the override's copies of them are not read). An
    /// edit copies the senses it leaves alone from vectors computed in some earlier product, and
    /// BLAS rounds a row differently with other rows beside it (by about 4e-7 at the published
    /// size), so a copy would differ from the base model's vector in the same batch: a
    /// word-level update (VariantSet) would then carry all k senses of every edited id instead
    /// of the ones edited. Ids not listed (overrides loaded from a checkpoint) replace all k.
    public let overriddenSenses: [Int: [Int]]
    public let senseCache: SenseCache

    let trunk: Trunk
    let senseNetwork: SenseNetwork?
    let senseWeights: SenseWeightNetwork?
    /// The output embedding: E (tied) unless the checkpoint carries its own `lm_head.weight`.
    let embedding: Weight

    public init(parameters: ParameterSet, senseOverrides: [Int: [Float]] = [:], overriddenSenses: [Int: [Int]] = [:],
                senseCache: SenseCache? = nil) {
        config = parameters.config
        self.parameters = parameters
        self.senseOverrides = senseOverrides
        self.overriddenSenses = overriddenSenses.filter { senseOverrides[$0.key] != nil }.mapValues { Array(Set($0)).sorted() }
        trunk = Trunk(parameters)
        embedding = parameters.weights[ParameterTable.outputEmbedding] ?? trunk.wte
        if config.architecture == .backpack {
            senseNetwork = SenseNetwork(parameters)
            senseWeights = SenseWeightNetwork(parameters)
        } else {
            senseNetwork = nil; senseWeights = nil
        }
        // Bounded at about 48 MB of cached sense vectors (1,024 ids at the published size; at
        // least 1,024 ids): with the least recently used evicted, the 170M perplexity workload
        // (2,901 distinct ids in 10 batches) computes about 10 % more sense vectors than with no
        // bound, and its peak memory stays within 1.3x the weights (`make bench`; a bound of
        // 1 GB held 142 MB there).
        let rowBytes = max(1, config.senses * config.nEmbd * 4)
        self.senseCache = senseCache ?? SenseCache(capacity: max(1024, Self.senseCacheBytes / rowBytes))
    }

    /// The same weights with other word-level edits; shares the cache of unedited sense vectors.
    /// `senses[id]`: the senses the edit set for that id (see `overriddenSenses`); all k if absent.
    public func withSenseOverrides(_ overrides: [Int: [Float]], senses: [Int: [Int]] = [:]) -> LanguageModel {
        LanguageModel(parameters: parameters, senseOverrides: overrides, overriddenSenses: senses, senseCache: senseCache)
    }

    public var isBackpack: Bool { config.architecture == .backpack }

    /// Checks ids before any computation: in range, non-empty, at most n_positions.
    public func validate(_ ids: [Int], startPosition: Int = 0, source: String = "input") throws {
        if ids.isEmpty { throw ModelError(file: source, reason: "empty sequence: at least one token is needed") }
        if startPosition + ids.count > config.nPositions {
            throw ModelError(file: source, reason: "sequence of \(startPosition + ids.count) tokens is longer than n_positions (\(config.nPositions))")
        }
        if let bad = ids.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
            throw ModelError(file: source, reason: "token id \(bad) is out of range (vocab_size \(config.vocabSize))")
        }
    }

    // MARK: Senses

    /// Sense-network products have a multiple of `senseRows` rows (see `senseVectors`), at most
    /// `senseRowsPerProduct` (bounds the (rows, k*d) output: 12.6 MB at the published size; with
    /// 1,024 rows, its 50 MB were the peak of the 170M perplexity workload's memory).
    static let senseRows = 32
    static let senseRowsPerProduct = 256
    /// The sense cache's bound (see `init`).
    static let senseCacheBytes = 48 << 20
    /// The gathered sense vectors and weights of one sense-sum product (see `senseSum`).
    static let senseSumBytes = 8 << 20

    /// C(id) for each id, (k*d) each, edits applied; computes only ids not yet cached.
    public func senseVectors(_ ids: [Int]) -> [Int: [Float]] {
        guard let senseNetwork else { return [:] }
        let distinct = Array(Set(ids))
        // The model's own vectors: of ids without an override, and of ids only some of whose
        // senses an edit set
        let computed = distinct.filter { senseOverrides[$0] == nil || overriddenSenses[$0] != nil }
        var found = senseCache.lookup(computed)
        let missing = computed.filter { found[$0] == nil }.sorted()
        if !missing.isEmpty {
            let kd = config.senses * config.nEmbd
            var new: [Int: [Float]] = [:]
            // Which ids are missing depends on what ran before (the cache, the other variants'
            // overrides), so an id's vector must not depend on the ids computed with it. BLAS
            // picks its kernel by the product's shape (one row: a matrix-vector product; a few
            // rows: a small-matrix kernel; a partial tile of rows: an edge kernel), and within
            // one kernel a row's sums do not depend on the other rows (threads split rows and
            // columns, never the inner dimension). So every product has a multiple of
            // `senseRows` rows (32: past the small-matrix sizes, whole tiles of every kernel),
            // the list padded by repeating its last id, and the products are as large as the
            // memory bound allows: a few large products run at BLAS's full speed, where 32-row
            // ones ran the sense network at 0.6x PyTorch's (`make bench`). ShardTests checks the
            // bits. (A run that fills the cache in another order still differs by rounding
            // elsewhere: docs/SHARDING.md, the bound.)
            let padded = (missing.count + Self.senseRows - 1) / Self.senseRows * Self.senseRows
            let all = missing + Array(repeating: missing[missing.count - 1], count: padded - missing.count)
            for start in stride(from: 0, to: padded, by: Self.senseRowsPerProduct) {
                let rows = Array(all[start..<min(start + Self.senseRowsPerProduct, padded)])
                let s = senseNetwork(rows)
                for (j, id) in rows.enumerated() where start + j < missing.count {
                    new[id] = Array(UnsafeBufferPointer(start: s.pointer + j * kd, count: kd))
                }
            }
            senseCache.store(new)
            found.merge(new) { a, _ in a }
        }
        let d = config.nEmbd
        for id in distinct {
            guard let o = senseOverrides[id] else { continue }
            if let senses = overriddenSenses[id], var v = found[id] {
                for l in senses { v.replaceSubrange((l * d)..<((l + 1) * d), with: o[(l * d)..<((l + 1) * d)]) }
                found[id] = v
            } else {
                found[id] = o
            }
        }
        return found
    }

    /// E v: the vocabulary scores of a d-vector (a sense vector, a direction). (V)
    public func unembed(_ vector: [Float]) -> [Float] {
        let V = config.vocabSize, d = config.nEmbd
        var out = [Float](repeating: 0, count: V)
        vector.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o in
                BLAS.gemm(transB: true, m: 1, n: V, k: d, a: v.baseAddress!, lda: d, b: embedding.pointer, ldb: d,
                          c: o.baseAddress!, ldc: V)
            }
        }
        return out
    }

    /// Row of the token embedding E (d).
    public func embeddingRow(_ id: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: embedding.pointer + id * config.nEmbd, count: config.nEmbd))
    }

    // MARK: Forward

    public func forward(_ ids: [Int], options: ForwardOptions = .init()) throws -> ForwardOutput {
        try forward(batch: [ids], options: options)[0]
    }

    /// Sequences of different lengths, packed: position-wise layers run on all rows at once.
    /// The two halves below: what sense edits leave alone (trunk, alpha), then what they change.
    public func forward(batch: [[Int]], options: ForwardOptions = .init()) throws -> [ForwardOutput] {
        try outputs(contextualize(batch), options: options)
    }

    /// hc = Trunk(E[ids] + P) (N, d), then per sequence alpha = SenseWeights(hc) (k, n, n); for
    /// plain GPT-2, hc itself. Checks the ids first. Sequences that begin with the same tokens
    /// (an evaluation's prompts from one template) share the trunk's work on that prefix.
    /// `sharingPrefixes: false` runs every row (for comparisons: `backpack bench --prompts`).
    public func contextualize(_ batch: [[Int]], sharingPrefixes: Bool = true) throws -> Contextualization {
        for (i, ids) in batch.enumerated() { try validate(ids, source: batch.count > 1 ? "input sequence \(i)" : "input") }
        let hc = sharingPrefixes ? sharedPrefixTrunk(batch) : trunk(batch)          // (N, d), sequences packed
        return Contextualization(batch: batch, perSequence: perSequence(hc: hc, batch), source: self)
    }

    /// hc (N, d) of the batch, sequences packed in order, as `trunk(batch)` computes it, but each
    /// group of sequences with a common prefix (PrefixGroups) runs the prefix once. Two trunk
    /// calls in all, so that the weights are read twice rather than twice per group: the first
    /// runs every group's prefix (keeping its keys and values in a cache) beside the sequences
    /// without a group; the second runs the rest of every grouped sequence, attending to its
    /// group's cache. Causal attention makes a prefix's rows the same in every sequence that
    /// starts with it, so this is the same computation on fewer rows (equal up to float32
    /// rounding of differently sized products).
    func sharedPrefixTrunk(_ batch: [[Int]]) -> Buffer {
        let plan = PrefixGroups(batch)
        if plan.groups.isEmpty { return trunk(batch) }
        let d = config.nEmbd
        var offsets: [Int] = [], total = 0
        for ids in batch { offsets.append(total); total += ids.count }
        let caches = plan.groups.map { g in
            KVCache(layers: config.nLayer, capacity: g.members.map { batch[$0].count }.max() ?? 0, d: d)
        }
        // 1. every group's prefix, and the sequences that are in no group
        let firstBatch = plan.groups.map { Array(batch[$0.members[0]][..<$0.prefix]) } + plan.alone.map { batch[$0] }
        let first = trunk(firstBatch, startPositions: firstBatch.map { _ in 0 },
                          caches: caches + plan.alone.map { _ in nil }, advance: true)
        let hc = Buffer(total * d)                                        // (N, d)
        var r = 0
        var prefixRows: [UnsafeMutablePointer<Float>] = []
        for g in plan.groups { prefixRows.append(first.pointer + r * d); r += g.prefix }
        for s in plan.alone {
            (hc.pointer + offsets[s] * d).update(from: first.pointer + r * d, count: batch[s].count * d)
            r += batch[s].count
        }
        // 2. the rest of every grouped sequence, after its group's cached prefix
        var rests: [[Int]] = [], starts: [Int] = [], restCaches: [KVCache?] = [], owners: [(s: Int, g: Int)] = []
        for (gi, g) in plan.groups.enumerated() {
            for s in g.members {
                rests.append(Array(batch[s][g.prefix...])); starts.append(g.prefix); restCaches.append(caches[gi])
                owners.append((s, gi))
            }
        }
        let second = trunk(rests, startPositions: starts, caches: restCaches, advance: false)
        r = 0
        for ((s, gi), rest) in zip(owners, rests) {
            let p = plan.groups[gi].prefix
            (hc.pointer + offsets[s] * d).update(from: prefixRows[gi], count: p * d)
            (hc.pointer + (offsets[s] + p) * d).update(from: second.pointer + r * d, count: rest.count * d)
            r += rest.count
        }
        return hc
    }

    /// Per sequence: alpha (k, n, n) from its rows of hc (n, d); for plain GPT-2, hc's rows.
    func perSequence(hc: Buffer, _ batch: [[Int]]) -> [Buffer] {
        let d = config.nEmbd
        var perSequence: [Buffer] = []
        var row = 0
        for ids in batch {
            let n = ids.count
            let hcRows = hc.pointer + row * d                             // (n, d)
            row += n
            if let senseWeights {
                let qk = senseWeights.queriesAndKeys(hcRows, rows: n)     // (n, 2d): q | k
                perSequence.append(senseWeights.alpha(queries: qk.pointer, qStride: 2 * d, keys: qk.pointer + d,
                                                      kStride: 2 * d, m: n, past: 0))   // (k, n, n)
            } else {
                let h = Buffer(n * d)                                     // plain GPT-2: logits = LN_f(z) E^T
                h.pointer.update(from: hcRows, count: n * d)
                perSequence.append(h)
            }
        }
        return perSequence
    }

    /// Whether this model's contextualization is `other`'s: every parameter outside the sense
    /// network is the same storage (same Weight pointers) under the same config. Sense edits
    /// (word-level overrides, folds into final_mlp) keep this; an edit of wte does not. Decided
    /// from where the weights live, never by comparing values.
    public func sharesContextualization(with other: LanguageModel) -> Bool {
        if other === self { return true }
        guard config == other.config, parameters.weights.count == other.parameters.weights.count else { return false }
        for (name, w) in parameters.weights where !name.hasPrefix(SenseNetwork.prefix) {
            guard let o = other.parameters.weights[name], o.pointer == w.pointer, o.shape == w.shape else { return false }
        }
        return true
    }

    /// The sense half of a forward pass, with this model's sense vectors over a contextualization
    /// computed by a model whose contextualization this one shares (itself, or the base model of
    /// a sense edit):  o = sum_l alpha[l] @ C[l]  (n, d);  logits = o E^T at the selected rows.
    public func outputs(_ context: Contextualization, options: ForwardOptions = .init()) throws -> [ForwardOutput] {
        guard sharesContextualization(with: context.source) else {
            throw ModelError(file: "contextualization", reason: "computed by a model with other trunk weights; run this variant's own contextualize")
        }
        let batch = context.batch
        let positions = try batch.enumerated().map { try logitPositions(options.logits, sequence: $0.offset, length: $0.element.count) }
        let senseTable = isBackpack ? senseVectors(batch.flatMap { $0 }) : [:]
        let exact = isBackpack && Self.takesExactLogits(options.logits, positions: positions, lengths: batch.map(\.count))
        var results: [(hidden: Buffer, senses: Buffer?, alpha: Buffer?, positions: [Int])] = []
        var exactRows: [[Double]] = []                                   // per sequence (rows, d), when `exact`
        let workspace = SenseSumWorkspace()
        for (s, ids) in batch.enumerated() {
            if isBackpack {
                let alpha = context.perSequence[s]
                let (o, C) = senseSum(ids, alpha: alpha, table: senseTable, keepingSenses: options.senses, workspace: workspace)
                // A few selected rows (the last position) summed as VariantSet sums them, so that
                // a variant's logits there are the same bits alone and shared.
                if Self.sumsRowsDirectly(positions[s].count, of: ids.count) {
                    let d = config.nEmbd, count = positions[s].count * d
                    let rows = [Double](unsafeUninitializedCapacity: count) { out, initialized in
                        senseRows(ids, alpha: alpha.pointer, rows: positions[s], table: senseTable, into: out.baseAddress!)
                        initialized = count
                    }
                    for (r, p) in positions[s].enumerated() { for e in 0..<d { o.pointer[p * d + e] = Float(rows[r * d + e]) } }
                    if exact { exactRows.append(rows) }
                } else if exact {
                    exactRows.append([])                                   // no rows selected
                }
                results.append((o, options.senses ? C : nil, options.contextualization ? alpha : nil, positions[s]))
            } else {
                results.append((context.perSequence[s], nil, nil, positions[s]))
            }
        }
        let logits = exact ? exactLogits(exactRows) : unembed(results.map { ($0.hidden, $0.positions) })
        var outputs: [ForwardOutput] = []
        for (s, res) in results.enumerated() {
            outputs.append(ForwardOutput(
                ids: batch[s], hidden: res.hidden.array, logits: logits[s], logitPositions: res.positions,
                senses: res.senses?.array, contextualization: res.alpha?.array))
        }
        return outputs
    }

    /// The rows of o at `positions` (R, d): o itself when they are 0 ..< R.
    private func selectedRows(of hidden: Buffer, positions: [Int]) -> Buffer {
        let d = config.nEmbd, R = positions.count
        if positions == Array(0..<R) { return hidden }
        let rows = Buffer(R * d)
        for (r, p) in positions.enumerated() { (rows.pointer + r * d).update(from: hidden.pointer + p * d, count: d) }
        return rows
    }

    /// Each sequence's selected rows of o times E^T, each written straight into its own fresh
    /// array (positions.count, V). (Going block by block of the vocabulary across sequences, so
    /// that E is read from memory once, measured no faster on 8x128: the product is compute-bound.)
    private func unembedOwn(_ sequences: [(hidden: Buffer, positions: [Int])]) -> [[Float]] {
        let V = config.vocabSize
        return sequences.map { seq in
            let R = seq.positions.count
            if R == 0 { return [] }
            let rows = selectedRows(of: seq.hidden, positions: seq.positions)
            return [Float](unsafeUninitializedCapacity: R * V) { out, initialized in
                logits(of: rows.pointer, rows: R, into: out.baseAddress!)
                initialized = R * V
            }
        }
    }

    /// The selected rows of sequence `sequence` (of `n` tokens).
    func logitPositions(_ selection: LogitSelection, sequence: Int, length n: Int) throws -> [Int] {
        switch selection {
        case .all: return Array(0..<n)
        case .last: return [n - 1]
        case .none: return []
        case .positions(let p):
            if let bad = p.first(where: { $0 < 0 || $0 >= n }) {
                throw ModelError(file: "input", reason: "logit position \(bad) is outside the sequence of \(n) tokens")
            }
            return p
        case .rows(let rows):
            guard sequence < rows.count else {
                throw ModelError(file: "input", reason: "logit rows are given for \(rows.count) sequence(s); sequence \(sequence) has none")
            }
            if let bad = rows[sequence].first(where: { $0 < 0 || $0 >= n }) {
                throw ModelError(file: "input", reason: "logit row \(bad) of sequence \(sequence) is outside its \(n) tokens")
            }
            return rows[sequence]
        }
    }

    /// Whether `count` selected rows of a sequence of `n` tokens have o summed row by row
    /// (senseRows, a few rows: k i d each) rather than taken from the product over all rows
    /// (senseSum: k n n d, but at BLAS's speed). `outputs` and VariantSet decide alike.
    static func sumsRowsDirectly(_ count: Int, of n: Int) -> Bool { count > 0 && count <= max(1, n / 8) }

    /// Whether a batch's selected rows get exact logits (`exactLogits`): when the scores are not
    /// sums over rows (`.last`, `.positions`: per-prompt probabilities) and every sequence's rows
    /// are few (`sumsRowsDirectly`). A stored p = exp(z - lse) moves by the absolute error of
    /// its logit z: a float32 product's few ulps of |z| ~ 15 are 2e-6 relative, beyond the 1e-6
    /// every stored number keeps between a word-level edit's low-rank update and its own pass.
    /// Accumulated in Double and rounded once, both paths give z correctly rounded: the same
    /// bits but at ties. `outputs` and VariantSet decide alike.
    static func takesExactLogits(_ selection: LogitSelection, positions: [[Int]], lengths: [Int]) -> Bool {
        !selection.sumsOverRows && positions.contains { !$0.isEmpty }
            && zip(positions, lengths).allSatisfy { $0.isEmpty || sumsRowsDirectly($0.count, of: $1) }
    }

    /// o at a few rows of one sequence, (rows.count, d): o_i = sum_l sum_{j <= i} alpha[l, i, j]
    /// C(x_j)_l, summed straight from the per-id table in Double and rounded once to float32 (each
    /// product of two floats is exact in Double, so o_i is the exact sum correctly rounded but
    /// for 2^-53 rounding of the sum). For the last row of a prompt this reads the k i d floats
    /// the row needs, where `senseSum` gathers all k n d of C and multiplies every row in float32
    /// (a third of what a sweep point of the pronoun suites cost). Where rows of o are wanted at
    /// selected positions only (`outputs`' logits there, VariantSet's selected rows, attribution),
    /// they come from here, so the same variant gives the same bits on every path. alpha: (k, n, n).
    func senseRows(_ ids: [Int], alpha: UnsafePointer<Float>, rows positions: [Int], table: [Int: [Float]],
                   into out: UnsafeMutablePointer<Float>) {
        let d = config.nEmbd, sums = UnsafeMutablePointer<Double>.allocate(capacity: positions.count * d)
        defer { sums.deallocate() }
        senseRows(ids, alpha: alpha, rows: positions, table: table, into: sums)
        for e in 0..<(positions.count * d) { out[e] = Float(sums[e]) }
    }

    /// The same rows of o in Double, not rounded (the input of `exactLogits`).
    func senseRows(_ ids: [Int], alpha: UnsafePointer<Float>, rows positions: [Int], table: [Int: [Float]],
                   into out: UnsafeMutablePointer<Double>) {
        let n = ids.count, d = config.nEmbd, k = config.senses
        let vectors = ids.map { table[$0] }                               // C(x_j)  (k*d) each
        for (r, i) in positions.enumerated() {
            let sum = out + r * d                                         // o_i
            sum.initialize(repeating: 0, count: d)
            for l in 0..<k {
                let a = alpha + (l * n + i) * n                          // alpha[l, i, :]
                for j in 0...i {
                    guard let vector = vectors[j] else { continue }
                    let w = Double(a[j]), lanes = SIMD8<Double>(repeating: w)
                    vector.withUnsafeBufferPointer { c in
                        let v = c.baseAddress! + l * d
                        var e = 0
                        while e + 8 <= d {
                            let x = UnsafeRawPointer(v + e).loadUnaligned(as: SIMD8<Float>.self)
                            let acc = UnsafeMutableRawPointer(sum + e)
                            acc.storeBytes(of: acc.loadUnaligned(as: SIMD8<Double>.self) + lanes * SIMD8<Double>(x), as: SIMD8<Double>.self)
                            e += 8
                        }
                        while e < d { sum[e] += w * Double(v[e]); e += 1 }
                    }
                }
            }
        }
    }

    /// Rows of the vocabulary converted to Double at a time by `exactLogits` (2,048 x 768 x 8
    /// bytes: 12.6 MB at the published size).
    static let exactVocabularyBlock = 2048

    /// z = o E^T for `rows` rows of o given in Double, (rows, V) in Double: each product of a
    /// float of E and o is summed in Double, so z is exact but for about 2^-53 of sum |E_v o|,
    /// and `Float(z)` is z correctly rounded but at ties. E is converted a block of the vocabulary
    /// at a time (a Double copy of it would be 309 MB at the published size).
    func exactLogits(of o: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>) {
        let d = config.nEmbd, V = config.vocabSize, block = min(V, Self.exactVocabularyBlock)
        let E = UnsafeMutablePointer<Double>.allocate(capacity: block * d)
        defer { E.deallocate() }
        for first in stride(from: 0, to: V, by: block) {
            let count = min(block, V - first), source = embedding.pointer + first * d
            for e in 0..<(count * d) { E[e] = Double(source[e]) }
            BLAS.dgemm(transB: true, m: rows, n: count, k: d, a: o, lda: d, b: E, ldb: d, c: out + first, ldc: V)
        }
    }

    /// Rows of exact logits computed at a time (`exactLogits` into a Double buffer: 128 x V x 8
    /// bytes, 51 MB at the published size, as many as 256 float32 rows).
    static let exactRows = 128

    /// Each sequence's rows of o (Double, (rows, d)) times E^T by `exactLogits`, rounded once:
    /// (rows, V) float32 each, `exactRows` rows at a time.
    func exactLogits(_ sequences: [[Double]]) -> [[Float]] {
        let d = config.nEmbd, V = config.vocabSize
        let flat = Array(sequences.joined()), R = flat.count / d
        var logits = [Float](repeating: 0, count: R * V)
        let z = UnsafeMutablePointer<Double>.allocate(capacity: min(R, Self.exactRows) * V)
        defer { z.deallocate() }
        flat.withUnsafeBufferPointer { o in
            logits.withUnsafeMutableBufferPointer { out in
                for first in stride(from: 0, to: R, by: Self.exactRows) {
                    let rows = min(Self.exactRows, R - first)
                    exactLogits(of: o.baseAddress! + first * d, rows: rows, into: z)
                    for e in 0..<(rows * V) { out[first * V + e] = Float(z[e]) }
                }
            }
        }
        var r = 0
        return sequences.map { rows in
            let count = rows.count / d
            defer { r += count }
            return Array(logits[(r * V)..<((r + count) * V)])
        }
    }

    /// One sequence's o = sum_l alpha[l] @ C[l]  (m, d), with C (k, n, d) gathered from the
    /// per-id table and alpha (k, m, n): m = n for a whole sequence, m = 1 for the last position
    /// of a generation step (the one sense sum of the project).
    func senseSum(_ ids: [Int], alpha: Buffer, rows: Int? = nil, table: [Int: [Float]],
                  keepingSenses: Bool = false, workspace: SenseSumWorkspace? = nil) -> (o: Buffer, senses: Buffer?) {
        let n = ids.count, d = config.nEmbd, k = config.senses, m = rows ?? n
        // As one product over (sense, position): o = A C with A (m, k*n), A[i, l*n + j] =
        // alpha[l, i, j], and C read as (k*n, d). One product of m*d*k*n multiply-adds instead of
        // k of m*d*n: large enough for BLAS's threads where k small ones (8 sequences of 128
        // tokens) each ran on one core. For long sequences, g senses per product, the products
        // summed (beta 1): C and A of all k senses were 42 MB for 512 tokens at the published
        // size, the largest buffers of an evaluation batch after alpha.
        let g = keepingSenses || m == 1 ? k : max(1, min(k, Self.senseSumBytes / max(1, n * d * 4)))
        // C (g, n, d) and A (m, g*n): the workspace's when given (C is returned when kept)
        let (C, A) = keepingSenses || workspace == nil ? (Buffer(g * n * d), Buffer(m * g * n))
                                                       : workspace!.buffers(c: g * n * d, a: m * g * n)
        let o = Buffer(m * d)                                             // (m, d)
        for first in stride(from: 0, to: k, by: g) {
            let senses = first..<min(k, first + g), G = senses.count
            for (j, id) in ids.enumerated() {
                guard let row = table[id] else { continue }
                row.withUnsafeBufferPointer { r in
                    for (c, l) in senses.enumerated() { (C.pointer + (c * n + j) * d).update(from: r.baseAddress! + l * d, count: d) }
                }
            }
            for (c, l) in senses.enumerated() {
                for i in 0..<m {
                    (A.pointer + i * G * n + c * n).update(from: alpha.pointer + (l * m + i) * n, count: n)
                }
            }
            BLAS.gemm(m: m, n: d, k: G * n, a: A.pointer, lda: G * n, b: C.pointer, ldb: d,
                      beta: first == 0 ? 0 : 1, c: o.pointer, ldc: d)
        }
        return (o, keepingSenses ? C : nil)
    }

    /// logits = o E^T for the chosen rows of each sequence  (rows, V) each. A sequence with many
    /// rows gets its own product, written straight into its output array (no second copy of an
    /// (n, V) matrix); sequences with few rows (evaluation prompts: one row each) share one
    /// product, so E is read once.
    func unembed(_ sequences: [(hidden: Buffer, positions: [Int])]) -> [[Float]] {
        let d = config.nEmbd, V = config.vocabSize
        var logits = [[Float]](repeating: [], count: sequences.count)
        let ownProduct = sequences.map { $0.positions.count >= 32 || sequences.count == 1 }
        let own = sequences.indices.filter { ownProduct[$0] }
        for (s, l) in zip(own, unembedOwn(own.map { sequences[$0] })) { logits[s] = l }
        let shared = sequences.indices.filter { !ownProduct[$0] }
        let R = shared.reduce(0) { $0 + sequences[$1].positions.count }
        guard R > 0 else { return logits }
        let gathered = Buffer(R * d)                                      // (R, d)
        var r = 0
        for s in shared {
            for p in sequences[s].positions {
                (gathered.pointer + r * d).update(from: sequences[s].hidden.pointer + p * d, count: d); r += 1
            }
        }
        let product = Buffer(R * V)                                       // (R, V)
        BLAS.gemm(transB: true, m: R, n: V, k: d, a: gathered.pointer, lda: d, b: embedding.pointer, ldb: d,
                  c: product.pointer, ldc: V)
        r = 0
        for s in shared {
            let count = sequences[s].positions.count
            logits[s] = Array(UnsafeBufferPointer(start: product.pointer + r * V, count: count * V))
            r += count
        }
        return logits
    }
}

/// `senseSum`'s C and A, allocated once for the sequences of a batch and reused by each: fresh per
/// sequence they were mapped and faulted in every time (A alone is 16.7 MB for a 512-token
/// sequence of the demo model; large buffers are mapped and unmapped, see the CLI's
/// MemoryPolicy): 700,000 page faults in an evaluation of the demo's held-out perplexity.
final class SenseSumWorkspace: @unchecked Sendable {
    private var c = Buffer(0), a = Buffer(0)
    /// Buffers of at least `count` floats each (contents undefined).
    func buffers(c cCount: Int, a aCount: Int) -> (c: Buffer, a: Buffer) {
        if c.count < cCount { c = Buffer(cCount) }
        if a.count < aCount { a = Buffer(aCount) }
        return (c, a)
    }
}

/// The part of a forward pass that sense edits leave alone, for one batch: per sequence, alpha
/// (k, n, n) of the Backpack (from hc = Trunk(E[ids] + P)), or hc (n, d) of plain GPT-2. Any
/// model that `sharesContextualization(with: source)` turns it into outputs with its own senses.
public struct Contextualization: @unchecked Sendable {
    public let batch: [[Int]]
    /// Backpack: alpha (k, n, n) per sequence; plain GPT-2: hc (n, d) per sequence.
    let perSequence: [Buffer]
    /// The model whose trunk computed it.
    let source: LanguageModel
}

/// Which sequences of a batch share a prefix, and how long. Sorted by their tokens, sequences
/// with a common prefix are neighbours; the batch is cut into runs of neighbours so that the rows
/// saved, the sum over runs of (members - 1) x the run's common prefix, is largest (dynamic
/// programming over the cut points, O(n^2) for n sequences). Each member keeps at least one
/// token of its own. Runs of one sequence, or with no common prefix, run as one ordinary batch.
struct PrefixGroups {
    struct Group { var members: [Int]; var prefix: Int }
    var groups: [Group] = []
    var alone: [Int] = []

    /// Below this many rows saved in all, the batch runs as it is: sharing costs a second trunk
    /// call, a second pass over the weights (about the time of a few dozen rows on GPT-2 small).
    static let minimumSaving = 64

    init(_ batch: [[Int]]) {
        let order = batch.indices.sorted { batch[$0].lexicographicallyPrecedes(batch[$1]) }
        let n = order.count
        // cap[i]: the longest prefix sorted sequence i may share; common[i]: with sequence i - 1.
        let cap = order.map { batch[$0].count - 1 }
        let common = order.indices.map { i -> Int in
            guard i > 0 else { return 0 }
            let a = batch[order[i - 1]], b = batch[order[i]]
            var l = 0
            while l < a.count && l < b.count && a[l] == b[l] { l += 1 }
            return l
        }
        // best[j]: most rows saved by the first j sorted sequences; their last run is
        // start[j] ..< j with common prefix runPrefix[j].
        var best = [Int](repeating: 0, count: n + 1), start = best, runPrefix = best
        for j in stride(from: 1, through: n, by: 1) {
            best[j] = best[j - 1]; start[j] = j - 1                      // sequence j-1 alone
            var prefix = cap[j - 1], i = j - 1
            while i > 0 && prefix > 0 {                                  // the run i-1 ..< j
                prefix = min(prefix, common[i], cap[i - 1])
                i -= 1
                let saved = best[i] + (j - i - 1) * prefix
                if prefix > 0 && saved > best[j] { best[j] = saved; start[j] = i; runPrefix[j] = prefix }
            }
        }
        var found: [Group] = []
        var j = n
        while j > 0 {
            let i = start[j]
            if j - i > 1 { found.append(Group(members: Array(order[i..<j]), prefix: runPrefix[j])) } else { alone.append(order[i]) }
            j = i
        }
        if n > 0 && best[n] >= Self.minimumSaving {
            groups = found.reversed()
        } else {
            alone = Array(batch.indices)
        }
        alone.sort()
    }
}
