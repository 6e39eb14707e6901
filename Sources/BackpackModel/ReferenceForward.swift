import BackpackModelFolder
import Foundation

// The Backpack-GPT2 forward pass written as the equations of the paper (docs/BACKPACK.md), one
// sequence at a time: plain loops in Double, no caches, no prefix sharing, no batching, no BLAS.
// It is the readable statement of what the engine computes (LanguageModel, Trunk, SenseNetwork,
// Variants, Generation: float32, cached, batched) and the tests' oracle for it. Double keeps
// the oracle's own rounding (~1e-12 relative) far below the engine's float32, so a difference
// between the two measures the engine.
//
// Shapes:
//   n  tokens in the sequence              d  n_embd
//   k  num_senses (k sense heads of d/k)   h  n_head (h attention heads of d/h)
//   V  vocab_size                          L  n_layer
//
//   C      = FF(E x)                          (k, n, d)   sense network, per token (step 1)
//   hc     = GPT2(E x + P)                    (n, d)      contextualization trunk (step 2)
//   alpha  = softmax(q kk^T / sqrt(d/k))      (k, n, n)   sense weights, causal (step 3)
//   o      = sum_l alpha[l] @ C[l]            (n, d)      no LayerNorm, no division by k (step 4)
//   logits = o E^T                            (n, V)
// Plain GPT-2 (the Transformer baseline): logits = hc E^T.

/// The forward pass as equations (docs/BACKPACK.md). Reads the same `ParameterSet` and word-level
/// sense overrides as the engine; meant for reading and for checking the engine, not for speed.
///
///     let ref = try ReferenceForward.forward(model, ids: [464, 3290])
///     ref.logits[(i * V) + v]          // logit of token v after position i
public enum ReferenceForward {
    /// One sequence's tensors, row-major, in the layouts of `ForwardOutput` and the PyTorch fixtures.
    public struct Output: Sendable {
        /// C (k, n, d): sense l of token j at (l * n + j) * d. Empty for plain GPT-2.
        public let senses: [Double]
        /// alpha (k, n, n): weight of position j for position i in sense l at (l * n + i) * n + j.
        /// Empty for plain GPT-2.
        public let alpha: [Double]
        /// o (n, d), the sense sum; for plain GPT-2, hc = LN_f(trunk output).
        public let hidden: [Double]
        /// (n, V)
        public let logits: [Double]
    }

    /// The whole forward pass of `ids` under `model`'s weights and sense overrides. Throws for
    /// ids the model refuses (empty, out of range, longer than n_positions).
    public static func forward(_ model: LanguageModel, ids: [Int]) throws -> Output {
        try model.validate(ids, source: "reference forward")
        let p = Parameters(table: model.parameters), c = model.config
        let E = p.matrix(ParameterTable.tokenEmbedding(c))                 // (V, d)
        // The output embedding: E (tied), or lm_head.weight (V, d) when untied (an input-embedding edit).
        let Eout = model.parameters.weights[ParameterTable.outputEmbedding] == nil ? E : p.matrix(ParameterTable.outputEmbedding)
        let x = ids.map { E[$0] }                                          // E x  (n, d)
        let hc = trunk(p, x)                                               // (n, d)
        guard c.architecture == .backpack else {
            return Output(senses: [], alpha: [], hidden: flat(hc), logits: flat(timesTransposed(hc, Eout)))
        }
        let C = senses(p, ids, x, overrides: model.senseOverrides)         // (k, n, d)
        let alpha = senseWeights(p, hc)                                    // (k, n, n)
        var o = zeros(ids.count, c.nEmbd)                                  // (n, d)
        for l in 0..<c.senses { o = add(o, times(alpha[l], C[l])) }        // o = sum_l alpha[l] @ C[l]
        let logits = timesTransposed(o, Eout)                              // o E^T  (n, V)
        return Output(senses: C.flatMap(flat), alpha: alpha.flatMap(flat), hidden: flat(o), logits: flat(logits))
    }

