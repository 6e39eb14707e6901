import BackpackModelFolder
import Foundation

// Several variants of one model on the same batch (the base model and its edits, as evaluation
// runs them). A sense edit changes only C, so:
//   - variants that share the base's contextualization (`sharesContextualization`) reuse its
//     alpha: the trunk runs once per batch for all of them;
//   - a variant that differs from the reference (the unedited model) only by word-level
//     overrides (same weights) has
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
//     R holds only the senses an edit set: the senses it left alone are the model's own vectors
//     (LanguageModel.overriddenSenses), so their difference is exactly 0. (Copied, they
//     differed by BLAS's rounding, and every edited id carried all k senses: R and C 16 times
//     too large, the update 30 % of a base pass at the published size.)
//   - the selected rows' logits are computed and scored `scoredRows` rows at a time, in buffers
//     reused by every variant of the batch, each chunk updated for the word-level children while
//     it is in memory: a batch's logits are never held whole.
//   - two precisions. When the scores are sums over rows (every row, or each sequence's scored
//     rows: `LogitSelection.sumsOverRows`), logits and updates are float32: the update's rounding
//     averages out over the rows. A few rows per sequence (`.last`, `.positions`: per-prompt
//     probabilities, `LanguageModel.takesExactLogits`) have exact logits: o's rows, P and w in
//     Double, the reference's rows of o E^T accumulated in Double (`exactLogits`), and each
//     variant's row rounded once to float32. Its own pass rounds the same exact value, so the
//     two give the same bits but at ties (an update in float32 moved a per-prompt probability by
//     2e-6 relative, beyond the 1e-6 every stored number keeps).
//   - vocabulary-wide edits (`scope: vocabulary`, LEACE) change every token's C: they share the
//     trunk but compute their own sense sums and logits.
//   - any other variant (an edit of wte: `target: input_embedding`) runs its own full pass.
// The results equal each variant's own forward pass up to float32 rounding of the logits (the
// updated rows of sums over rows; the rest is the same arithmetic as the variant's own pass).

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
    /// batch. Returns [variant][sequence][selected row]. Memory: one contextualization, the
    /// selected rows of o of its variants, and `scoredRows` rows of logits at a time.
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
        let scratch = RowScratch()
        // Logits updates when the scores are sums over rows (float32) or the rows are few
        // (exact, see the top of the file). Otherwise (many chosen positions of a sequence)
        // each variant runs its own sense sum and product: a float32 update would move a stored
        // per-prompt probability by 2e-6 relative.
        guard let first = models.first else { return [] }
        let positions = try batch.enumerated().map { try first.logitPositions(selection, sequence: $0.offset, length: $0.element.count) }
        let exact = LanguageModel.takesExactLogits(selection, positions: positions, lengths: batch.map(\.count))
        let updates = selection.sumsOverRows || exact
        for l in models.indices where leader[l] == l {
            // Each full variant's o and its children's update plans first, so that alpha (k n^2
            // per sequence: 34 MB for a batch of 1,024 tokens at the published size) is gone
            // before the logits are computed.
            var jobs: [RowJob] = []
            do {
                let context = try models[l].contextualize(batch)
                try visit(l, context)
                // The reference's logits for its edits of this trunk when it is not a variant itself.
                let orphans = models.indices.filter { updates && leader[$0] == l && parent[$0] == models.count }
                if let reference, !orphans.isEmpty {
                    jobs.append(try rowJob(of: reference, context: context, positions: positions, exact: exact, storedAs: nil, children: orphans))
                }
                for m in models.indices where leader[m] == l && (parent[m] == nil || !updates) {
                    let children = updates ? models.indices.filter { parent[$0] == m } : []
                    jobs.append(try rowJob(of: models[m], context: context, positions: positions, exact: exact, storedAs: m, children: children))
                }
            }
            for job in jobs { scoreAllRows(job, scratch, score, into: &results) }
        }
        return results
    }
}

