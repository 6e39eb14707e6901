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

    /// log-softmax of one row into a Double array (for probabilities of chosen tokens).
    public static func logSoftmax(_ row: UnsafeBufferPointer<Float>) -> [Double] {
        var maxValue = -Double.infinity
        for v in row where Double(v) > maxValue { maxValue = Double(v) }
        var sum = 0.0
        for v in row { sum += exp(Double(v) - maxValue) }
        let logZ = maxValue + log(sum)
        return row.map { Double($0) - logZ }
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