    // MARK: Step 1: the sense network C = FF(E x), position by position

    /// C (k, n, d). A token with a word-level edit (LanguageModel.senseOverrides: k*d values,
    /// sense l at l*d) takes its k edited vectors in place of the network's.
    static func senses(_ p: Parameters, _ ids: [Int], _ x: Matrix, overrides: [Int: [Float]]) -> [Matrix] {
        let s = ParameterTable.senseNetwork, d = p.config.nEmbd
        var r = add(layerNorm(p, x, s.ln), x)                              // (n, d)  NoMixBlock: LN(x) + x
        r = add(mlp(p, layerNorm(p, r, s.blockLn1), s.blockMLP), r)        // (n, d)  + MLP(LN_1(r))
        let f = mlp(p, layerNorm(p, r, s.blockLn2), s.finalMLP)            // (n, k*d)
        let rows = ids.indices.map { j in overrides[ids[j]].map { $0.map(Double.init) } ?? f[j] }   // (n, k*d)
        return (0..<p.config.senses).map { l in rows.map { Array($0[(l * d)..<((l + 1) * d)]) } }  // C[l] (n, d)
    }

    // MARK: Step 2: the GPT-2 trunk hc = GPT2(E x + P)

    /// hc (n, d): z = E x + P; L blocks of z = z + attn(LN_1(z)); z = z + mlp(LN_2(z)); then LN_f.
    static func trunk(_ p: Parameters, _ x: Matrix) -> Matrix {
        let c = p.config
        let P = p.matrix(ParameterTable.positionEmbedding(c))              // (n_positions, d)
        var z = x.indices.map { i in zip(x[i], P[i]).map(+) }             // E x + P  (n, d)
        for layer in 0..<c.nLayer {
            let b = ParameterTable.block(c, layer)
            z = add(z, attention(p, layerNorm(p, z, b.ln1), b, layer: layer))   // z + attn(LN_1(z))
            z = add(z, mlp(p, layerNorm(p, z, b.ln2), b.mlp))                   // z + mlp(LN_2(z))
        }
        return layerNorm(p, z, ParameterTable.finalNorm(c))                // (n, d)
    }

    /// Causal self-attention of block `layer`, h heads of size d/h. Scores are divided by
    /// sqrt(d/h) and, with scale_attn_by_inverse_layer_idx (the Backpack), by layer + 1.
    static func attention(_ p: Parameters, _ x: Matrix, _ b: ParameterTable.BlockNames, layer: Int) -> Matrix {
        let c = p.config, n = x.count, d = c.nEmbd, hd = c.headDim
        let qkv = linear(p, x, b.attention)                                // (n, 3d): q | k | v
        var scale = 1.0
        if c.scaleAttnWeights ?? true { scale /= Double(hd).squareRoot() }
        if c.scaleAttnByInverseLayerIdx ?? false { scale /= Double(layer + 1) }
        var heads = zeros(n, d)                                            // (n, d): heads side by side
        for head in 0..<c.nHead {
            let q = columns(qkv, head * hd, hd), kk = columns(qkv, d + head * hd, hd)   // (n, d/h)
            let v = columns(qkv, 2 * d + head * hd, hd)                                 // (n, d/h)
            for i in 0..<n {
                let w = softmax((0...i).map { j in dot(q[i], kk[j]) * scale })   // (i+1): keys j <= i
                for j in 0...i { for e in 0..<hd { heads[i][head * hd + e] += w[j] * v[j][e] } }
            }
        }
        return linear(p, heads, b.attentionProjection)                     // (n, d)
    }

    // MARK: Step 3: the sense weights alpha