extension VariantSet {
    /// Rows of logits computed and scored at a time when many rows are scored: the logits of a
    /// batch are never held whole (1,024 rows are 206 MB at the published size; 256 rows are
    /// 51 MB, and the output product of 256 rows ran within 4 % of 512's speed, 128 rows 21 %
    /// slower: BLAS packs E once per product).
    static let scoredRows = 256

    /// What scoring the selected rows of one full variant needs once its contextualization is
    /// gone: the selected rows of its o per sequence and its word-level children's update plans.
    struct RowJob {
        let model: LanguageModel
        let stored: Int?
        let children: [Int]
        /// per sequence, the rows of o at `positions` (rows, d): o itself when every row is
        /// selected; a copy of the few rows otherwise (the last row of a prompt: 520 prompts keep
        /// 0.3 MB per variant instead of their whole o). Empty when `exact`.
        let hidden: [[Float]]
        /// per sequence, the rows of o in Double (rows, d), when the logits are exact
        let exact: [[Double]]?
        /// the selected rows of each sequence
        let positions: [[Int]]
        let plans: [WordUpdate?]
        /// the children's update plans when the logits are exact (P is computed per child as its
        /// rows are scored: `scoreExactRows`)
        let exactPlans: [UpdatePlan?]
    }

    func rowJob(of model: LanguageModel, context: Contextualization, positions: [[Int]], exact: Bool, storedAs stored: Int?,
                children: [Int]) throws -> RowJob {
        let d = model.config.nEmbd
        func rows(_ o: UnsafePointer<Float>, _ s: Int) -> [Float] {      // the selected rows of o (n, d)
            positions[s].flatMap { Array(UnsafeBufferPointer(start: o + $0 * d, count: d)) }
        }
        if exact && model.isBackpack {
            guard model.sharesContextualization(with: context.source) else {
                throw ModelError(file: "contextualization", reason: "computed by a model with other trunk weights; run this variant's own contextualize")
            }
            let table = model.senseVectors(context.batch.flatMap { $0 })
            let hidden = context.batch.indices.map { s in
                [Double](unsafeUninitializedCapacity: positions[s].count * d) { out, initialized in
                    if !positions[s].isEmpty {
                        model.senseRows(context.batch[s], alpha: context.perSequence[s].pointer, rows: positions[s], table: table, into: out.baseAddress!)
                    }
                    initialized = positions[s].count * d
                }
            }
            return RowJob(model: model, stored: stored, children: children, hidden: [], exact: hidden, positions: positions, plans: [],
                          exactPlans: children.map { models[$0].updatePlan(of: model, context: context, positions: positions) })
        }
        let hidden: [[Float]]
        if !model.isBackpack {                                           // plain GPT-2: hc's rows
            hidden = try model.outputs(context, options: ForwardOptions(logits: .none)).enumerated().map { s, out in
                out.hidden.withUnsafeBufferPointer { rows($0.baseAddress!, s) }
            }
        } else {
            guard model.sharesContextualization(with: context.source) else {
                throw ModelError(file: "contextualization", reason: "computed by a model with other trunk weights; run this variant's own contextualize")
            }
            let table = model.senseVectors(context.batch.flatMap { $0 })
            // Per sequence, as `outputs` sums them: a few rows by senseRows, otherwise the
            // product over every row (senseSum) and its selected rows.
            let workspace = SenseSumWorkspace()
            hidden = context.batch.indices.map { s in
                if positions[s].isEmpty { return [] }
                let ids = context.batch[s], alpha = context.perSequence[s]
                if !LanguageModel.sumsRowsDirectly(positions[s].count, of: ids.count) {
                    let o = model.senseSum(ids, alpha: alpha, table: table, workspace: workspace).o
                    return positions[s] == Array(ids.indices) ? o.array : rows(o.pointer, s)
                }
                return [Float](unsafeUninitializedCapacity: positions[s].count * d) { out, initialized in
                    model.senseRows(ids, alpha: alpha.pointer, rows: positions[s], table: table, into: out.baseAddress!)
                    initialized = positions[s].count * d
                }
            }
        }
        return RowJob(model: model, stored: stored, children: children, hidden: hidden, exact: nil, positions: positions,
                      plans: children.map { models[$0].wordUpdate(of: model, context: context, positions: positions) }, exactPlans: [])
    }

