import Foundation

// The contextualization network: a standard GPT-2 trunk (docs/BACKPACK.md step 2).
// Shapes: N = rows of all sequences packed together, n = one sequence's length, d = n_embd,
// h = n_head, hd = d / h.

/// Keys and values of the positions seen so far, per layer, for incremental decoding.
final class KVCache: @unchecked Sendable {
    let capacity: Int, d: Int
    var length = 0
    let keys: [Buffer], values: [Buffer]        // per layer: (capacity, d)
    init(layers: Int, capacity: Int, d: Int) {
        self.capacity = capacity; self.d = d
        keys = (0..<layers).map { _ in Buffer(capacity * d) }
        values = (0..<layers).map { _ in Buffer(capacity * d) }
    }
}

struct TrunkLayer: Sendable {
    let index: Int
    let ln1: LayerNorm, attn: Dense, attnProj: Dense, ln2: LayerNorm, mlp: MLP
    let heads: Int
    let scoreScale: Float

    init(_ p: ParameterSet, index: Int) {
        let c = p.config
        self.index = index
        let names = ParameterTable.block(c, index)
        ln1 = LayerNorm(p, names.ln1)
        attn = Dense(p, names.attention)
        attnProj = Dense(p, names.attentionProjection)
        ln2 = LayerNorm(p, names.ln2)
        mlp = MLP(p, names.mlp)
        heads = c.nHead
        var scale: Float = 1
        if c.scaleAttnWeights ?? true { scale /= Float(c.headDim).squareRoot() }
        if c.scaleAttnByInverseLayerIdx ?? false { scale /= Float(index + 1) }  // the Backpack's inverse-layer scaling
        scoreScale = scale
    }

    /// z (N, d) += Attn(LN_1(z)); z += MLP(LN_2(z)), for sequences packed at `offsets` with `lengths`.
    /// A sequence with a cache (caches[s]) attends to the cached positions too: its keys and
    /// values are written after them (over those of an earlier sequence continuing the same
    /// cache), so sequences may share one cached prefix.
    func callAsFunction(_ z: UnsafeMutablePointer<Float>, rows: Int, offsets: [Int], lengths: [Int], caches: [KVCache?],
                        workspace w: TrunkWorkspace) {
        let d = attnProj.outputs, hd = d / heads
        let x = w.x, qkv = w.qkv, context = w.context, out = w.out
        ln1(z, rows: rows, into: x.pointer)                        // x (N, d)
        attn(x.pointer, rows: rows, into: qkv.pointer)             // qkv (N, 3d): q | k | v
                                                                   // context (N, d): heads side by side
        for (s, (offset, n)) in zip(offsets, lengths).enumerated() {
            let q = qkv.pointer + offset * 3 * d
            var keys = UnsafePointer(q + d), values = UnsafePointer(q + 2 * d)
            var keyStride = 3 * d, past = 0
            if let cache = caches[s] {
                // Append this step's keys and values, then attend over the whole cache.
                past = cache.length
                let kc = cache.keys[index].pointer, vc = cache.values[index].pointer
                for i in 0..<n {
                    (kc + (past + i) * d).update(from: q + i * 3 * d + d, count: d)
                    (vc + (past + i) * d).update(from: q + i * 3 * d + 2 * d, count: d)
                }
                keys = UnsafePointer(kc); values = UnsafePointer(vc); keyStride = d
            }
            let total = past + n
            let scores = Buffer(n * total)                          // (n, past + n)
            for head in 0..<heads {
                let c = head * hd
                // scores = q_h k_h^T * scale, causal, softmax over keys
                BLAS.gemm(transB: true, m: n, n: total, k: hd, alpha: scoreScale, a: q + c, lda: 3 * d,
                          b: keys + c, ldb: keyStride, c: scores.pointer, ldc: total)
                for i in 0..<n { Kernels.softmaxRow(scores.pointer + i * total, valid: past + i + 1, width: total) }
                // context_h = softmax v_h   (n, hd)
                BLAS.gemm(m: n, n: hd, k: total, a: scores.pointer, lda: total, b: values + c, ldb: keyStride,
                          c: context.pointer + offset * d + c, ldc: d)
            }
        }
        attnProj(context.pointer, rows: rows, into: out.pointer)
        Kernels.add(z, out.pointer, count: rows * d)
        ln2(z, rows: rows, into: x.pointer)
        mlp(x.pointer, rows: rows, into: out.pointer, hidden: w.hidden)
        Kernels.add(z, out.pointer, count: rows * d)
    }
}