    /// alpha (k, n, n): one key-query layer (nn.Linear, no values, no output projection), k heads
    /// of d/k. Future positions get -10000 before the softmax in PyTorch, exactly 0 after it.
    static func senseWeights(_ p: Parameters, _ hc: Matrix) -> [Matrix] {
        let c = p.config, n = hc.count, d = c.nEmbd, hd = d / c.senses
        let qk = linear(p, hc, ParameterTable.senseNetwork.weightNetwork, layout: .linear)   // (n, 2d): q | kk
        return (0..<c.senses).map { l in
            let q = columns(qk, l * hd, hd), kk = columns(qk, d + l * hd, hd)            // (n, d/k)
            return (0..<n).map { i in                                                      // alpha[l] (n, n)
                softmax((0...i).map { j in dot(q[i], kk[j]) / Double(hd).squareRoot() })
                    + [Double](repeating: 0, count: n - i - 1)
            }
        }
    }

    // MARK: Layers

    /// y = x W + b (rows, out). Conv1D stores W as (in, out); nn.Linear stores W^T, (out, in).
    static func linear(_ p: Parameters, _ x: Matrix, _ name: String, layout: ParameterLayout = .conv1D) -> Matrix {
        let W = p.matrix(name + ".weight"), b = p.vector(name + ".bias")
        let Wt = layout == .linear ? W : transposed(W)                     // (out, in)
        return x.map { row in zip(Wt, b).map { column, bias in dot(row, column) + bias } }
    }

    /// c_fc, gelu_new, c_proj.
    static func mlp(_ p: Parameters, _ x: Matrix, _ names: ParameterTable.MLPNames) -> Matrix {
        linear(p, linear(p, x, names.fc).map { $0.map(geluNew) }, names.proj)
    }

    /// Per row: (x - mean) / sqrt(biased variance + eps) * weight + bias.
    static func layerNorm(_ p: Parameters, _ x: Matrix, _ name: String) -> Matrix {
        let w = p.vector(name + ".weight"), b = p.vector(name + ".bias"), eps = Double(p.config.epsilon)
        return x.map { row in
            let mean = row.reduce(0, +) / Double(row.count)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(row.count)
            return row.indices.map { (row[$0] - mean) / (variance + eps).squareRoot() * w[$0] + b[$0] }
        }
    }

    /// gelu_new(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    static func geluNew(_ x: Double) -> Double { 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) }

    static func softmax(_ s: [Double]) -> [Double] {
        let m = s.max() ?? 0, e = s.map { exp($0 - m) }, total = e.reduce(0, +)
        return e.map { $0 / total }
    }

    // MARK: Matrices: [[Double]], one array per row

    typealias Matrix = [[Double]]

    /// The model's float32 parameters read as Double, by checkpoint name (ParameterTable).
    struct Parameters {
        let table: ParameterSet
        var config: BackpackConfig { table.config }
        func vector(_ name: String) -> [Double] { table[name].values.map(Double.init) }
        func matrix(_ name: String) -> Matrix {
            let values = vector(name), width = table[name].shape[1]
            return stride(from: 0, to: values.count, by: width).map { Array(values[$0..<($0 + width)]) }
        }
    }

    static func zeros(_ rows: Int, _ cols: Int) -> Matrix { Matrix(repeating: [Double](repeating: 0, count: cols), count: rows) }
    static func add(_ a: Matrix, _ b: Matrix) -> Matrix { zip(a, b).map { zip($0, $1).map(+) } }
    static func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
    static func flat(_ a: Matrix) -> [Double] { a.flatMap { $0 } }
    /// Columns start ..< start + count of every row.
    static func columns(_ a: Matrix, _ start: Int, _ count: Int) -> Matrix { a.map { Array($0[start..<(start + count)]) } }
    /// a b: (m, n) x (n, p) -> (m, p)
    static func times(_ a: Matrix, _ b: Matrix) -> Matrix { timesTransposed(a, transposed(b)) }
    /// (m, n) -> (n, m)
    static func transposed(_ a: Matrix) -> Matrix { (0..<(a.first?.count ?? 0)).map { j in a.map { $0[j] } } }
    /// a b^T: (m, n) x (p, n) -> (m, p)
    static func timesTransposed(_ a: Matrix, _ b: Matrix) -> Matrix { a.map { row in b.map { dot(row, $0) } } }
}
