import Foundation

// The sense network C(x) (docs/BACKPACK.md step 1): position-independent, so it runs once per
// distinct token id and its output is cached. Shapes: u = distinct ids, d = n_embd, k = senses.

struct SenseNetwork: Sendable {
    let wte: Weight
    let ln: LayerNorm, ln1: LayerNorm, mlp: MLP, ln2: LayerNorm, final: MLP
    let d: Int, k: Int

    /// Every parameter of the sense network starts with this; edits of these alone leave the
    /// contextualization unchanged (LanguageModel.sharesContextualization).
    static let prefix = "backpack.sense_network."

    init(_ p: ParameterSet) {
        let s = ParameterTable.senseNetwork
        wte = p[ParameterTable.tokenEmbedding(p.config)]
        ln = LayerNorm(p, s.ln); ln1 = LayerNorm(p, s.blockLn1); mlp = MLP(p, s.blockMLP)
        ln2 = LayerNorm(p, s.blockLn2); final = MLP(p, s.finalMLP)
        d = p.config.nEmbd; k = p.config.senses
    }

    /// ids (u) -> senses (u, k*d): row j holds C(ids[j]) with sense l at columns l*d ..< (l+1)*d.
    func callAsFunction(_ ids: [Int]) -> Buffer {
        let u = ids.count
        let x0 = Buffer(u * d)                                       // E[ids] (u, d)
        for (j, id) in ids.enumerated() { (x0.pointer + j * d).update(from: wte.pointer + id * d, count: d) }
        let r = Buffer(u * d), t = Buffer(u * d)
        ln(x0.pointer, rows: u, into: r.pointer)                     // a = LN(x0)
        Kernels.add(r.pointer, x0.pointer, count: u * d)             // r = a + x0  (NoMixBlock residual)
        ln1(r.pointer, rows: u, into: t.pointer)                     // b = LN_1(r)
        mlp(t.pointer, rows: u, into: x0.pointer)                    // MLP(b)
        Kernels.add(r.pointer, x0.pointer, count: u * d)             // r = MLP(b) + r
        ln2(r.pointer, rows: u, into: t.pointer)                     // c = LN_2(r)
        let s = Buffer(u * k * d)                                    // (u, k*d)
        final(t.pointer, rows: u, into: s.pointer)
        return s
    }
}

/// Sense vectors per token id, computed once and reused across sequences, batches and
/// evaluation variants. Thread-safe; bounded: past `capacity` ids, the least recently used go
/// (a text's frequent words stay; the rare ones, most of its distinct ids, are seldom seen again).
public final class SenseCache: @unchecked Sendable {
    private var rows: [Int: (vector: [Float], used: Int)] = [:]   // id -> (k*d), last use
    private var clock = 0
    private let lock = NSLock()
    public let capacity: Int

    public init(capacity: Int) { self.capacity = capacity }

    func lookup(_ ids: some Sequence<Int>) -> [Int: [Float]] {
        lock.lock(); defer { lock.unlock() }
        clock += 1
        var found: [Int: [Float]] = [:]
        for id in ids {
            guard let r = rows[id] else { continue }
            found[id] = r.vector
            rows[id] = (r.vector, clock)
        }
        return found
    }

    /// Stores `new`, first evicting the least recently used ids beyond `capacity` (never the ones
    /// stored now, which the caller is about to use: a batch with more distinct ids than
    /// `capacity` keeps them all until the next store).
    func store(_ new: [Int: [Float]]) {
        lock.lock(); defer { lock.unlock() }
        clock += 1
        let excess = rows.count + new.count - capacity
        if excess > 0 {
            // ties by id: a dictionary's order differs from process to process, and which ids are
            // recomputed decides the rounding of a run's numbers
            let oldest = rows.lazy.filter { new[$0.key] == nil }.map { ($0.key, $0.value.used) }
                .sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
            for (id, _) in oldest.prefix(excess) { rows[id] = nil }
        }
        for (id, v) in new { rows[id] = (v, clock) }
    }

    public var count: Int { lock.lock(); defer { lock.unlock() }; return rows.count }
    public func removeAll() { lock.lock(); rows.removeAll(); lock.unlock() }
}

/// The sense weights alpha (docs/BACKPACK.md step 3): one key-query layer with k heads of size d/k,
/// no values, no output projection; mask -10000 on future positions.
struct SenseWeightNetwork: Sendable {
    let dense: Dense
    let d: Int, k: Int
    init(_ p: ParameterSet) {
        dense = Dense(p, ParameterTable.senseNetwork.weightNetwork, layout: .linear)
        d = p.config.nEmbd; k = p.config.senses
    }

    /// hc (n, d) -> q|k (n, 2d)
    func queriesAndKeys(_ hc: UnsafePointer<Float>, rows: Int) -> Buffer {
        let qk = Buffer(rows * 2 * d)
        dense(hc, rows: rows, into: qk.pointer)
        return qk
    }

    /// alpha (k, m, total) for m query rows at positions past ..< past+m over `total` keys.
    /// `queries` has row stride qStride; `keys` row stride kStride, both with heads side by side.
    func alpha(queries: UnsafePointer<Float>, qStride: Int, keys: UnsafePointer<Float>, kStride: Int,
               m: Int, past: Int) -> Buffer {
        let hd = d / k, total = past + m
        let scale = 1 / Float(hd).squareRoot()
        let a = Buffer(k * m * total)
        for l in 0..<k {
            let al = a.pointer + l * m * total
            BLAS.gemm(transB: true, m: m, n: total, k: hd, alpha: scale, a: queries + l * hd, lda: qStride,
                      b: keys + l * hd, ldb: kStride, c: al, ldc: total)
            // -10000 on j > i underflows to exactly 0 after exp in float32, as masking does.
            for i in 0..<m { Kernels.softmaxRow(al + i * total, valid: past + i + 1, width: total) }
        }
        return a
    }
}
