import CHDF5
import Foundation

/// A group in an open HDF5 file: child groups, attributes and datasets.
///
/// Names may be paths relative to this group ("a/b"); missing intermediate groups are created
/// by `createGroup` and `write`. Link and attribute names are stored as UTF-8.
/// Not thread-safe: use from one thread (see H5Library.swift).
public final class H5Group {
    let handle: H5Handle
    let location: H5Location

    init(id: hid_t, location: H5Location) {
        self.handle = H5Handle(id, closer: { H5Gclose($0) })
        self.location = location
    }

    /// The path of this group inside its file, e.g. "/runs/2026-...".
    public var path: String { location.path }
    /// The file path this group belongs to (as shown in errors).
    public var filePath: String { location.file }

    // MARK: - Groups and links

    /// Creates a child group (and missing intermediate groups). The new group tracks link
    /// creation order, so its `children()` come back in the order they were added.
    public func createGroup(_ name: String) throws -> H5Group {
        let loc = location.child(name)
        try validate(name, loc, "create group")
        return try H5Library.locked {
            if contains(name) { throw loc.error(.alreadyExists, "create group") }
            let gcpl = try loc.check(H5Pcreate(bp_H5P_GROUP_CREATE()), "H5Pcreate(group create)")
            defer { closePlist(gcpl) }
            try loc.check(H5Pset_link_creation_order(gcpl, bp_H5P_CRT_ORDER_TRACKED() | bp_H5P_CRT_ORDER_INDEXED()),
                          "H5Pset_link_creation_order")
            let lcpl = try makeLinkCreatePlist(loc)
            defer { closePlist(lcpl) }
            let id = try loc.check(H5Gcreate2(handle.id, name, lcpl, gcpl, bp_H5P_DEFAULT()), "H5Gcreate2")
            return H5Group(id: id, location: loc)
        }
    }

    /// Opens an existing child group.
    public func group(_ name: String) throws -> H5Group {
        let loc = location.child(name)
        try validate(name, loc, "open group")
        return try H5Library.locked {
            guard let kind = try kind(of: name) else { throw loc.error(.notFound, "open group") }
            guard kind == .group else { throw loc.error(.typeMismatch, "open group", "object is not a group") }
            let id = try loc.check(H5Gopen2(handle.id, name, bp_H5P_DEFAULT()), "H5Gopen2")
            return H5Group(id: id, location: loc)
        }
    }

    /// Whether a link with this name (or relative path) exists. Never throws.
    public func contains(_ name: String) -> Bool {
        guard !name.isEmpty, !name.contains("\0") else { return false }
        return H5Library.locked {
            var prefix = name.hasPrefix("/") ? "/" : ""
            for component in name.split(separator: "/") {
                if !prefix.isEmpty && !prefix.hasSuffix("/") { prefix += "/" }
                prefix += component
                let status = H5Lexists(handle.id, prefix, bp_H5P_DEFAULT())
                if status <= 0 {
                    _ = bp_clear_errors()
                    return false
                }
            }
            return !prefix.isEmpty
        }
    }

    /// What the named link points to, or nil if there is no such link.
    public func kind(of name: String) throws -> H5ObjectKind? {
        let loc = location.child(name)
        return try H5Library.locked {
            guard contains(name) else { return nil }
            let oid = try loc.check(H5Oopen(handle.id, name, bp_H5P_DEFAULT()), "H5Oopen")
            defer { _ = H5Oclose(oid) }
            switch H5Iget_type(oid) {
            case H5I_GROUP: return .group
            case H5I_DATASET: return .dataset
            case H5I_DATATYPE: return .namedDatatype
            default: return .other
            }
        }
    }