    /// The buffers every job of one `score` call computes its logits in: allocated once, so a
    /// variant's rows land in memory already mapped. (Fresh per variant, the demo's 520 pronoun
    /// prompts' logits, 17 MB, and their copies were a third of a sweep point: page faults.)
    final class RowScratch: @unchecked Sendable {
        private var buffers: (logits: Buffer, gathered: Buffer)?
        func buffers(vocabulary V: Int, width d: Int) -> (logits: Buffer, gathered: Buffer) {
            if let buffers, buffers.logits.count == VariantSet.scoredRows * V, buffers.gathered.count == VariantSet.scoredRows * d {
                return buffers
            }
            let made = (Buffer(VariantSet.scoredRows * V), Buffer(VariantSet.scoredRows * d))
            buffers = made
            return made
        }
        /// The Double buffers of exact logits (`scoreExactRows`): z, the gathered rows of o, and a
        /// child's P. Reused, so a sweep's points do not fault in fresh pages each.
        enum Exact: Int { case logits, rows, product }
        private var doubles = [DoubleBuffer(0), DoubleBuffer(0), DoubleBuffer(0)]
        func exactBuffer(_ which: Exact, count: Int) -> DoubleBuffer {
            if doubles[which.rawValue].count < count { doubles[which.rawValue] = DoubleBuffer(count) }
            return doubles[which.rawValue]
        }
    }

    /// Every selected row of the job's logits, `scoredRows` rows at a time: scored as
    /// `results[stored]` (unless nil: the reference of a shard), and each chunk updated for every
    /// word-level child and scored as `results[child]`. The children's updates of a chunk run two
    /// at a time: an update is a single-threaded pass over V per reached row, during which BLAS's
    /// threads would sit idle. Each variant's numbers are computed as when it is alone; only the
    /// order of the work changes.
    func scoreAllRows<T>(_ job: RowJob, _ scratch: RowScratch, _ score: (Int, Int, UnsafeBufferPointer<Float>) -> T,
                         into results: inout [[[T]]]) {
        let model = job.model, d = model.config.nEmbd, V = model.config.vocabSize
        // The batch's selected rows in order, packed into chunks of up to `scoredRows`: a long
        // sequence fills chunks of its own, short ones (sentences of a few tokens, the last row
        // of each prompt) share one product, so E is read once for many of them.
        var chunks: [[WordUpdate.Segment]] = [[]], filled = 0
        for (s, positions) in job.positions.enumerated() {
            var start = 0
            while start < positions.count {
                if filled == Self.scoredRows { chunks.append([]); filled = 0 }
                let end = min(positions.count, start + Self.scoredRows - filled)
                chunks[chunks.count - 1].append(WordUpdate.Segment(sequence: s, rows: start..<end, offset: filled))
                filled += end - start; start = end
            }
        }
        if job.exact != nil { return scoreExactRows(job, chunks: chunks, scratch, score, into: &results) }
        let (logits, gathered) = scratch.buffers(vocabulary: V, width: d)
        var own = job.positions.map { _ in [T]() }
        var theirs = [[[T]]](repeating: job.positions.map { _ in [] }, count: job.children.count)
        for segments in chunks where !segments.isEmpty {
            let rows = segments.reduce(0) { $0 + $1.rows.count }
            if segments.count == 1 {                                     // consecutive rows of one sequence's
                let g = segments[0]
                job.hidden[g.sequence].withUnsafeBufferPointer { o in
                    model.logits(of: o.baseAddress! + g.rows.lowerBound * d, rows: rows, into: logits.pointer)
                }
            } else {
                for g in segments {
                    job.hidden[g.sequence].withUnsafeBufferPointer { o in
                        (gathered.pointer + g.offset * d).update(from: o.baseAddress! + g.rows.lowerBound * d, count: g.rows.count * d)
                    }
                }
                model.logits(of: gathered.pointer, rows: rows, into: logits.pointer)
            }
            let base = Self.scoreRows(segments, positions: job.positions, logits: logits, vocabulary: V, score)
            for (g, b) in zip(segments, base) { own[g.sequence] += b }
            let updated = WordUpdate.scores(job.plans, segments: segments, positions: job.positions, logits: logits, base: base, score)
            for c in job.children.indices {
                for (g, u) in zip(segments, updated[c]) { theirs[c][g.sequence] += u }
            }
        }
        if let stored = job.stored { results[stored] = own }
        for (c, v) in job.children.enumerated() { results[v] = theirs[c] }
    }
}

