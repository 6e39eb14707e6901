import Foundation

// Several variants of one model on the same batch (the base model and its edits, as evaluation
// runs them). A sense edit changes only C, so:
//   - variants that share the base's contextualization (`sharesContextualization`) reuse its
//     alpha: the trunk runs once per batch for all of them;
//   - when every row is scored, a variant that differs from the reference (the unedited model)
//     only by word-level overrides (same weights) has
//     logits' = logits + dO E^T with dO = sum_l alpha[l] dC[l], and dC is non-zero only at the
//     occurrences of the edited ids. With R = the (id, sense) pairs whose vectors differ,
//     P = dC_R E^T (R, V) once per batch, and row i of the logits gains sum_r w[i, r] P[r],
//     w[i, r] = sum over occurrences j <= i of id_r of alpha[l_r][i][j]. Rows before the first
//     occurrence are the reference's, and so are their scores. The update is always of the
//     reference's logits (computed for the batch when the reference is not one of the variants),
//     never of another edit's: a variant's numbers do not depend on which variants run with it
//     (a shard of a sweep gives the numbers of the whole run, bit for bit; ShardTests).
//     Per reached row the update costs C V multiply-adds (C: the rows of P whose ids occur in
//     the sequence) and the score's log-sum-exp over V; a base row costs d V and its trunk.
//   - vocabulary-wide edits (`scope: vocabulary`, LEACE) change every token's C: they share the
//     trunk but compute their own sense sums and logits.
//   - any other variant (an edit of wte: `target: input_embedding`) runs its own full pass.
// The results equal each variant's own forward pass up to float32 rounding of the logits (the
// updated rows; the rest is the same arithmetic as the variant's own pass).

/// The base model and its variants, planned once: whose trunk each uses, and which variant's
/// logits it updates (if any).
public struct VariantSet: Sendable {
    public let models: [LanguageModel]
    /// leader[i]: the first variant whose contextualization variant i shares (i itself if none).
    public let leader: [Int]
    /// parent[i]: the reference, whose logits variant i updates (it differs from it only by
    /// word-level sense overrides): its index, or `models.count` when the reference is not one of
    /// the variants; nil: the variant's own full output.
    public let parent: [Int?]
    /// The model whose logits the word-level edits update: `reference`, or without one the first
    /// variant without overrides.
    let reference: LanguageModel?

    /// `reference` is the unedited model of a run (base); give it whenever `models` may be a
    /// subset of a run (a shard, a resumed run), so that every variant is computed the same way.
    public init(_ models: [LanguageModel], reference: LanguageModel? = nil) {
        let root = reference ?? models.first { $0.isBackpack && $0.senseOverrides.isEmpty }
        let rootIndex = root.flatMap { r in models.firstIndex { $0 === r } }
        var leader: [Int] = [], parent: [Int?] = []
        for (i, m) in models.enumerated() {
            let l = (0..<i).first { leader[$0] == $0 && m.sharesContextualization(with: models[$0]) } ?? i
            leader.append(l)
            let updates = root.map { i != rootIndex && !m.senseOverrides.isEmpty && m.differsOnlyInOverrides(from: $0) } ?? false
            parent.append(updates ? (rootIndex ?? models.count) : nil)
        }
        self.models = models; self.leader = leader; self.parent = parent; self.reference = root
    }

    /// `score(sequence, position, logits row (V))` for every selected row of every variant on one
    /// batch. Returns [variant][sequence][selected row]. Memory: one contextualization and one
    /// variant's logits of the batch at a time.
    public func score<T>(_ batch: [[Int]], logits selection: LogitSelection,
                         _ score: (_ sequence: Int, _ position: Int, _ row: UnsafeBufferPointer<Float>) -> T) throws -> [[[T]]] {
        try self.score(batch, logits: selection, score) { _, _ in }
    }

    /// `score`, handing each contextualization to `visit(leader, context)` before its variants
    /// are scored (attribution reads the same alpha).
    func score<T>(_ batch: [[Int]], logits selection: LogitSelection,
                  _ score: (_ sequence: Int, _ position: Int, _ row: UnsafeBufferPointer<Float>) -> T,
                  visiting visit: (_ leader: Int, _ context: Contextualization) throws -> Void) throws -> [[[T]]] {
        var results = [[[T]]](repeating: [], count: models.count)
        let V = models.first?.config.vocabSize ?? 0
        // Logits updates only when every row is scored (sequence log-likelihoods, perplexity:
        // the results are sums over rows, where the update's float32 rounding averages out, and
        // the output product is most of the cost). A few rows per sequence (last position) are
        // recomputed by the variant's own sense sum and product, as when it runs alone.
        let updates = selection == .all
        for l in models.indices where leader[l] == l {
            let context = try models[l].contextualize(batch)
            try visit(l, context)
            // The reference's outputs for its edits of this trunk when it is not a variant itself.
            let orphans = models.indices.filter { updates && leader[$0] == l && parent[$0] == models.count }
            if let reference, !orphans.isEmpty {
                let outputs = try reference.outputs(context, options: ForwardOptions(logits: selection))
                let scores = outputs.enumerated().map { s, out in
                    out.logits.withUnsafeBufferPointer { all in
                        out.logitPositions.enumerated().map { r, p in score(s, p, UnsafeBufferPointer(rebasing: all[(r * V)..<((r + 1) * V)])) }
                    }
                }
                self.updates(orphans, of: reference, context: context, outputs: outputs, scores: scores, score, into: &results)
            }
            for m in models.indices where leader[m] == l && (parent[m] == nil || !updates) {
                let outputs = try models[m].outputs(context, options: ForwardOptions(logits: selection))
                results[m] = outputs.enumerated().map { s, out in
                    out.logits.withUnsafeBufferPointer { all in
                        out.logitPositions.enumerated().map { r, p in
                            score(s, p, UnsafeBufferPointer(rebasing: all[(r * V)..<((r + 1) * V)]))
                        }
                    }
                }
                let children = models.indices.filter { updates && parent[$0] == m }
                self.updates(children, of: models[m], context: context, outputs: outputs, scores: results[m], score, into: &results)
            }
        }
        return results
    }
}

