/// A value read from an attribute without knowing its type beforehand (for reports).
public enum H5Value: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case strings([String])
    case double(Double)
    case doubles([Double])
    case int(Int)
    case ints([Int])

    public var description: String {
        switch self {
        case .string(let s): return s
        case .strings(let a): return "[" + a.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        case .double(let d): return "\(d)"
        case .doubles(let a): return "[" + a.map { "\($0)" }.joined(separator: ", ") + "]"
        case .int(let i): return "\(i)"
        case .ints(let a): return "[" + a.map { "\($0)" }.joined(separator: ", ") + "]"
        }
    }
}

/// The element type of a dataset, as far as this module cares.
public enum H5ElementKind: Sendable, Equatable, CustomStringConvertible {
    case float(bytes: Int)
    case integer(bytes: Int, signed: Bool)
    case string(variableLength: Bool)
    case other

    public var description: String {
        switch self {
        case .float(let b): return "float\(b * 8)"
        case .integer(let b, let s): return (s ? "int" : "uint") + "\(b * 8)"
        case .string(let v): return v ? "string" : "fixed-string"
        case .other: return "other"
        }
    }
}

/// Shape, element type and storage of a dataset.
public struct H5DatasetInfo: Sendable, Equatable {
    /// Dimensions; empty for a scalar dataset.
    public var shape: [Int]
    public var element: H5ElementKind
    /// Chunk dimensions if the dataset is chunked, nil if contiguous or compact.
    public var chunks: [Int]?
    /// HDF5 filter ids in pipeline order (1 = deflate, 2 = shuffle).
    public var filters: [Int]

    public var count: Int { shape.reduce(1, *) }
    public var isCompressed: Bool { filters.contains(1) }
}

/// What a link in a group points to.
public enum H5ObjectKind: Sendable, Equatable {
    case group, dataset, namedDatatype, other
}