    /// Names of the links in this group: in creation order where the group tracks it (groups
    /// made by this module do), otherwise in name order.
    public func children() throws -> [String] {
        try H5Library.locked {
            var info = H5G_info_t()
            try location.check(H5Gget_info(handle.id, &info), "H5Gget_info")
            let index = tracksCreationOrder() ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME
            var names: [String] = []
            names.reserveCapacity(Int(info.nlinks))
            for i in 0..<info.nlinks {
                let n = try location.check(
                    H5Lget_name_by_idx(handle.id, ".", index, H5_ITER_INC, i, nil, 0, bp_H5P_DEFAULT()),
                    "H5Lget_name_by_idx")
                var buf = [CChar](repeating: 0, count: Int(n) + 1)
                try location.check(
                    H5Lget_name_by_idx(handle.id, ".", index, H5_ITER_INC, i, &buf, buf.count, bp_H5P_DEFAULT()),
                    "H5Lget_name_by_idx")
                names.append(decodeNulTerminated(buf))
            }
            return names
        }
    }

    /// Child names that are groups, in `children()` order.
    public func groupNames() throws -> [String] {
        try children().filter { try kind(of: $0) == .group }
    }

    /// Child names that are datasets, in `children()` order.
    public func datasetNames() throws -> [String] {
        try children().filter { try kind(of: $0) == .dataset }
    }

    private func tracksCreationOrder() -> Bool {
        let gcpl = H5Gget_create_plist(handle.id)
        guard gcpl >= 0 else { _ = bp_clear_errors(); return false }
        defer { closePlist(gcpl) }
        var flags: UInt32 = 0
        guard H5Pget_link_creation_order(gcpl, &flags) >= 0 else { _ = bp_clear_errors(); return false }
        return flags & bp_H5P_CRT_ORDER_INDEXED() != 0
    }

    // MARK: - Attributes

    /// Stores a scalar variable-length UTF-8 string attribute (h5py reads it as `str`),
    /// replacing any attribute of that name.
    public func setAttribute(_ name: String, _ value: String) throws {
        let op = "write attribute '\(name)'"
        try validate(name, location, op)
        guard !value.contains("\0") else {
            throw location.error(.invalidArgument, op, "string contains a NUL character")
        }
        try H5Library.locked {
            let type = try makeVariableStringType(location)
            defer { closeType(type) }
            let space = try location.check(H5Screate(H5S_SCALAR), "H5Screate")
            defer { closeSpace(space) }
            try value.withCString { cstr in
                var pointer: UnsafePointer<CChar>? = cstr
                try withUnsafePointer(to: &pointer) { buf in
                    try writeAttribute(name, fileType: type, memType: type, space: space, buffer: buf, op: op)
                }
            }
        }
    }

    /// Stores a 1-D variable-length UTF-8 string attribute (h5py reads it as an array of `str`),
    /// replacing any attribute of that name. Keep it small (HDF5 limits attributes to 64 KiB).
    public func setAttribute(_ name: String, _ values: [String]) throws {
        let op = "write attribute '\(name)'"
        try validate(name, location, op)
        if let bad = values.firstIndex(where: { $0.contains("\0") }) {
            throw location.error(.invalidArgument, op, "string \(bad) contains a NUL character")
        }
        try H5Library.locked {
            let type = try makeVariableStringType(location)
            defer { closeType(type) }
            var dims: [hsize_t] = [hsize_t(values.count)]
            let space = try location.check(H5Screate_simple(1, &dims, nil), "H5Screate_simple")
            defer { closeSpace(space) }
            var pointers: [UnsafeMutablePointer<CChar>?] = values.map { strdup($0) }
            defer { for p in pointers { free(p) } }
            if pointers.contains(where: { $0 == nil }) { throw location.error(.io, op, "out of memory") }
            try pointers.withUnsafeMutableBytes { buf in
                try writeAttribute(name, fileType: type, memType: type, space: space,
                                   buffer: values.isEmpty ? nil : UnsafeRawPointer(buf.baseAddress), op: op)
            }
        }
    }

    /// Stores a scalar float64 attribute.
    public func setAttribute(_ name: String, _ value: Double) throws {
        try setNumericAttribute(name, [value], scalar: true, fileType: bp_H5T_IEEE_F64LE(), memType: bp_H5T_NATIVE_DOUBLE())
    }

