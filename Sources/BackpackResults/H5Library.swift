import CHDF5
import Foundation

// Threading: the API of this module is meant to be used from one thread at a time. HDF5 builds
// are not in general thread-safe (Debian's libhdf5_serial 1.10.8 happens to be built with
// --enable-threadsafe, but nothing here relies on that). As a safeguard every HDF5 call made here
// (including the closes in deinit) runs under one process-wide recursive lock, so accidental use
// from several threads (for example parallel tests) serialises instead of corrupting HDF5 state,
// and an HDF5 call and the read of its error stack always happen together.
// Handles (H5File, H5Group) are not Sendable and must not be shared between tasks.

enum H5Library {
    /// The process-wide lock around every HDF5 call.
    static let lock = NSRecursiveLock()

    /// Opens the library once.
    private static let initialised: Bool = {
        // No cleanup at exit: every writable file is closed explicitly, and after a write that
        // failed (a full disk: EFBIG/ENOSPC) HDF5's exit handler dereferences the half-closed
        // file and crashes the process after the error was already reported.
        _ = H5dont_atexit()
        _ = H5open()
        return true
    }()

    /// Runs `body` under the HDF5 lock, after making sure the library is initialised and its
    /// automatic stderr error printing is off. (Debian's libhdf5 is built thread-safe, which
    /// makes the error-printing setting per thread, so it is switched off on every entry.)
    static func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        _ = initialised
        _ = bp_silence_errors()
        return try body()
    }

    /// The current HDF5 error stack as one line (outermost call first); clears the stack.
    static func errorStackMessage() -> String {
        var buf = [CChar](repeating: 0, count: 2048)
        let n = buf.withUnsafeMutableBufferPointer { bp_error_stack_message($0.baseAddress, $0.count) }
        if n == 0 { return "" }
        let bytes = buf.prefix(Int(n)).map { UInt8(bitPattern: $0) }
        // Some HDF5 messages embed newlines; keep the error on one line.
        return String(decoding: bytes, as: UTF8.self)
            .split(whereSeparator: { $0 == "\n" || $0 == "\r" })
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .joined(separator: " ")
    }
}

/// Where an operation happens, for error messages.
struct H5Location {
    /// The file path shown in errors (the target file, even when working on its temporary copy).
    var file: String
    /// The object path inside the file.
    var path: String

    func child(_ name: String) -> H5Location {
        H5Location(file: file, path: path == "/" ? "/" + name : path + "/" + name)
    }

    func error(_ kind: ResultsError.Kind, _ operation: String, _ detail: String = "") -> ResultsError {
        ResultsError(kind, file: file, object: path, operation: operation, detail: detail)
    }

    /// Throws a ResultsError carrying HDF5's error stack if `status` is negative.
    @discardableResult
    func check<T: BinaryInteger>(_ status: T, _ operation: String) throws -> T {
        if status < 0 {
            throw error(.hdf5, operation, H5Library.errorStackMessage())
        }
        return status
    }
}

/// One HDF5 identifier, closed exactly once: by `close()` or else by deinit.
final class H5Handle {
    private(set) var id: hid_t
    private let closer: (hid_t) -> herr_t

    init(_ id: hid_t, closer: @escaping (hid_t) -> herr_t) {
        self.id = id
        self.closer = closer
    }

    var isOpen: Bool { id >= 0 }

    /// Closes the identifier now; later calls do nothing. Returns the close status.
    @discardableResult
    func close() -> herr_t {
        H5Library.locked {
            guard id >= 0 else { return 0 }
            let status = closer(id)
            id = -1
            return status
        }
    }

    deinit {
        if id >= 0 {
            H5Library.locked { _ = closer(id) }
        }
    }
}

/// Scoped temporaries (dataspaces, datatypes, property lists) are closed with `defer`.
@inline(__always) func closeSpace(_ id: hid_t) { if id >= 0 { _ = H5Sclose(id) } }
@inline(__always) func closeType(_ id: hid_t) { if id >= 0 { _ = H5Tclose(id) } }
@inline(__always) func closePlist(_ id: hid_t) { if id >= 0 { _ = H5Pclose(id) } }

extension H5Library {
    /// Open HDF5 identifiers of all kinds (files, groups, datasets, attributes, named types)
    /// across all files in this process; for leak checks in tests.
    static func openObjectCountAllFiles() -> Int {
        locked {
            let all = UInt32(H5F_OBJ_FILE | H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR)
            return Int(max(0, H5Fget_obj_count(hid_t(all), all)))
        }
    }
}
