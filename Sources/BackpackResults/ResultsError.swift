/// An error from the results store: always names the file, the object path inside it and the
/// operation that failed, plus HDF5's own error-stack message where there is one.
public struct ResultsError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// An HDF5 call returned a negative status.
        case hdf5
        /// The file, group, dataset or attribute does not exist.
        case notFound
        /// The object exists already (a run id, a group, a dataset).
        case alreadyExists
        /// The stored element type or shape is not what the caller asked for.
        case typeMismatch
        /// The caller passed something that cannot be stored (bad shape, NUL in a string...).
        case invalidArgument
        /// The file is not a results file this version understands.
        case unsupportedLayout
        /// A file-system operation (copy, fsync, rename) failed.
        case io
    }

    public var kind: Kind
    /// The file the operation was on (the target path, also for work on its temporary copy).
    public var file: String
    /// The object path inside the file ("/runs/x/base"), or "/" for the file itself.
    public var object: String
    /// The operation, e.g. "H5Dcreate2" or "read attribute 'suite_name'".
    public var operation: String
    /// Further detail, usually HDF5's error stack (outermost call first).
    public var detail: String

    public init(_ kind: Kind, file: String, object: String, operation: String, detail: String = "") {
        self.kind = kind
        self.file = file
        self.object = object
        self.operation = operation
        self.detail = detail
    }

    public var description: String {
        var s = "\(operation) failed on '\(object)' in \(file)"
        switch kind {
        case .hdf5: break
        case .notFound: s += " (not found)"
        case .alreadyExists: s += " (already exists)"
        case .typeMismatch: s += " (type mismatch)"
        case .invalidArgument: s += " (invalid argument)"
        case .unsupportedLayout: s += " (unsupported layout)"
        case .io: s += " (I/O error)"
        }
        if !detail.isEmpty { s += ": \(detail)" }
        return s
    }
}
