import Foundation

// LEACE concept erasure (Belrose et al., NeurIPS 2023, "LEACE: Perfect linear concept erasure in
// closed form"), transcribed from EleutherAI's reference implementation `concept-erasure` 0.2.4
// (PyPI, MIT; concept_erasure/leace.py and shrinkage.py): `LeaceFitter(d, 1)` with its defaults,
// that is affine (mean-centred), the random-matrix-theory linear shrinkage of the covariance,
// the covariance-trace constraint and svd_tol 0.01, fitted on one batch. Double precision
// throughout (the reference computes in the dtype of its input; Tools/leace fits in float64), so
// that torch.finfo(float64).eps is Double.ulpOfOne. Matrices are d x d, row-major.

/// Which projection `erase` fits (concept-erasure's `method`).
public enum ErasureMethod: String, Sendable, CaseIterable, Codable {
    /// Least-squares concept erasure: the oblique projection W^+ P_u W of the whitened data.
    case leace
    /// The orthogonal projection off the same subspace (no whitening, no trace constraint).
    case orth
}

/// A fitted eraser: r(x) = x - M (x - mean), M = proj_left proj_right (concept-erasure's
/// `LeaceEraser.__call__` with `bias = mean_x`); the mean of the fit data is kept.
public struct ConceptEraser: Sendable {
    public let method: ErasureMethod
    public let dimension: Int
    /// mean_x of the fit data (d).
    public let mean: [Double]
    /// M = I - P (d x d, row-major).
    public let correction: [Double]
    /// Singular values of W Sigma_xz kept (0 or 1 for one concept dimension): 0 leaves x unchanged.
    public let rank: Int
    /// The singular value of W Sigma_xz (the whitened cross-covariance norm for LEACE, the plain one for orth).
    public let singularValue: Double
    /// The weight alpha of P in alpha P + (1 - alpha) Q when the trace constraint acted; nil otherwise.
    public let traceMixing: Double?
    public let samples: Int
    /// 1 - tr(P S P^T) / tr(S), S the (unshrunk) covariance of the fit data: the share of its
    /// variance the eraser removes.
    public let varianceRemoved: Double

    /// r(x) = x - M (x - mean).
    public func apply(_ x: [Double]) -> [Double] {
        let d = dimension
        let delta = zip(x, mean).map { $0 - $1 }
        return (0..<d).map { i in
            var t = 0.0
            for j in 0..<d { t += correction[i * d + j] * delta[j] }
            return x[i] - t
        }
    }

    /// M mean: the constant part of r(x) = (I - M) x + M mean.
    public var offset: [Double] {
        let d = dimension
        return (0..<d).map { i in (0..<d).reduce(0.0) { $0 + correction[i * d + $1] * mean[$1] } }
    }
}

public enum ConceptErasure {
    /// concept-erasure's `svd_tol` default.
    public static let svdTolerance = 0.01

    /// `LeaceFitter(d, 1, method=method).update(x, z).eraser`. x: n vectors of length d; z: their
    /// labels (one concept dimension).
    public static func fit(_ x: [[Double]], labels z: [Double], method: ErasureMethod = .leace,
                           svdTolerance: Double = svdTolerance) throws -> ConceptEraser {
        let n = x.count
        guard n >= 2, z.count == n, let d = x.first?.count, d > 0, x.allSatisfy({ $0.count == d }) else {
            throw EditError(file: "erase", "concept erasure needs at least 2 vectors of one length, each with a label")
        }
        let nd = Double(n)
        // mean_x, mean_z; sigma_xx_ = sum (x - mean_x)(x - mean_x)^T, sigma_xz_ = sum (x - mean_x)(z - mean_z)
        var mean = [Double](repeating: 0, count: d)
        for v in x { for i in 0..<d { mean[i] += v[i] } }
        for i in 0..<d { mean[i] /= nd }
        let meanZ = z.reduce(0, +) / nd
        var centred = [Double](repeating: 0, count: n * d)   // (n, d)
        for (s, v) in x.enumerated() { for i in 0..<d { centred[s * d + i] = v[i] - mean[i] } }
        let scatter = LinearAlgebra.matmul(centred, transposeA: true, centred, m: d, n: d, k: n)
        var sigmaXZ = [Double](repeating: 0, count: d)
        for s in 0..<n { let dz = z[s] - meanZ; for i in 0..<d { sigmaXZ[i] += centred[s * d + i] * dz } }
        // sigma_xz = sigma_xz_ / (n - 1)
        for i in 0..<d { sigmaXZ[i] /= nd - 1 }
        // S = sigma_xx_ / n: the data's covariance, reported as the variance removed
        let sample = scatter.map { $0 / nd }
        let eye = identity(d)

        // Whitening W = Sigma^{-1/2} and unwhitening W^+ (Sigma shrunk), or I for orth.
        var w = eye, wInverse = eye
        var sigma: [Double] = []
        if method == .leace {
            sigma = optimalLinearShrinkage(sample, n: nd, p: d)
            let (values, vectors) = try LinearAlgebra.symmetricEigen(sigma, n: d)   // ascending; vector j = column j
            // the threshold of torch.linalg.pinv
            let largest = values[d - 1]
            let keep = values.map { $0 > largest * Double(d) * Double.ulpOfOne }
            let clamped = values.map { max($0, 0) }
            w = [Double](repeating: 0, count: d * d)
            wInverse = w
            for j in 0..<d where keep[j] {
                let r = 1 / clamped[j].squareRoot(), s = clamped[j].squareRoot()
                for a in 0..<d {
                    let va = vectors[a * d + j]
                    for b in 0..<d {
                        let vv = va * vectors[b * d + j]
                        w[a * d + b] += vv * r
                        wInverse[a * d + b] += vv * s
                    }
                }
            }
        }
        // u, s = svd(W sigma_xz): for one concept dimension, u = W sigma_xz / |W sigma_xz| (its
        // sign cancels in u u^T); u is zeroed when s <= svd_tol.
        let whitened = matvec(w, sigmaXZ, d)
        let s = whitened.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let rank = s > svdTolerance ? 1 : 0
        let u = rank == 1 ? whitened.map { $0 / s } : [Double](repeating: 0, count: d)
        // proj_left = W^+ u (d x 1), proj_right = u^T W (1 x d), M = proj_left proj_right
        let left = matvec(wInverse, u, d), right = matvec(w, u, d)   // W symmetric: (u^T W)^T = W u
        var correction = [Double](repeating: 0, count: d * d)
        for a in 0..<d { for b in 0..<d { correction[a * d + b] = left[a] * right[b] } }

        var mixing: Double? = nil
        if method == .leace, let mixed = try constrainTrace(zip(eye, correction).map { $0 - $1 }, u: u, sigma: sigma, d: d) {
            correction = zip(eye, mixed.p).map { $0 - $1 }
            mixing = mixed.alpha
        }
        guard correction.allSatisfy(\.isFinite) else {
            throw EditError(file: "erase", "the fitted eraser is not finite; the fit data may be degenerate")
        }
        let p = zip(eye, correction).map { $0 - $1 }
        let total = trace(sample, d)
        let removed = total > 0 ? 1 - traceProduct(p, sample, p, d) / total : 0
        return ConceptEraser(method: method, dimension: d, mean: mean, correction: correction, rank: rank, singularValue: s,
                             traceMixing: mixing, samples: n, varianceRemoved: removed)
    }