extension VariantSet {
    /// Rows of exact logits held at a time (their Double rows: 128 MB at most; all 520 prompts of
    /// the demo, 333 rows at the published size).
    static func exactGroupRows(vocabulary V: Int) -> Int { max(LanguageModel.exactRows, (128 << 20) / (8 * V)) }

    /// `scoreAllRows` for exact logits (`LanguageModel.takesExactLogits`), a group of chunks at a
    /// time: the group's rows of o E^T in Double (`exactLogits`), each rounded once and scored as
    /// `results[stored]`; then child by child, its P = dC E^T in Double into one reused buffer
    /// and its rows, z + W P rounded once (ExactWordUpdate). Child by child rather than chunk by
    /// chunk: every child's P at once was 377 MB for the demo's 64-point sweep (R = 90 rows of
    /// V Doubles each), and faulting it in was a quarter of the sweep's time.
    func scoreExactRows<T>(_ job: RowJob, chunks: [[WordUpdate.Segment]], _ scratch: RowScratch,
                           _ score: (Int, Int, UnsafeBufferPointer<Float>) -> T, into results: inout [[[T]]]) {
        guard let exact = job.exact else { return }
        let model = job.model, d = model.config.nEmbd, V = model.config.vocabSize
        let (logits, _) = scratch.buffers(vocabulary: V, width: d)
        var own = job.positions.map { _ in [T]() }
        var theirs = [[[T]]](repeating: job.positions.map { _ in [] }, count: job.children.count)
        let chunks = chunks.filter { !$0.isEmpty }
        let perGroup = max(1, Self.exactGroupRows(vocabulary: V) / Self.scoredRows)
        for first in stride(from: 0, to: chunks.count, by: perGroup) {
            let group = chunks[first..<min(chunks.count, first + perGroup)]
            let rows = group.map { $0.reduce(0) { $0 + $1.rows.count } }, total = rows.reduce(0, +)
            let z = scratch.exactBuffer(.logits, count: total * V), o = scratch.exactBuffer(.rows, count: total * d)
            var start: [Int] = [], at = 0                                    // each chunk's first row of the group
            for (segments, count) in zip(group, rows) {
                start.append(at)
                for g in segments {
                    exact[g.sequence].withUnsafeBufferPointer { rowsOfO in
                        (o.pointer + (at + g.offset) * d).update(from: rowsOfO.baseAddress! + g.rows.lowerBound * d, count: g.rows.count * d)
                    }
                }
                at += count
            }
            model.exactLogits(of: o.pointer, rows: total, into: z.pointer)
            for (segments, (begin, count)) in zip(group, zip(start, rows)) {
                for e in 0..<(count * V) { logits.pointer[e] = Float(z.pointer[begin * V + e]) }
                let base = Self.scoreRows(segments, positions: job.positions, logits: logits, vocabulary: V, score)
                for (g, b) in zip(segments, base) { own[g.sequence] += b }
            }
            for (c, plan) in job.exactPlans.enumerated() {
                guard let plan else {                                          // no sense vector of the batch differs
                    for segments in group { for g in segments { theirs[c][g.sequence] += own[g.sequence][g.rows] } }
                    continue
                }
                let P = scratch.exactBuffer(.product, count: plan.rows * V)
                plan.dC.withUnsafeBufferPointer { model.exactLogits(of: $0.baseAddress!, rows: plan.rows, into: P.pointer) }
                let update = ExactWordUpdate(vocabulary: V, P: P, sequences: plan.sequences)
                for (segments, begin) in zip(group, start) {
                    let mine = update.scores(segments, positions: job.positions, logits: z.pointer + begin * V,
                                             base: segments.map { Array(own[$0.sequence][$0.rows]) }, score)
                    for (g, u) in zip(segments, mine) { theirs[c][g.sequence] += u }
                }
            }
        }
        if let stored = job.stored { results[stored] = own }
        for (c, v) in job.children.enumerated() { results[v] = theirs[c] }
    }
}