    /// Stores a scalar int64 attribute.
    public func setAttribute(_ name: String, _ value: Int) throws {
        try setNumericAttribute(name, [Int64(value)], scalar: true, fileType: bp_H5T_STD_I64LE(), memType: bp_H5T_NATIVE_INT64())
    }

    /// Stores a 1-D float64 attribute. Keep attributes small (HDF5 limits them to 64 KiB);
    /// use a dataset for long arrays.
    public func setAttribute(_ name: String, _ values: [Double]) throws {
        try setNumericAttribute(name, values, scalar: false, fileType: bp_H5T_IEEE_F64LE(), memType: bp_H5T_NATIVE_DOUBLE())
    }

    /// Stores a 1-D int64 attribute.
    public func setAttribute(_ name: String, _ values: [Int]) throws {
        try setNumericAttribute(name, values.map { Int64($0) }, scalar: false, fileType: bp_H5T_STD_I64LE(),
                                memType: bp_H5T_NATIVE_INT64())
    }

    /// Whether this group has the attribute.
    public func hasAttribute(_ name: String) -> Bool {
        guard !name.isEmpty, !name.contains("\0") else { return false }
        return H5Library.locked {
            let status = H5Aexists(handle.id, name)
            if status < 0 { _ = bp_clear_errors() }
            return status > 0
        }
    }

    /// Attribute names in name order.
    public func attributeNames() throws -> [String] {
        try H5Library.locked {
            let count = bp_num_attrs(handle.id)
            try location.check(count, "H5Oget_info2")
            var names: [String] = []
            for i in 0..<UInt64(count) {
                let n = try location.check(
                    H5Aget_name_by_idx(handle.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, bp_H5P_DEFAULT()),
                    "H5Aget_name_by_idx")
                var buf = [CChar](repeating: 0, count: Int(n) + 1)
                try location.check(
                    H5Aget_name_by_idx(handle.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, bp_H5P_DEFAULT()),
                    "H5Aget_name_by_idx")
                names.append(decodeNulTerminated(buf))
            }
            return names
        }
    }

    /// Reads any attribute this module can represent (integers, floats, strings; scalar or 1-D).
    public func attribute(_ name: String) throws -> H5Value {
        let op = "read attribute '\(name)'"
        try validate(name, location, op)
        return try H5Library.locked {
            guard hasAttribute(name) else { throw location.error(.notFound, op) }
            let aid = try location.check(H5Aopen(handle.id, name, bp_H5P_DEFAULT()), "H5Aopen '\(name)'")
            defer { _ = H5Aclose(aid) }
            let type = try location.check(H5Aget_type(aid), "H5Aget_type '\(name)'")
            defer { closeType(type) }
            let space = try location.check(H5Aget_space(aid), "H5Aget_space '\(name)'")
            defer { closeSpace(space) }
            let scalar = H5Sget_simple_extent_type(space) == H5S_SCALAR
            let count = Int(try location.check(H5Sget_simple_extent_npoints(space), "H5Sget_simple_extent_npoints"))
            switch H5Tget_class(type) {
            case H5T_INTEGER:
                var values = [Int64](repeating: 0, count: count)
                if count > 0 {
                    try location.check(values.withUnsafeMutableBytes { H5Aread(aid, bp_H5T_NATIVE_INT64(), $0.baseAddress) },
                                       "H5Aread '\(name)'")
                }
                return scalar ? .int(Int(values.first ?? 0)) : .ints(values.map { Int($0) })
            case H5T_FLOAT:
                var values = [Double](repeating: 0, count: count)
                if count > 0 {
                    try location.check(values.withUnsafeMutableBytes { H5Aread(aid, bp_H5T_NATIVE_DOUBLE(), $0.baseAddress) },
                                       "H5Aread '\(name)'")
                }
                return scalar ? .double(values.first ?? 0) : .doubles(values)
            case H5T_STRING:
                let strings = try readStringValues(fileType: type, space: space, count: count, loc: location,
                                                   op: "H5Aread '\(name)'") { mem, buf in H5Aread(aid, mem, buf) }
                return scalar ? .string(strings.first ?? "") : .strings(strings)
            default:
                throw location.error(.typeMismatch, op, "unsupported attribute type")
            }
        }
    }