    /// LEACE's covariance-trace constraint: if tr(P Sigma P^T) > tr(Sigma), P becomes the mixture
    /// alpha P + (1 - alpha) Q with the orthogonal projection Q = I - u u^T, alpha in [0, 1] the
    /// root of the quadratic that makes the trace tr(Sigma); nil when the trace does not grow. (With
    /// W = Sigma^(-1/2) of the same Sigma, tr(P Sigma P^T) = tr(Sigma) - u^T Sigma u, so under the
    /// defaults this guards against rounding only.)
    static func constrainTrace(_ p: [Double], u: [Double], sigma: [Double], d: Int) throws -> (p: [Double], alpha: Double)? {
        let oldTrace = trace(sigma, d)
        let newTrace = traceProduct(p, sigma, p, d)
        guard newTrace > oldTrace else { return nil }
        var q = identity(d)
        for a in 0..<d { for b in 0..<d { q[a * d + b] -= u[a] * u[b] } }
        let x = newTrace, y = 2 * traceProduct(p, sigma, q, d), z = traceProduct(q, sigma, q, d), w = oldTrace
        let discriminant = (4 * w * x - 4 * w * y + 4 * w * z - 4 * x * z + y * y).squareRoot()
        let alpha1 = (-y / 2 + z - discriminant / 2) / (x - y + z)
        let alpha2 = (-y / 2 + z + discriminant / 2) / (x - y + z)
        // the positive root, clamped to [0, 1]
        let alpha = min(max(alpha1 > 0 ? alpha1 : alpha2, 0), 1)
        guard alpha.isFinite else {
            throw EditError(file: "erase", "the covariance-trace constraint has no solution (alpha \(alpha)); the fit data may be degenerate")
        }
        return (zip(p, q).map { alpha * $0 + (1 - alpha) * $1 }, alpha)
    }

    /// concept-erasure's `optimal_linear_shrinkage(S_n, n)`: alpha S_n + beta tr(S_n)/p I, with
    /// the coefficients of the random-matrix-theory estimator (arXiv 1308.2608).
    static func optimalLinearShrinkage(_ s: [Double], n: Double, p: Int) -> [Double] {
        let pd = Double(p)
        let traceS = trace(s, p)
        let level = traceS / pd                                   // sigma0 = level * I
        let sigma0NormSquared = pd * level * level
        let sNormSquared = s.reduce(0) { $0 + $1 * $1 }
        let productTrace = traceS * level                         // tr(S_n sigma0)
        let top = traceS * traceS * sigma0NormSquared / n
        let bottom = sNormSquared * sigma0NormSquared - productTrace * productTrace
        let eps = Double.ulpOfOne
        let alpha = 1 - (top + eps) / (bottom + eps)
        let beta = (1 - alpha) * (productTrace + eps) / (sigma0NormSquared + eps)
        var out = s.map { alpha * $0 }
        for i in 0..<p { out[i * p + i] += beta * level }
        return out
    }

    // MARK: small dense helpers (row-major)

    static func identity(_ d: Int) -> [Double] {
        var m = [Double](repeating: 0, count: d * d)
        for i in 0..<d { m[i * d + i] = 1 }
        return m
    }

    static func trace(_ m: [Double], _ d: Int) -> Double { (0..<d).reduce(0) { $0 + m[$1 * d + $1] } }

    /// tr(A B C^T) for d x d matrices.
    static func traceProduct(_ a: [Double], _ b: [Double], _ c: [Double], _ d: Int) -> Double {
        let ab = LinearAlgebra.matmul(a, b, m: d, n: d, k: d)
        // tr(X C^T) = sum_ij X_ij C_ij
        return zip(ab, c).reduce(0) { $0 + $1.0 * $1.1 }
    }

    static func matvec(_ m: [Double], _ v: [Double], _ d: Int) -> [Double] {
        (0..<d).map { i in (0..<d).reduce(0.0) { $0 + m[i * d + $1] * v[$1] } }
    }
}