extension VariantSet {
    /// The scores of a chunk's rows of `logits` ([segment][row]), the rows split between two
    /// threads: a score is a single-threaded pass over V (the log-sum-exp), during which BLAS's
    /// threads would sit idle (the 520 pronoun prompts' rows of each sweep point were scored on
    /// one core). Each row's score is the same call on the same row, whichever thread makes it.
    static func scoreRows<T>(_ segments: [WordUpdate.Segment], positions: [[Int]], logits: Buffer, vocabulary V: Int,
                             _ score: (Int, Int, UnsafeBufferPointer<Float>) -> T) -> [[T]] {
        // (sequence, position, row of the chunk) of every row, in order
        let rows = segments.flatMap { g in positions[g.sequence][g.rows].enumerated().map { (g.sequence, $0.element, g.offset + $0.offset) } }
        func one(_ k: Int, _ score: (Int, Int, UnsafeBufferPointer<Float>) -> T) -> T {
            let (s, p, r) = rows[k]
            return score(s, p, UnsafeBufferPointer(start: logits.pointer + r * V, count: V))
        }
        let flat = rows.count < 16 ? rows.indices.map { one($0, score) } : concurrentMap(rows.count, threads: 2) { one($0, score) }
        var grouped: [[T]] = [], k = 0
        for g in segments { grouped.append(Array(flat[k..<(k + g.rows.count)])); k += g.rows.count }
        return grouped
    }
}