/// z = E[ids] + P[positions]; the L blocks; hc = LN_f(z).
struct Trunk: Sendable {
    let wte: Weight, wpe: Weight
    let layers: [TrunkLayer]
    let lnF: LayerNorm
    let d: Int

    init(_ p: ParameterSet) {
        wte = p[ParameterTable.tokenEmbedding(p.config)]; wpe = p[ParameterTable.positionEmbedding(p.config)]
        layers = (0..<p.config.nLayer).map { TrunkLayer(p, index: $0) }
        lnF = LayerNorm(p, ParameterTable.finalNorm(p.config))
        d = p.config.nEmbd
    }

    /// sequences: token ids, already checked; startPosition: where the first id sits (cache length).
    /// With a cache (one sequence: a generation step), the sequence continues the cached
    /// positions and its keys and values are appended to the cache.
    /// Returns hc (N, d) for all rows, packed in order.
    func callAsFunction(_ sequences: [[Int]], startPosition: Int = 0, cache: KVCache? = nil) -> Buffer {
        self(sequences, startPositions: sequences.map { _ in startPosition },
             caches: sequences.map { _ in cache }, advance: cache != nil)
    }

    /// Each sequence s starts at startPositions[s] and, with caches[s], continues that cache's
    /// positions. `advance` appends each sequence's keys and values to its cache (each cache
    /// then belongs to one sequence); otherwise caches are only read, and several sequences may
    /// continue the same one.
    func callAsFunction(_ sequences: [[Int]], startPositions: [Int], caches: [KVCache?], advance: Bool) -> Buffer {
        let lengths = sequences.map(\.count)
        var offsets: [Int] = [], total = 0
        for n in lengths { offsets.append(total); total += n }
        let z = Buffer(total * d)                                   // (N, d)
        for (s, ids) in sequences.enumerated() {
            for (i, id) in ids.enumerated() {
                let row = z.pointer + (offsets[s] + i) * d
                let e = wte.pointer + id * d, p = wpe.pointer + (startPositions[s] + i) * d
                for c in 0..<d { row[c] = e[c] + p[c] }
            }
        }
        let workspace = TrunkWorkspace(rows: total, d: d, inner: layers.first?.mlp.fc.outputs ?? 4 * d)
        for layer in layers {
            layer(z.pointer, rows: total, offsets: offsets, lengths: lengths, caches: caches, workspace: workspace)
        }
        if advance { for (cache, n) in zip(caches, lengths) { cache?.length += n } }
        let hc = Buffer(total * d)
        lnF(z.pointer, rows: total, into: hc.pointer)
        return hc
    }
}

/// The activations of one block, allocated once per trunk call and reused by every layer: fresh
/// multi-megabyte buffers per layer would cost a page fault per 4 KiB page each time (large
/// buffers are mapped and unmapped, see the CLI's MemoryPolicy).
final class TrunkWorkspace: @unchecked Sendable {
    let x: Buffer, qkv: Buffer, context: Buffer, out: Buffer, hidden: Buffer
    init(rows: Int, d: Int, inner: Int) {
        x = Buffer(rows * d); qkv = Buffer(rows * 3 * d); context = Buffer(rows * d); out = Buffer(rows * d)
        hidden = Buffer(rows * inner)
    }
}
