import Foundation

/// Position-wise kernels of GPT-2: LayerNorm, gelu_new, softmax. Each works on rows of a
/// row-major matrix in place or into an output buffer.
enum Kernels {
    /// y = (x - mean) / sqrt(var + eps) * weight + bias, biased variance, per row of width d.
    static func layerNorm(_ x: UnsafePointer<Float>, rows: Int, d: Int, weight: UnsafePointer<Float>,
                          bias: UnsafePointer<Float>, eps: Float, into y: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let xr = x + r * d, yr = y + r * d
            var sum: Float = 0
            for i in 0..<d { sum += xr[i] }
            let mean = sum / Float(d)
            var sq: Float = 0
            for i in 0..<d { let c = xr[i] - mean; sq += c * c }
            let inv = 1 / (sq / Float(d) + eps).squareRoot()
            for i in 0..<d { yr[i] = (xr[i] - mean) * inv * weight[i] + bias[i] }
        }
    }

    /// gelu_new(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in place.
    static func geluNew(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 16 <= count {
            VectorMath.store(VectorMath.geluNew(VectorMath.load(x, i)), x, i)
            i += 16
        }
        let c: Float = 0.7978845608028654  // sqrt(2/pi)
        for i in i..<count {
            let v = x[i]
            x[i] = 0.5 * v * (1 + tanhf(c * (v + 0.044715 * v * v * v)))
        }
    }

    /// Adds a bias row to each of `rows` rows of width n.
    static func addBias(_ y: UnsafeMutablePointer<Float>, rows: Int, n: Int, bias: UnsafePointer<Float>) {
        for r in 0..<rows {
            let yr = y + r * n
            for i in 0..<n { yr[i] += bias[i] }
        }
    }

    /// y += x elementwise.
    static func add(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { y[i] += x[i] }
    }

    /// Softmax over the first `valid` entries of a row; entries past it (future keys) become 0.
    static func softmaxRow(_ row: UnsafeMutablePointer<Float>, valid: Int, width: Int) {
        var maxValue = -Float.infinity
        for j in 0..<valid where row[j] > maxValue { maxValue = row[j] }
        var sum: Float = 0
        var j = 0
        let shift = Float16x(repeating: maxValue)
        var partial = Float16x(repeating: 0)
        while j + 16 <= valid {
            let e = VectorMath.exp(VectorMath.load(row, j) - shift)
            VectorMath.store(e, row, j)
            partial += e
            j += 16
        }
        sum = partial.sum()
        for j in j..<valid { let e = expf(row[j] - maxValue); row[j] = e; sum += e }
        let inv = 1 / sum
        for j in 0..<valid { row[j] *= inv }
        for j in valid..<width { row[j] = 0 }
    }

}

/// Normalisers of a logits row, for evaluation (one call per scored token, over V entries).
public enum LogSoftmax {
    /// log sum_v exp(x_v), stable: the max is subtracted first; exponentials in float32 (relative
    /// error ~1e-7 each), summed 8 at a time per lane in float32 and then in Double.
    public static func logSumExp(_ x: [Float]) -> Double { x.withUnsafeBufferPointer { logSumExp($0) } }

    public static func logSumExp(_ x: UnsafeBufferPointer<Float>) -> Double {
        guard let base = x.baseAddress, !x.isEmpty else { return -.infinity }
        let p = UnsafeMutablePointer(mutating: base)
        let n = x.count
        // This runs once per scored row over the whole vocabulary, and after a word-level edit
        // it is most of what a row costs (WordUpdate.scores), so every pass is 16 lanes
        // wide. The max is exact, as a scalar scan's; NaN entries are skipped as the scan
        // skipped them (a comparison with NaN is false).
        var lanes = Float16x(repeating: -.infinity)
        var i = 0
        while i + 16 <= n {
            let v = VectorMath.load(p, i)
            lanes.replace(with: v, where: v .> lanes)
            i += 16
        }
        var maxValue = lanes.max()
        for j in i..<n where p[j] > maxValue { maxValue = p[j] }
        if !maxValue.isFinite { return Double(maxValue) }
        // Each lane adds 8 exponentials in float32 (each at most 1), then the lanes go to Double:
        // no partial sum holds more than 8 terms. A horizontal sum per 16 entries, converted to
        // Double each time, took 9 times as long.
        let shift = Float16x(repeating: maxValue)
        var low = SIMD8<Double>(repeating: 0), high = SIMD8<Double>(repeating: 0)
        i = 0
        while i + 128 <= n {
            var block = Float16x(repeating: 0)
            for b in 0..<8 { block += VectorMath.exp(VectorMath.load(p, i + 16 * b) - shift) }
            low += SIMD8<Double>(block.lowHalf); high += SIMD8<Double>(block.highHalf)
            i += 128
        }
        while i + 16 <= n {
            let e = VectorMath.exp(VectorMath.load(p, i) - shift)
            low += SIMD8<Double>(e.lowHalf); high += SIMD8<Double>(e.highHalf)
            i += 16
        }
        var sum = (low + high).sum()
        for j in i..<n { sum += Foundation.exp(Double(p[j] - maxValue)) }
        return Double(maxValue) + Foundation.log(sum)
    }
}

/// A heap buffer with a stable address, for activations handed to BLAS.
final class Buffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    init(_ count: Int, zeroed: Bool = false) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        if zeroed { pointer.initialize(repeating: 0, count: count) }
    }
    deinit { pointer.deallocate() }
    var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// The same in Double: exact logits and their updates (Variants.swift).
final class DoubleBuffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Double>
    let count: Int
    init(_ count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
    }
    deinit { pointer.deallocate() }
}