/// `body(k)` for k in 0 ..< count, in order, computed by `threads` threads (each a contiguous block
/// of k). `body` must be safe to call from several threads: the scorers it calls only read what
/// they capture, and each result is written by one thread.
func concurrentMap<R>(_ count: Int, threads: Int, _ body: (Int) -> R) -> [R] {
    let out = UnsafeMutablePointer<R?>.allocate(capacity: count)
    out.initialize(repeating: nil, count: count)
    defer { out.deinitialize(count: count); out.deallocate() }
    let slots = UnsafeShared(out), block = (count + threads - 1) / max(1, threads)
    withoutActuallyEscaping(body) { body in
        let shared = UnsafeShared(body)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for k in (t * block)..<min(count, (t + 1) * block) { slots.value[k] = shared.value(k) }
        }
    }
    return (0..<count).map { out[$0]! }
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

    /// The logits of `rows` rows of o (rows, d): o E^T into `out` (rows, V).
    func logits(of hidden: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>) {
        let d = config.nEmbd, V = config.vocabSize
        BLAS.gemm(transB: true, m: rows, n: V, k: d, a: hidden, lda: d, b: embedding.pointer, ldb: d, c: out, ldc: V)
    }

    /// What a word-level update of `base`'s logits on one batch needs, in either precision (see
    /// the top of the file), or nil when no sense vector of the batch differs: dC (R, d) in
    /// Double (each entry the exact difference of two floats), and per sequence the C rows of P
    /// whose ids occur in it and W (reached rows, C) summed in float32 and in Double.
    func updatePlan(of base: LanguageModel, context: Contextualization, positions: [[Int]]) -> UpdatePlan? {
        let d = config.nEmbd, k = config.senses
        let present = Set(context.batch.joined())
        let candidates = present.filter { senseOverrides[$0] != nil || base.senseOverrides[$0] != nil }.sorted()
        let mine = senseVectors(candidates), theirs = base.senseVectors(candidates)
        var pairs: [Int: [(sense: Int, r: Int)]] = [:]                       // id -> rows of P
        var dC: [Double] = []                                                // (R, d)
        for id in candidates {
            guard let a = mine[id], let b = theirs[id] else { continue }
            for l in 0..<k {
                let delta = (0..<d).map { Double(a[l * d + $0]) - Double(b[l * d + $0]) }
                if delta.contains(where: { $0 != 0 }) {
                    pairs[id, default: []].append((l, dC.count / d)); dC += delta
                }
            }
        }
        let R = dC.count / d
        if R == 0 { return nil }
        // Per sequence, W (rows, C): w[i, r] for the rows the edit reaches and the C rows of P
        // whose ids occur in the sequence (a sequence holds a few of the edited words: the update
        // costs C V per row, not R V).
        var sequences: [UpdatePlan.Sequence?] = []
        for (s, ids) in context.batch.enumerated() {
            let n = ids.count, alpha = context.perSequence[s].pointer          // (k, n, n)
            let occurrences = ids.enumerated().filter { pairs[$0.element] != nil }
            // The sequence's columns of P, in P's order (by id, then sense): r -> c.
            var active = Set<Int>()
            for (_, id) in occurrences { for pair in pairs[id] ?? [] { active.insert(pair.r) } }
            let columns: [Int] = active.sorted()
            let C = columns.count
            if C == 0 { sequences.append(nil); continue }
            var column = [Int](repeating: -1, count: R)
            for (c, r) in columns.enumerated() { column[r] = c }
            var slot = [Int](repeating: -1, count: n)                        // position -> its row of W
            var W: [Float] = [], exactW: [Double] = []                       // (reached rows, C)
            var w = [Float](repeating: 0, count: C), exactRow = [Double](repeating: 0, count: C)
            for i in positions[s] {
                var reached = false
                for (j, id) in occurrences where j <= i {
                    for (l, r) in pairs[id] ?? [] {
                        let a = alpha[(l * n + i) * n + j]
                        if a != 0 { w[column[r]] += a; exactRow[column[r]] += Double(a); reached = true }
                    }
                }
                if reached { slot[i] = W.count / C; W += w; exactW += exactRow }
                for c in 0..<C { w[c] = 0; exactRow[c] = 0 }
            }
            sequences.append(UpdatePlan.Sequence(columns: columns, W: W, exactW: exactW, slot: slot))
        }
        return UpdatePlan(dC: dC, rows: R, sequences: sequences)
    }

    /// This variant's float32 update of `base`'s logits on one batch (sums over rows), or nil
    /// when no sense vector of the batch differs: P = dC_R E^T and, per sequence, W.
    func wordUpdate(of base: LanguageModel, context: Contextualization, positions: [[Int]]) -> WordUpdate? {
        guard let plan = updatePlan(of: base, context: context, positions: positions) else { return nil }
        let d = config.nEmbd, V = config.vocabSize, R = plan.rows
        let P = Buffer(R * V)                                                // dC E^T  (R, V)
        plan.dC.map { Float($0) }.withUnsafeBufferPointer { a in
            BLAS.gemm(transB: true, m: R, n: V, k: d, a: a.baseAddress!, lda: d, b: embedding.pointer, ldb: d,
                      c: P.pointer, ldc: V)
        }
        let sequences = plan.sequences.map { seq -> WordUpdate.Sequence? in
            guard let seq else { return nil }
            let C = seq.columns.count
            let Pc: Buffer
            if C == R { Pc = P } else {
                Pc = Buffer(C * V)
                for (c, r) in seq.columns.enumerated() { (Pc.pointer + c * V).update(from: P.pointer + r * V, count: V) }
            }
            return WordUpdate.Sequence(P: Pc, columns: C, W: seq.W, slot: seq.slot)
        }
        return WordUpdate(vocabulary: V, sequences: sequences)
    }
}

/// A word-level update of one batch before its products: see `LanguageModel.updatePlan`.
struct UpdatePlan {
    struct Sequence {
        let columns: [Int]                  // the rows of P (edited (id, sense) pairs) that occur
        let W: [Float]                      // (reached rows, C)
        let exactW: [Double]                // the same sums in Double
        let slot: [Int]                     // row -> its row of W, -1: not reached
    }
    let dC: [Double]                        // (R, d)
    let rows: Int                           // R
    let sequences: [Sequence?]
}

