import CBLAS

// The editor's dense linear algebra, in double precision: vectors of length d (directions,
// definitional pairs), the PCA Gram matrix of a few pairs, and LEACE's d x d covariances. The
// one symmetric eigensolver (LAPACK's dsyevd) and the one double-precision product (dgemm) of
// this module, both from the linked OpenBLAS. Results become Float only as SenseMaps.

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

    /// Eigenvalues (ascending) and eigenvectors (vector j is column j: vectors[a * n + j]) of a
    /// symmetric n x n row-major matrix, by LAPACK's dsyevd (what torch.linalg.eigh calls, so
    /// LEACE matches concept-erasure).
    static func symmetricEigen(_ matrix: [Double], n: Int) throws -> (values: [Double], vectors: [Double]) {
        if n == 0 { return ([], []) }
        // LAPACK is column-major: the symmetric matrix is its own transpose, and the eigenvector
        // columns it returns are read back transposed below.
        var a = matrix
        var values = [Double](repeating: 0, count: n)
        var jobz = CChar(UInt8(ascii: "V")), uplo = CChar(UInt8(ascii: "L"))
        var order = Int32(n), lda = Int32(n), info: Int32 = 0
        var lwork: Int32 = -1, liwork: Int32 = -1
        var workSize = 0.0
        var iworkSize: Int32 = 0
        dsyevd_(&jobz, &uplo, &order, &a, &lda, &values, &workSize, &lwork, &iworkSize, &liwork, &info, 1, 1)
        guard info == 0 else { throw EditError(file: "eigendecomposition", "LAPACK dsyevd workspace query failed (info \(info))") }
        lwork = Int32(workSize.rounded(.up)); liwork = iworkSize
        var work = [Double](repeating: 0, count: Int(lwork))
        var iwork = [Int32](repeating: 0, count: Int(liwork))
        dsyevd_(&jobz, &uplo, &order, &a, &lda, &values, &work, &lwork, &iwork, &liwork, &info, 1, 1)
        guard info == 0 else { throw EditError(file: "eigendecomposition", "LAPACK dsyevd did not converge (info \(info))") }
        var vectors = [Double](repeating: 0, count: n * n)
        for j in 0..<n { for i in 0..<n { vectors[i * n + j] = a[j * n + i] } }
        return (values, vectors)
    }

    /// (m, k) x (k, n) -> (m, n), row-major; with transposeA, a is stored (k, m). BackpackModel's
    /// BLAS wrapper has single precision only, and LEACE is fitted in double, as the reference.
    static func matmul(_ a: [Double], transposeA: Bool = false, _ b: [Double], m: Int, n: Int, k: Int) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                    a, Int32(transposeA ? m : k), b, Int32(n), 0, &c, Int32(n))
        return c
    }
}