    /// All attributes, by name.
    public func attributes() throws -> [String: H5Value] {
        var result: [String: H5Value] = [:]
        for name in try attributeNames() { result[name] = try attribute(name) }
        return result
    }

    public func stringAttribute(_ name: String) throws -> String {
        switch try attribute(name) {
        case .string(let s): return s
        case .strings(let a) where a.count == 1: return a[0]
        default: throw location.error(.typeMismatch, "read attribute '\(name)'", "not a string")
        }
    }

    /// A float attribute; integer attributes are converted.
    public func doubleAttribute(_ name: String) throws -> Double {
        switch try attribute(name) {
        case .double(let d): return d
        case .int(let i): return Double(i)
        case .doubles(let a) where a.count == 1: return a[0]
        default: throw location.error(.typeMismatch, "read attribute '\(name)'", "not a scalar number")
        }
    }

    public func intAttribute(_ name: String) throws -> Int {
        switch try attribute(name) {
        case .int(let i): return i
        case .ints(let a) where a.count == 1: return a[0]
        default: throw location.error(.typeMismatch, "read attribute '\(name)'", "not a scalar integer")
        }
    }

    /// A 1-D (or scalar) float attribute; integers are converted.
    public func doubleArrayAttribute(_ name: String) throws -> [Double] {
        switch try attribute(name) {
        case .doubles(let a): return a
        case .double(let d): return [d]
        case .ints(let a): return a.map { Double($0) }
        case .int(let i): return [Double(i)]
        default: throw location.error(.typeMismatch, "read attribute '\(name)'", "not numeric")
        }
    }

    public func intArrayAttribute(_ name: String) throws -> [Int] {
        switch try attribute(name) {
        case .ints(let a): return a
        case .int(let i): return [i]
        default: throw location.error(.typeMismatch, "read attribute '\(name)'", "not integer")
        }
    }

    private func setNumericAttribute<T>(_ name: String, _ values: [T], scalar: Bool, fileType: hid_t,
                                        memType: hid_t) throws {
        let op = "write attribute '\(name)'"
        try validate(name, location, op)
        try H5Library.locked {
            let space: hid_t
            if scalar {
                space = try location.check(H5Screate(H5S_SCALAR), "H5Screate")
            } else {
                var dims: [hsize_t] = [hsize_t(values.count)]
                space = try location.check(H5Screate_simple(1, &dims, nil), "H5Screate_simple")
            }
            defer { closeSpace(space) }
            try values.withUnsafeBytes { raw in
                try writeAttribute(name, fileType: fileType, memType: memType, space: space,
                                   buffer: values.isEmpty ? nil : raw.baseAddress, op: op)
            }
        }
    }

    /// Creates (replacing) attribute `name` and writes `buffer` (nil: nothing to write).
    private func writeAttribute(_ name: String, fileType: hid_t, memType: hid_t, space: hid_t,
                                buffer: UnsafeRawPointer?, op: String) throws {
        let exists = try location.check(H5Aexists(handle.id, name), "H5Aexists '\(name)'")
        if exists > 0 { try location.check(H5Adelete(handle.id, name), "H5Adelete '\(name)'") }
        let acpl = try location.check(H5Pcreate(bp_H5P_ATTRIBUTE_CREATE()), "H5Pcreate(attribute create)")
        defer { closePlist(acpl) }
        try location.check(H5Pset_char_encoding(acpl, H5T_CSET_UTF8), "H5Pset_char_encoding")
        let aid = try location.check(H5Acreate2(handle.id, name, fileType, space, acpl, bp_H5P_DEFAULT()),
                                     "H5Acreate2 '\(name)'")
        defer { _ = H5Aclose(aid) }
        if let buffer {
            try location.check(H5Awrite(aid, memType, buffer), "H5Awrite '\(name)'")
        }
    }

    // MARK: - Datasets