/// One word-level variant's update of its reference's logits on one batch: row i of sequence s
/// gains W[slot[i]] P (C rows of P: the edited (id, sense) pairs that occur in the sequence).
struct WordUpdate: @unchecked Sendable {
    struct Sequence {
        let P: Buffer                       // (C, V)
        let columns: Int                    // C
        let W: [Float]                      // (reached rows, C)
        let slot: [Int]                     // row -> its row of W, -1: not reached (base's row)
    }
    let vocabulary: Int
    let sequences: [Sequence?]

    /// Up to this many columns of P, rows are updated one at a time (`addLowRank`).
    static let fusedColumns = 16
    /// Rows updated by one product beyond `fusedColumns` (64 x V floats: 13 MB at the published size).
    static let blockRows = 64

    /// Selected rows `rows` (indices into the sequence's positions) of one sequence, at row
    /// `offset` of a chunk of logits.
    struct Segment: Sendable {
        let sequence: Int
        let rows: Range<Int>
        let offset: Int
    }

    /// Each plan's scores of a chunk's segments ([plan][segment][row]), from the reference's
    /// logits of the chunk and its scores `base` ([segment][row]); two plans at a time.
    static func scores<T>(_ plans: [WordUpdate?], segments: [Segment], positions: [[Int]], logits: Buffer, base: [[T]],
                          _ score: (Int, Int, UnsafeBufferPointer<Float>) -> T) -> [[[T]]] {
        func all(_ plan: WordUpdate?, _ score: (Int, Int, UnsafeBufferPointer<Float>) -> T) -> [[T]] {
            guard let plan else { return base }
            return zip(segments, base).map { g, b in
                plan.scores(g, positions: positions[g.sequence], logits: logits.pointer + g.offset * plan.vocabulary, base: b, score)
            }
        }
        if plans.count < 2 { return plans.map { all($0, score) } }
        return concurrentMap(plans.count, threads: plans.count) { all(plans[$0], score) }
    }

    /// This variant's scores of one segment, from the reference's logits of its rows
    /// (`logits`, (rows, V)) and scores: base's where the edit does not reach.
    func scores<T>(_ g: Segment, positions: [Int], logits: UnsafePointer<Float>, base: [T],
                   _ score: (Int, Int, UnsafeBufferPointer<Float>) -> T) -> [T] {
        let s = g.sequence, rows = g.rows
        guard let seq = sequences[s] else { return base }
        let V = vocabulary, C = seq.columns
        let reached = rows.filter { seq.slot[positions[$0]] >= 0 }
        if reached.isEmpty { return base }
        var mine = base
        seq.W.withUnsafeBufferPointer { W in
            if C <= Self.fusedColumns {
                // Few columns (a sequence holds one or two of the edited words): each row is
                // base + W P_C in one pass over V into one scratch row, which the score then reads
                // while it is in cache. A copy and a BLAS product per block of rows cost 3 times
                // as much, most of it the copy and BLAS's setup of a product of inner size C.
                let row = Buffer(V)
                for i in reached {
                    Self.addLowRank(base: logits + (i - rows.lowerBound) * V, weights: W.baseAddress! + seq.slot[positions[i]] * C,
                                    rows: seq.P.pointer, count: C, width: V, into: row.pointer)
                    mine[i - rows.lowerBound] = score(s, positions[i], UnsafeBufferPointer(start: row.pointer, count: V))
                }
                return
            }
            // Many columns: blocks of reached rows copied, then rows += W P_C in one product (P_C
            // is read once per block; row by row, a projection edit's P, 30 MB at the published
            // size, was read once per row and the update ran at memory speed).
            let size = min(Self.blockRows, reached.count)
            let block = Buffer(size * V), Wr = Buffer(size * C)
            for first in stride(from: 0, to: reached.count, by: size) {
                let these = reached[first..<min(reached.count, first + size)]
                for (b, i) in these.enumerated() {
                    (block.pointer + b * V).update(from: logits + (i - rows.lowerBound) * V, count: V)
                    (Wr.pointer + b * C).update(from: W.baseAddress! + seq.slot[positions[i]] * C, count: C)
                }
                BLAS.gemm(m: these.count, n: V, k: C, a: Wr.pointer, lda: C, b: seq.P.pointer, ldb: V,
                          beta: 1, c: block.pointer, ldc: V)
                for (b, i) in these.enumerated() {
                    mine[i - rows.lowerBound] = score(s, positions[i], UnsafeBufferPointer(start: block.pointer + b * V, count: V))
                }
            }
        }
        return mine
    }

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
}