extension VariantSet {
    /// The word-level variants' scores from their parent's outputs, two variants at a time: an
    /// update is a single-threaded pass over V per reached row, during which BLAS's threads sit
    /// idle (a 64-point sweep on the demo model spent as long again waiting as updating). Each
    /// variant's numbers are computed as when it is alone; only the order of the work changes.
    func updates<T>(_ children: [Int], of parent: LanguageModel, context: Contextualization, outputs: [ForwardOutput], scores: [[T]],
                    _ score: (Int, Int, UnsafeBufferPointer<Float>) -> T, into results: inout [[[T]]]) {
        if children.count < 2 {
            for v in children { results[v] = models[v].scoreUpdate(of: parent, context: context, outputs: outputs, scores: scores, score) }
            return
        }
        // Each index is written by one thread; the scorers only read what they capture.
        let out = UnsafeMutablePointer<[[T]]?>.allocate(capacity: children.count)
        out.initialize(repeating: nil, count: children.count)
        defer { out.deinitialize(count: children.count); out.deallocate() }
        let slots = UnsafeShared(out), shared = UnsafeShared(scores), models = self.models
        withoutActuallyEscaping(score) { escapable in
            let scorer = UnsafeShared(escapable)
            DispatchQueue.concurrentPerform(iterations: children.count) { k in
                slots.value[k] = models[children[k]].scoreUpdate(of: parent, context: context, outputs: outputs,
                                                                 scores: shared.value, scorer.value)
            }
        }
        for (k, v) in children.enumerated() { results[v] = out[k] ?? [] }
    }
}

/// A value handed to other threads whose safety the caller states where it is used.
struct UnsafeShared<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

extension LanguageModel {
    /// Same config and the very same weights (storage), so only the override tables differ.
    public func differsOnlyInOverrides(from other: LanguageModel) -> Bool {
        guard isBackpack, config == other.config, parameters.weights.count == other.parameters.weights.count else { return false }
        for (name, w) in parameters.weights {
            guard let o = other.parameters.weights[name], o.pointer == w.pointer, o.shape == w.shape else { return false }
        }
        return true
    }

    /// Rows of logits updated by one product in `scoreUpdate` (64 x V floats: 13 MB at the
    /// published size).
    static let updateRows = 64
    /// Up to this many columns of P per sequence, rows are updated one at a time (`addLowRank`).
    static let fusedColumns = 16

    /// out = base + sum_c w[c] rows[c]  (width floats each): one logits row after a word-level edit.
    static func addLowRank(base: UnsafePointer<Float>, weights w: UnsafePointer<Float>, rows: UnsafePointer<Float>,
                           count C: Int, width V: Int, into out: UnsafeMutablePointer<Float>) {
        let b = UnsafeMutablePointer(mutating: base), r = UnsafeMutablePointer(mutating: rows)
        var v = 0
        while v + 16 <= V {
            var acc = VectorMath.load(b, v)
            for c in 0..<C { acc += w[c] * VectorMath.load(r + c * V, v) }
            VectorMath.store(acc, out, v)
            v += 16
        }
        while v < V {
            var x = base[v]
            for c in 0..<C { x += w[c] * rows[c * V + v] }
            out[v] = x
            v += 1
        }
    }