    /// Writes a float32 dataset. `shape` defaults to 1-D; `[]` makes a scalar (one value).
    /// Datasets of 1024 elements or more are chunked and compressed (shuffle + gzip level 4).
    public func write(_ name: String, floats: [Float], shape: [Int]? = nil) throws {
        try writeNumeric(name, floats, shape: shape ?? [floats.count], fileType: bp_H5T_IEEE_F32LE(),
                         memType: bp_H5T_NATIVE_FLOAT())
    }

    /// Writes a float64 dataset (see `write(_:floats:shape:)`).
    public func write(_ name: String, doubles: [Double], shape: [Int]? = nil) throws {
        try writeNumeric(name, doubles, shape: shape ?? [doubles.count], fileType: bp_H5T_IEEE_F64LE(),
                         memType: bp_H5T_NATIVE_DOUBLE())
    }

    /// Writes an int64 dataset (see `write(_:floats:shape:)`).
    public func write(_ name: String, int64s: [Int64], shape: [Int]? = nil) throws {
        try writeNumeric(name, int64s, shape: shape ?? [int64s.count], fileType: bp_H5T_STD_I64LE(),
                         memType: bp_H5T_NATIVE_INT64())
    }

    /// Writes a scalar float64 dataset (for aggregates).
    public func write(_ name: String, scalar: Double) throws {
        try write(name, doubles: [scalar], shape: [])
    }

    /// Writes a 1-D dataset of variable-length UTF-8 strings (h5py: `str` via `.asstr()`,
    /// `bytes` otherwise). Strings must not contain NUL.
    public func write(_ name: String, strings: [String]) throws {
        let loc = location.child(name)
        let op = "write dataset"
        try validate(name, loc, op)
        if let bad = strings.firstIndex(where: { $0.contains("\0") }) {
            throw loc.error(.invalidArgument, op, "string \(bad) contains a NUL character")
        }
        try H5Library.locked {
            if contains(name) { throw loc.error(.alreadyExists, op) }
            let type = try makeVariableStringType(loc)
            defer { closeType(type) }
            var dims: [hsize_t] = [hsize_t(strings.count)]
            let space = try loc.check(H5Screate_simple(1, &dims, nil), "H5Screate_simple")
            defer { closeSpace(space) }
            let lcpl = try makeLinkCreatePlist(loc)
            defer { closePlist(lcpl) }
            let did = try loc.check(H5Dcreate2(handle.id, name, type, space, lcpl, bp_H5P_DEFAULT(), bp_H5P_DEFAULT()),
                                    "H5Dcreate2")
            defer { _ = H5Dclose(did) }
            guard !strings.isEmpty else { return }
            var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
            defer { for p in pointers { free(p) } }
            if pointers.contains(where: { $0 == nil }) { throw loc.error(.io, op, "out of memory") }
            try loc.check(pointers.withUnsafeMutableBytes {
                H5Dwrite(did, type, bp_H5S_ALL(), bp_H5S_ALL(), bp_H5P_DEFAULT(), $0.baseAddress)
            }, "H5Dwrite")
        }
    }

    public func readFloats(_ name: String) throws -> (values: [Float], shape: [Int]) {
        try readNumeric(name, as: Float.self, memType: bp_H5T_NATIVE_FLOAT(), allowFloat: true)
    }

    public func readDoubles(_ name: String) throws -> (values: [Double], shape: [Int]) {
        try readNumeric(name, as: Double.self, memType: bp_H5T_NATIVE_DOUBLE(), allowFloat: true)
    }

    /// Reads an integer dataset (float datasets are refused rather than truncated).
    public func readInt64s(_ name: String) throws -> (values: [Int64], shape: [Int]) {
        try readNumeric(name, as: Int64.self, memType: bp_H5T_NATIVE_INT64(), allowFloat: false)
    }

    /// Reads a scalar (or one-element) numeric dataset as a Double.
    public func readScalar(_ name: String) throws -> Double {
        let (values, _) = try readDoubles(name)
        guard values.count == 1 else {
            throw location.child(name).error(.typeMismatch, "read scalar", "dataset has \(values.count) elements")
        }
        return values[0]
    }

