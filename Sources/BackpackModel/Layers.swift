/// The two kinds of layer the network is built from.

/// LayerNorm over the last dimension (d).
struct LayerNorm: Sendable {
    let weight: Weight, bias: Weight, eps: Float
    init(_ p: ParameterSet, _ name: String) {
        weight = p[name + ".weight"]; bias = p[name + ".bias"]; eps = p.config.epsilon
    }
    /// x (rows, d) -> y (rows, d)
    func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        Kernels.layerNorm(x, rows: rows, d: weight.count, weight: weight.pointer, bias: bias.pointer, eps: eps, into: y)
    }
}

/// y = x W + b. Conv1D weights are stored (in, out); Linear weights (out, in) are used transposed.
struct Dense: Sendable {
    let weight: Weight, bias: Weight
    let inputs: Int, outputs: Int
    let storedAsLinear: Bool
    init(_ p: ParameterSet, _ name: String, layout: ParameterLayout = .conv1D) {
        weight = p[name + ".weight"]; bias = p[name + ".bias"]
        storedAsLinear = layout == .linear
        inputs = storedAsLinear ? weight.shape[1] : weight.shape[0]
        outputs = storedAsLinear ? weight.shape[0] : weight.shape[1]
    }
    /// x (rows, inputs) -> y (rows, outputs)
    func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        BLAS.gemm(transB: storedAsLinear, m: rows, n: outputs, k: inputs, a: x, lda: inputs,
                  b: weight.pointer, ldb: storedAsLinear ? inputs : outputs, c: y, ldc: outputs)
        Kernels.addBias(y, rows: rows, n: outputs, bias: bias.pointer)
    }
}

/// c_fc d -> inner, gelu_new, c_proj inner -> d.
struct MLP: Sendable {
    let fc: Dense, proj: Dense
    init(_ p: ParameterSet, _ names: ParameterTable.MLPNames) { fc = Dense(p, names.fc); proj = Dense(p, names.proj) }
    /// x (rows, d) -> y (rows, out); `hidden`, if given, holds at least rows * inner floats.
    func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, hidden: Buffer? = nil) {
        let h = hidden ?? Buffer(rows * fc.outputs)             // (rows, inner)
        fc(x, rows: rows, into: h.pointer)
        Kernels.geluNew(h.pointer, count: rows * fc.outputs)
        proj(h.pointer, rows: rows, into: y)
    }
}
