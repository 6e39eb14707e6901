import CBLAS
import Foundation

/// Matrix products, row-major throughout: single precision, and one double-precision product
/// (`dgemm`) for the logits of a few rows accumulated exactly (LanguageModel.exactLogits).
///
/// The system OpenBLAS (Debian's libopenblas-dev) is linked. A faster build is used when found:
/// `BACKPACK_BLAS=/path/to/lib.so` (any library exporting `cblas_sgemm`, or the `scipy_`-prefixed
/// symbols of the PyPI wheel `scipy-openblas32`), else that wheel in `.venv-blas` (`make blas`).
/// Debian's 0.3.21 was seen to use one core on AVX-512 CPUs where newer builds use all of them.
/// The choice is printed by `backpack bench`.
public enum BLAS {
    typealias SGEMM = @convention(c) (UInt32, UInt32, UInt32, Int32, Int32, Int32, Float,
                                      UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32, Float,
                                      UnsafeMutablePointer<Float>?, Int32) -> Void

    typealias SetThreads = @convention(c) (Int32) -> Void
    typealias GetThreads = @convention(c) () -> Int32

    /// The library in use, chosen once (immutable afterwards, so any thread may read it).
    private struct Backend: @unchecked Sendable {
        var sgemm: SGEMM?                 // nil: the linked system OpenBLAS
        var setThreads: SetThreads?
        var getThreads: GetThreads?
        var path: String?
    }
    private static let backend: Backend = loadBackend()

    /// Threads help only on large products. On small ones OpenBLAS's threads spin waiting for
    /// each other, and on a 2-core machine shared with another process that made a perplexity
    /// run 5x slower than one thread. Products below this many multiply-adds (m n k) use one.
    static let threadedWork = 1 << 24
    private static let maxThreads: Int32 = {
        let b = backend
        return max(1, b.getThreads?() ?? (b.sgemm == nil ? openblas_get_num_threads() : 1))
    }()

    /// OpenBLAS's thread count is one global of the library: the count and the product it is
    /// set for go together under this lock, so concurrent callers never run with another's count.
    private static let lock = NSLock()
    nonisolated(unsafe) private static var threadsNow: Int32 = -1   // guarded by `lock`

    private static func setThreads(forWork work: Int) {
        let want: Int32 = work >= threadedWork ? maxThreads : 1
        if want == threadsNow { return }
        threadsNow = want
        if backend.sgemm != nil { backend.setThreads?(want) } else { openblas_set_num_threads(want) }
    }
    /// The most threads a product may use.
    public static var threads: Int { Int(maxThreads) }

    public static var backendDescription: String {
        (backend.sgemm != nil ? (backend.path ?? "?") : "system OpenBLAS (libopenblas, Debian)") + ", up to \(maxThreads) thread(s)"
    }

    private static func findVenvBLAS() -> String? {
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        let fm = FileManager.default
        for _ in 0..<5 {
            let lib = dir.appendingPathComponent(".venv-blas/lib")
            if let pythons = try? fm.contentsOfDirectory(atPath: lib.path) {
                for python in pythons.sorted() {
                    let so = lib.appendingPathComponent("\(python)/site-packages/scipy_openblas32/lib/libscipy_openblas.so")
                    if fm.fileExists(atPath: so.path) { return so.path }
                }
            }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    /// BACKPACK_BLAS if set (an empty value forces the system library), else the scipy-openblas32
    /// wheel that `make blas` installs in .venv-blas beside the build folder, if present.
    private static func loadBackend() -> Backend {
        var b = Backend()
        let env = ProcessInfo.processInfo.environment["BACKPACK_BLAS"]
        guard let path = env ?? findVenvBLAS(), !path.isEmpty,
              let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else { return b }
        for symbol in ["cblas_sgemm", "scipy_cblas_sgemm", "scipy_cblas_sgemm64_"] {
            if let fn = dlsym(handle, symbol) { b.sgemm = unsafeBitCast(fn, to: SGEMM.self); break }
        }
        guard b.sgemm != nil else { return Backend() }
        b.path = path
        for symbol in ["openblas_set_num_threads", "scipy_openblas_set_num_threads"] {
            if let fn = dlsym(handle, symbol) { b.setThreads = unsafeBitCast(fn, to: SetThreads.self); break }
        }
        for symbol in ["openblas_get_num_threads", "scipy_openblas_get_num_threads"] {
            if let fn = dlsym(handle, symbol) { b.getThreads = unsafeBitCast(fn, to: GetThreads.self); break }
        }
        return b
    }

    /// C (m, n) = alpha * op(A) op(B) + beta * C, with op(A) (m, k), op(B) (k, n).
    /// `lda`, `ldb`, `ldc` are row strides of the stored matrices.
    @inline(__always)
    static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                     alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                     beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        lock.lock(); defer { lock.unlock() }
        setThreads(forWork: m * n * k)
        let noTrans = CblasNoTrans.rawValue, trans = CblasTrans.rawValue
        if let sgemm = backend.sgemm {
            sgemm(CblasRowMajor.rawValue, transA ? trans : noTrans, transB ? trans : noTrans,
                  Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        } else {
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
    }

    /// C (m, n) = A op(B) + beta C in double precision, A (m, k). Always the linked system
    /// OpenBLAS (the faster builds `BACKPACK_BLAS` names are loaded for their sgemm).
    static func dgemm(transB: Bool = false, m: Int, n: Int, k: Int, a: UnsafePointer<Double>, lda: Int,
                      b: UnsafePointer<Double>, ldb: Int, beta: Double = 0, c: UnsafeMutablePointer<Double>, ldc: Int) {
        if m == 0 || n == 0 { return }
        lock.lock(); defer { lock.unlock() }
        setThreads(forWork: 2 * m * n * k)                           // a double multiply-add costs two float ones
        cblas_dgemm(CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