    /// Reads a string dataset (variable- or fixed-length), flattened in row-major order.
    public func readStrings(_ name: String) throws -> [String] {
        try withDataset(name, "read strings") { did, loc in
            let type = try loc.check(H5Dget_type(did), "H5Dget_type")
            defer { closeType(type) }
            guard H5Tget_class(type) == H5T_STRING else {
                throw loc.error(.typeMismatch, "read strings", "dataset is not a string dataset")
            }
            let space = try loc.check(H5Dget_space(did), "H5Dget_space")
            defer { closeSpace(space) }
            let count = Int(try loc.check(H5Sget_simple_extent_npoints(space), "H5Sget_simple_extent_npoints"))
            return try readStringValues(fileType: type, space: space, count: count, loc: loc, op: "H5Dread") { mem, buf in
                H5Dread(did, mem, bp_H5S_ALL(), bp_H5S_ALL(), bp_H5P_DEFAULT(), buf)
            }
        }
    }

    /// Shape, element type, chunking and filters of a dataset.
    public func datasetInfo(_ name: String) throws -> H5DatasetInfo {
        try withDataset(name, "dataset info") { did, loc in
            let shape = try datasetShape(did, loc)
            let type = try loc.check(H5Dget_type(did), "H5Dget_type")
            defer { closeType(type) }
            let size = Int(H5Tget_size(type))
            let element: H5ElementKind
            switch H5Tget_class(type) {
            case H5T_FLOAT: element = .float(bytes: size)
            case H5T_INTEGER: element = .integer(bytes: size, signed: H5Tget_sign(type) == H5T_SGN_2)
            case H5T_STRING: element = .string(variableLength: H5Tis_variable_str(type) > 0)
            default: element = .other
            }
            let dcpl = try loc.check(H5Dget_create_plist(did), "H5Dget_create_plist")
            defer { closePlist(dcpl) }
            var chunks: [Int]? = nil
            if H5Pget_layout(dcpl) == H5D_CHUNKED {
                var dims = [hsize_t](repeating: 0, count: max(shape.count, 1))
                let rank = try loc.check(H5Pget_chunk(dcpl, Int32(dims.count), &dims), "H5Pget_chunk")
                chunks = dims.prefix(Int(rank)).map { Int($0) }
            }
            var filters: [Int] = []
            let nfilters = try loc.check(H5Pget_nfilters(dcpl), "H5Pget_nfilters")
            for i in 0..<UInt32(nfilters) {
                var flags: UInt32 = 0
                var nelmts = 8
                var values = [UInt32](repeating: 0, count: 8)
                var config: UInt32 = 0
                let id = try loc.check(H5Pget_filter2(dcpl, i, &flags, &nelmts, &values, 0, nil, &config),
                                       "H5Pget_filter2")
                filters.append(Int(id))
            }
            return H5DatasetInfo(shape: shape, element: element, chunks: chunks, filters: filters)
        }
    }

