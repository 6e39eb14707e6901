@testable import BackpackEditing
import Foundation
import Testing

@Suite struct LinearAlgebraTests {
    /// Largest |x| over a list.
    func worst(_ values: [Double]) -> Double { values.map(abs).max() ?? 0 }

    /// The eigenpairs of a symmetric matrix given as rows, largest first, from the module's one
    /// eigensolver (LAPACK, ascending eigenvalues, eigenvectors as columns).
    func eigen(_ a: [[Double]]) throws -> [(value: Double, vector: [Double])] {
        let n = a.count
        let (values, vectors) = try LinearAlgebra.symmetricEigen(a.flatMap { $0 }, n: n)
        return (0..<n).reversed().map { j in (values[j], (0..<n).map { vectors[$0 * n + j] }) }
    }

    /// v minus its projection onto the orthonormal rows of q.
    func residual(_ v: [Double], _ q: [[Double]]) -> [Double] {
        var r = v
        for row in q { let c = LinearAlgebra.dot(row, v); for i in r.indices { r[i] -= c * row[i] } }
        return r
    }

    @Test func orthonormalizeSpansTheInputAndDropsDependentVectors() {
        let a: [Double] = [1, 2, 0, -1], b: [Double] = [0.5, -1, 3, 2], c: [Double] = [2, 0, 1, 1]
        let dependent = zip(a, b).map { $0 - 2 * $1 }          // a - 2b: in span(a, b)
        let nearlyDependent = zip(a, c).map { $0 + $1 + 1e-9 }  // a + c, off by 1e-9: below the 1e-6 cut
        let zero = [Double](repeating: 0, count: 4)
        let q = LinearAlgebra.orthonormalize([a, zero, b, dependent, c, nearlyDependent])
        // rank 3: a, b, c kept; the zero, dependent and nearly dependent vectors dropped
        #expect(q.count == 3)
        // orthonormal rows, to 1e-12
        var gramError: [Double] = []
        for i in q.indices { for j in q.indices { gramError.append(LinearAlgebra.dot(q[i], q[j]) - (i == j ? 1 : 0)) } }
        #expect(worst(gramError) <= 1e-12)
        // every input lies in the span (relative residual <= 1e-12), so with rank 3 the spans agree
        for v in [a, b, c, dependent] {
            #expect(LinearAlgebra.norm(residual(v, q)) <= 1e-12 * LinearAlgebra.norm(v))
        }
        // Gram-Schmidt order: the first row is a / |a|
        #expect(worst(zip(q[0], a).map { $0 - $1 / LinearAlgebra.norm(a) }) <= 1e-15)
        // nothing independent is dropped: c's component off span(a, b) survives as the third row
        #expect(abs(LinearAlgebra.dot(q[2], c)) > 0.1)
        #expect(LinearAlgebra.orthonormalize([zero, zero]).isEmpty)
    }

    /// The tridiagonal [[2, 1, 0], [1, 2, 1], [0, 1, 2]] has eigenvalues 2 + sqrt 2, 2, 2 - sqrt 2
    /// with eigenvectors (1, sqrt 2, 1)/2, (1, 0, -1)/sqrt 2, (1, -sqrt 2, 1)/2 (by hand: the
    /// characteristic polynomial is (2 - x)((2 - x)^2 - 2)).
    @Test func symmetricEigenOfAKnownMatrix() throws {
        let a: [[Double]] = [[2, 1, 0], [1, 2, 1], [0, 1, 2]]
        let r2 = 2.0.squareRoot()
        let expected: [(Double, [Double])] = [(2 + r2, [0.5, r2 / 2, 0.5]), (2, [1 / r2, 0, -1 / r2]), (2 - r2, [0.5, -r2 / 2, 0.5])]
        let eig = try eigen(a)
        #expect(eig.count == 3)
        for ((value, vector), (ev, evec)) in zip(eig, expected) {
            #expect(abs(value - ev) <= 1e-12)
            // the same eigenvector up to sign
            let sign = LinearAlgebra.dot(vector, evec) < 0 ? -1.0 : 1.0
            #expect(worst(zip(vector, evec).map { $0 * sign - $1 }) <= 1e-12)
            // A v = lambda v
            let av = a.map { LinearAlgebra.dot($0, vector) }
            #expect(worst(zip(av, vector).map { $0 - value * $1 }) <= 1e-12)
        }
    }

    /// A 5x5 symmetric matrix (B B^T, rank 3): A v = lambda v, orthonormal vectors, eigenvalues
    /// sorted descending summing to the trace, and two zero eigenvalues.
    @Test func symmetricEigenOfAGramMatrix() throws {
        let rows: [[Double]] = [[1, 2, 0], [0, 1, -1], [3, 0, 1], [1, 1, 1], [2, -1, 0.5]]
        let a = rows.map { x in rows.map { LinearAlgebra.dot(x, $0) } }
        let eig = try eigen(a)
        #expect(eig.count == 5)
        for (value, vector) in eig {
            let av = a.map { LinearAlgebra.dot($0, vector) }
            #expect(worst(zip(av, vector).map { $0 - value * $1 }) <= 1e-12)
            #expect(abs(LinearAlgebra.norm(vector) - 1) <= 1e-12)
        }
        for (x, y) in zip(eig, eig.dropFirst()) { #expect(x.value >= y.value) }
        let trace = a.indices.reduce(0) { $0 + a[$1][$1] }
        #expect(abs(eig.reduce(0) { $0 + $1.value } - trace) <= 1e-12 * trace)
        #expect(eig[3].value.magnitude <= 1e-12 && eig[4].value.magnitude <= 1e-12)
        #expect(eig[2].value > 0.1)
        #expect(abs(LinearAlgebra.dot(eig[0].vector, eig[1].vector)) <= 1e-12)
    }
}