    /// This variant's scores from `base`'s outputs on the same contextualization (see the top of
    /// the file): base rows plus sum_r w[i, r] P[r]; rows the edit does not reach keep base's score.
    func scoreUpdate<T>(of base: LanguageModel, context: Contextualization, outputs: [ForwardOutput], scores: [[T]],
                        _ score: (Int, Int, UnsafeBufferPointer<Float>) -> T) -> [[T]] {
        let d = config.nEmbd, k = config.senses, V = config.vocabSize
        let present = Set(context.batch.joined())
        let candidates = present.filter { senseOverrides[$0] != nil || base.senseOverrides[$0] != nil }.sorted()
        let mine = senseVectors(candidates), theirs = base.senseVectors(candidates)
        var pairs: [Int: [(sense: Int, r: Int)]] = [:]                       // id -> rows of P
        var dC: [Float] = []                                                 // (R, d)
        for id in candidates {
            guard let a = mine[id], let b = theirs[id] else { continue }
            for l in 0..<k {
                let delta = (0..<d).map { a[l * d + $0] - b[l * d + $0] }
                if delta.contains(where: { $0 != 0 }) {
                    pairs[id, default: []].append((l, dC.count / d)); dC += delta
                }
            }
        }
        let R = dC.count / d
        if R == 0 { return scores }
        let P = Buffer(R * V)                                                // dC E^T  (R, V)
        dC.withUnsafeBufferPointer { a in
            BLAS.gemm(transB: true, m: R, n: V, k: d, a: a.baseAddress!, lda: d, b: embedding.pointer, ldb: d,
                      c: P.pointer, ldc: V)
        }
        // Per sequence, W (rows, C): w[i, r] for the rows the edit reaches and the C rows of P
        // whose ids occur in the sequence (a sequence holds a few of the edited words: the update
        // costs C V per row, not R V); their logits are base's plus W P_C, one product per block of
        // rows (P_C is read once per block: row by row, a projection edit's P, 30 MB at the
        // published size, was read once per row and the update ran at memory speed).
        let block = Self.updateRows
        // One scratch row for the one-pass update; a block of rows only for a sequence that
        // holds more than `fusedColumns` of P's rows (13 MB at the published size).
        let row = Buffer(V)
        var blockRows: Buffer?
        var results: [[T]] = []
        for (s, ids) in context.batch.enumerated() {
            let n = ids.count, alpha = context.perSequence[s].pointer          // (k, n, n)
            let occurrences = ids.enumerated().filter { pairs[$0.element] != nil }
            // The sequence's columns of P, in P's order (by id, then sense): r -> c.
            var active = Set<Int>()
            for (_, id) in occurrences { for pair in pairs[id] ?? [] { active.insert(pair.r) } }
            let columns: [Int] = active.sorted()
            let C = columns.count
            if C == 0 { results.append(scores[s]); continue }
            var column = [Int](repeating: -1, count: R)
            for (c, r) in columns.enumerated() { column[r] = c }
            let Pc: Buffer
            if C == R { Pc = P } else {
                Pc = Buffer(C * V)
                for (c, r) in columns.enumerated() { (Pc.pointer + c * V).update(from: P.pointer + r * V, count: V) }
            }
            let positions = outputs[s].logitPositions
            var touched: [Int] = []                                          // indices into positions
            var W: [Float] = []                                              // (touched, C)
            var w = [Float](repeating: 0, count: C)
            for (ri, i) in positions.enumerated() {
                var reached = false
                for (j, id) in occurrences where j <= i {
                    for (l, r) in pairs[id] ?? [] {
                        let a = alpha[(l * n + i) * n + j]
                        if a != 0 { w[column[r]] += a; reached = true }
                    }
                }
                if reached { touched.append(ri); W += w }
                for c in 0..<C { w[c] = 0 }
            }
            var mine = scores[s]                                             // rows the edit does not reach: base's
            if C <= Self.fusedColumns {
                // Few columns (a sequence holds one or two of the edited words): each row is
                // base + W P_C in one pass over V into one scratch row, which the score then reads
                // while it is in cache. A copy and a BLAS product per block of rows cost 3 times
                // as much, most of it the copy and BLAS's setup of a product of inner size C.
                outputs[s].logits.withUnsafeBufferPointer { all in
                    for (t, ri) in touched.enumerated() {
                        W.withUnsafeBufferPointer { w in
                            Self.addLowRank(base: all.baseAddress! + ri * V, weights: w.baseAddress! + t * C, rows: Pc.pointer,
                                            count: C, width: V, into: row.pointer)
                        }
                        mine[ri] = score(s, positions[ri], UnsafeBufferPointer(start: row.pointer, count: V))
                    }
                }
                results.append(mine)
                continue
            }
            let rows = blockRows ?? Buffer(block * V)
            blockRows = rows
            outputs[s].logits.withUnsafeBufferPointer { all in
                W.withUnsafeBufferPointer { w in
                    for start in stride(from: 0, to: touched.count, by: block) {
                        let m = min(block, touched.count - start)
                        for b in 0..<m { (rows.pointer + b * V).update(from: all.baseAddress! + touched[start + b] * V, count: V) }
                        BLAS.gemm(m: m, n: V, k: C, a: w.baseAddress! + start * C, lda: C, b: Pc.pointer, ldb: V,
                                  beta: 1, c: rows.pointer, ldc: V)               // rows += W P_C
                        for b in 0..<m {
                            let ri = touched[start + b]
                            mine[ri] = score(s, positions[ri], UnsafeBufferPointer(start: rows.pointer + b * V, count: V))
                        }
                    }
                }
            }
            results.append(mine)
        }
        return results
    }
}