    private func writeNumeric<T>(_ name: String, _ values: [T], shape: [Int], fileType: hid_t, memType: hid_t) throws {
        let loc = location.child(name)
        let op = "write dataset"
        try validate(name, loc, op)
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw loc.error(.invalidArgument, op, "negative dimension in shape \(shape)")
        }
        guard shape.reduce(1, *) == values.count else {
            throw loc.error(.invalidArgument, op, "shape \(shape) holds \(shape.reduce(1, *)) values, got \(values.count)")
        }
        try H5Library.locked {
            if contains(name) { throw loc.error(.alreadyExists, op) }
            let space: hid_t
            if shape.isEmpty {
                space = try loc.check(H5Screate(H5S_SCALAR), "H5Screate")
            } else {
                var dims = shape.map { hsize_t($0) }
                space = try loc.check(H5Screate_simple(Int32(dims.count), &dims, nil), "H5Screate_simple")
            }
            defer { closeSpace(space) }
            let dcpl = try loc.check(H5Pcreate(bp_H5P_DATASET_CREATE()), "H5Pcreate(dataset create)")
            defer { closePlist(dcpl) }
            if values.count >= H5Group.compressionThreshold && !shape.isEmpty {
                var chunk = H5Group.chunkShape(for: shape, elementSize: MemoryLayout<T>.stride).map { hsize_t($0) }
                try loc.check(H5Pset_chunk(dcpl, Int32(chunk.count), &chunk), "H5Pset_chunk")
                try loc.check(H5Pset_shuffle(dcpl), "H5Pset_shuffle")
                try loc.check(H5Pset_deflate(dcpl, 4), "H5Pset_deflate")
            }
            let lcpl = try makeLinkCreatePlist(loc)
            defer { closePlist(lcpl) }
            let did = try loc.check(H5Dcreate2(handle.id, name, fileType, space, lcpl, dcpl, bp_H5P_DEFAULT()),
                                    "H5Dcreate2")
            defer { _ = H5Dclose(did) }
            guard !values.isEmpty else { return }
            try loc.check(values.withUnsafeBytes {
                H5Dwrite(did, memType, bp_H5S_ALL(), bp_H5S_ALL(), bp_H5P_DEFAULT(), $0.baseAddress)
            }, "H5Dwrite")
        }
    }

    /// Datasets with at least this many elements are chunked and compressed.
    public static let compressionThreshold = 1024

    /// A chunk shape of at most ~256 KiB: halve the largest dimension until it fits.
    static func chunkShape(for shape: [Int], elementSize: Int) -> [Int] {
        let target = max(1, (256 * 1024) / max(1, elementSize))
        var chunk = shape.map { max(1, $0) }
        while chunk.reduce(1, *) > target {
            guard let i = chunk.indices.max(by: { chunk[$0] < chunk[$1] }), chunk[i] > 1 else { break }
            chunk[i] = (chunk[i] + 1) / 2
        }
        return chunk
    }

    private func readNumeric<T: Numeric>(_ name: String, as: T.Type, memType: hid_t,
                                         allowFloat: Bool) throws -> (values: [T], shape: [Int]) {
        try withDataset(name, "read dataset") { did, loc in
            let type = try loc.check(H5Dget_type(did), "H5Dget_type")
            defer { closeType(type) }
            let cls = H5Tget_class(type)
            guard cls == H5T_INTEGER || (allowFloat && cls == H5T_FLOAT) else {
                throw loc.error(.typeMismatch, "read dataset",
                                allowFloat ? "dataset is not numeric" : "dataset is not an integer dataset")
            }
            let shape = try datasetShape(did, loc)
            let count = shape.reduce(1, *)
            var values = [T](repeating: 0, count: count)
            if count > 0 {
                try loc.check(values.withUnsafeMutableBytes {
                    H5Dread(did, memType, bp_H5S_ALL(), bp_H5S_ALL(), bp_H5P_DEFAULT(), $0.baseAddress)
                }, "H5Dread")
            }
            return (values, shape)
        }
    }

    private func withDataset<T>(_ name: String, _ op: String, _ body: (hid_t, H5Location) throws -> T) throws -> T {
        let loc = location.child(name)
        try validate(name, loc, op)
        return try H5Library.locked {
            guard let kind = try kind(of: name) else { throw loc.error(.notFound, op) }
            guard kind == .dataset else { throw loc.error(.typeMismatch, op, "object is not a dataset") }
            let did = try loc.check(H5Dopen2(handle.id, name, bp_H5P_DEFAULT()), "H5Dopen2")
            defer { _ = H5Dclose(did) }
            return try body(did, loc)
        }
    }

    private func datasetShape(_ did: hid_t, _ loc: H5Location) throws -> [Int] {
        let space = try loc.check(H5Dget_space(did), "H5Dget_space")
        defer { closeSpace(space) }
        if H5Sget_simple_extent_type(space) == H5S_NULL { return [0] }
        let rank = Int(try loc.check(H5Sget_simple_extent_ndims(space), "H5Sget_simple_extent_ndims"))
        guard rank > 0 else { return [] }
        var dims = [hsize_t](repeating: 0, count: rank)
        try loc.check(H5Sget_simple_extent_dims(space, &dims, nil), "H5Sget_simple_extent_dims")
        return dims.map { Int($0) }
    }

    // MARK: - Helpers

    private func validate(_ name: String, _ loc: H5Location, _ op: String) throws {
        if name.isEmpty { throw loc.error(.invalidArgument, op, "empty name") }
        if name.contains("\0") { throw loc.error(.invalidArgument, op, "name contains a NUL character") }
    }

    /// Link creation: UTF-8 names, missing intermediate groups created.
    func makeLinkCreatePlist(_ loc: H5Location) throws -> hid_t {
        let lcpl = try loc.check(H5Pcreate(bp_H5P_LINK_CREATE()), "H5Pcreate(link create)")
        do {
            try loc.check(H5Pset_create_intermediate_group(lcpl, 1), "H5Pset_create_intermediate_group")
            try loc.check(H5Pset_char_encoding(lcpl, H5T_CSET_UTF8), "H5Pset_char_encoding")
        } catch {
            closePlist(lcpl)
            throw error
        }
        return lcpl
    }
}

