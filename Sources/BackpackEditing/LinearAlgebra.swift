// The small dense linear algebra the editor needs for directions: a few vectors of length d
// (definitional pairs, PCA components), never a matrix of model size. Double precision
// throughout; the results are converted to Float only when they become a SenseMap.

enum LinearAlgebra {
    static func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
    static func norm(_ a: [Double]) -> Double { dot(a, a).squareRoot() }

    /// Orthonormal basis of the span (modified Gram-Schmidt, twice); drops dependent vectors
    /// (those whose remainder is below 1e-6 of their own norm) and zero vectors.
    static func orthonormalize(_ vectors: [[Double]]) -> [[Double]] {
        var basis: [[Double]] = []
        for v0 in vectors {
            var v = v0
            let scale = norm(v0)
            if scale == 0 { continue }
            for _ in 0..<2 { for q in basis { let c = dot(q, v); for i in v.indices { v[i] -= c * q[i] } } }
            let n = norm(v)
            if n <= 1e-6 * scale { continue }
            basis.append(v.map { $0 / n })
        }
        return basis
    }

    /// Eigenvalues and eigenvectors (columns as arrays) of a small symmetric matrix (cyclic
    /// Jacobi, at most 100 sweeps, until the off-diagonal sum of squares is below 1e-30), sorted
    /// by value descending.
    static func symmetricEigen(_ a0: [[Double]]) -> [(value: Double, vector: [Double])] {
        let n = a0.count
        var a = a0
        var v = (0..<n).map { i in (0..<n).map { $0 == i ? 1.0 : 0.0 } }
        for _ in 0..<100 {
            var off = 0.0
            for i in 0..<n { for j in 0..<n where i != j { off += a[i][j] * a[i][j] } }
            if off < 1e-30 { break }
            for p in 0..<n {
                for q in (p + 1)..<max(p + 1, n) where abs(a[p][q]) > 1e-300 {
                    let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let akp = a[k][p], akq = a[k][q]
                        a[k][p] = c * akp - s * akq; a[k][q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = a[p][k], aqk = a[q][k]
                        a[p][k] = c * apk - s * aqk; a[q][k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k][p], vkq = v[k][q]
                        v[k][p] = c * vkp - s * vkq; v[k][q] = s * vkp + c * vkq
                    }
                }
            }
        }
        return (0..<n).map { j in (a[j][j], (0..<n).map { v[$0][j] }) }.sorted { $0.value > $1.value }
    }
}