/// One word-level variant's exact update of its reference's logits on one batch (a few rows per
/// sequence, `LanguageModel.takesExactLogits`): row i of sequence s is the reference's row z_i of
/// o E^T in Double plus W[slot[i]] P over the sequence's columns of P, in Double, rounded once.
struct ExactWordUpdate: @unchecked Sendable {
    let vocabulary: Int
    let P: DoubleBuffer                     // (R, V)
    let sequences: [UpdatePlan.Sequence?]

    /// This variant's scores of a chunk's segments ([segment][row]), from the reference's exact
    /// logits of the chunk (`logits`, (rows, V) Double, segment g at row g.offset) and scores
    /// `base`: base's where the edit does not reach. The reached rows are split between two
    /// threads (a row is a pass over V: its update, then the score's log-sum-exp); each row is
    /// the same arithmetic whichever thread makes it.
    func scores<T>(_ segments: [WordUpdate.Segment], positions: [[Int]], logits: UnsafePointer<Double>, base: [[T]],
                   _ score: (Int, Int, UnsafeBufferPointer<Float>) -> T) -> [[T]] {
        let V = vocabulary
        var reached: [(segment: Int, row: Int)] = []
        for (k, g) in segments.enumerated() {
            guard let seq = sequences[g.sequence] else { continue }
            for r in g.rows where seq.slot[positions[g.sequence][r]] >= 0 { reached.append((k, r)) }
        }
        var mine = base
        if reached.isEmpty { return mine }
        let threads = reached.count < 16 ? 1 : 2, block = (reached.count + threads - 1) / threads
        let rowsOfThreads = (0..<threads).map { _ in Buffer(V) }
        // each segment's rows of P, once (not per reached row)
        let columnsOf = segments.map { g in sequences[g.sequence].map { $0.columns.map { UnsafePointer(P.pointer + $0 * V) } } ?? [] }
        let scored = concurrentMap(threads, threads: threads) { t -> [T] in
            let row = rowsOfThreads[t].pointer
            return reached[(t * block)..<min(reached.count, (t + 1) * block)].map { k, r in
                let g = segments[k], s = g.sequence, seq = sequences[s]!, i = positions[s][r]
                let C = seq.columns.count
                return seq.exactW.withUnsafeBufferPointer { W in
                    let w = W.baseAddress! + seq.slot[i] * C, z = logits + (g.offset + r - g.rows.lowerBound) * V
                    let columns = columnsOf[k]
                    var v = 0
                    while v + 8 <= V {
                        var acc = UnsafeRawPointer(z + v).loadUnaligned(as: SIMD8<Double>.self)
                        for c in 0..<C { acc += w[c] * UnsafeRawPointer(columns[c] + v).loadUnaligned(as: SIMD8<Double>.self) }
                        UnsafeMutableRawPointer(row + v).storeBytes(of: SIMD8<Float>(acc), as: SIMD8<Float>.self)
                        v += 8
                    }
                    while v < V {
                        var x = z[v]
                        for c in 0..<C { x += w[c] * columns[c][v] }
                        row[v] = Float(x)
                        v += 1
                    }
                    return score(s, i, UnsafeBufferPointer(start: row, count: V))
                }
            }
        }
        for ((k, r), value) in zip(reached, scored.joined()) { mine[k][r - segments[k].rows.lowerBound] = value }
        return mine
    }
}