/// A variable-length UTF-8 string type (caller closes it).
func makeVariableStringType(_ loc: H5Location) throws -> hid_t {
    let type = try loc.check(H5Tcopy(bp_H5T_C_S1()), "H5Tcopy")
    do {
        try loc.check(H5Tset_size(type, bp_H5T_VARIABLE()), "H5Tset_size")
        try loc.check(H5Tset_cset(type, H5T_CSET_UTF8), "H5Tset_cset")
    } catch {
        closeType(type)
        throw error
    }
    return type
}

/// Reads `count` strings stored with string type `fileType` (variable- or fixed-length);
/// `read(memType, buffer)` performs the H5Aread/H5Dread.
func readStringValues(fileType: hid_t, space: hid_t, count: Int, loc: H5Location, op: String,
                      read: (hid_t, UnsafeMutableRawPointer) -> herr_t) throws -> [String] {
    guard count > 0 else { return [] }
    let isVariable = try loc.check(H5Tis_variable_str(fileType), "H5Tis_variable_str")
    if isVariable > 0 {
        let mem = try loc.check(H5Tcopy(bp_H5T_C_S1()), "H5Tcopy")
        defer { closeType(mem) }
        try loc.check(H5Tset_size(mem, bp_H5T_VARIABLE()), "H5Tset_size")
        try loc.check(H5Tset_cset(mem, H5Tget_cset(fileType)), "H5Tset_cset")
        var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
        let status = pointers.withUnsafeMutableBytes { read(mem, $0.baseAddress!) }
        defer {
            _ = pointers.withUnsafeMutableBytes { H5Dvlen_reclaim(mem, space, bp_H5P_DEFAULT(), $0.baseAddress) }
        }
        try loc.check(status, op)
        return pointers.map { $0.map { String(cString: $0) } ?? "" }
    } else {
        let size = H5Tget_size(fileType)
        guard size > 0 else { throw loc.error(.hdf5, "H5Tget_size", H5Library.errorStackMessage()) }
        let mem = try loc.check(H5Tcopy(fileType), "H5Tcopy")
        defer { closeType(mem) }
        var bytes = [UInt8](repeating: 0, count: count * size)
        try loc.check(bytes.withUnsafeMutableBytes { read(mem, $0.baseAddress!) }, op)
        let spacePadded = H5Tget_strpad(fileType) == H5T_STR_SPACEPAD
        return (0..<count).map { i in
            var item = bytes[(i * size)..<((i + 1) * size)]
            if let nul = item.firstIndex(of: 0) { item = item[..<nul] }
            if spacePadded { while item.last == 0x20 { item = item.dropLast() } }
            return String(decoding: item, as: UTF8.self)
        }
    }
}

/// Decodes a NUL-terminated C buffer as UTF-8 (invalid bytes repaired).
func decodeNulTerminated(_ buf: [CChar]) -> String {
    let bytes = buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
