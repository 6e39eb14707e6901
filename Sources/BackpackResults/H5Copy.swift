import CHDF5
import Foundation

// Copying between open files, for `backpack merge`: a merged run must hold exactly what the
// shards wrote (element types, shapes, chunking, filters, creation order), so objects are copied
// by HDF5 itself rather than read into Swift values and written again.

extension H5Group {
    /// Copies the child object `name` of `source` (a group with everything below it, or a
    /// dataset) to a new child of the same name here. `source` may be in another open file.
    /// HDF5's object copy keeps datatypes, dataspaces, storage layout, filters, attributes and the
    /// link creation order of copied groups.
    public func copy(_ name: String, from source: H5Group) throws {
        let loc = location.child(name)
        let op = "copy from \(source.filePath):\(source.location.child(name).path)"
        if name.isEmpty || name.contains("\0") { throw loc.error(.invalidArgument, op, "bad name") }
        try H5Library.locked {
            guard source.contains(name) else { throw source.location.child(name).error(.notFound, "copy") }
            if contains(name) { throw loc.error(.alreadyExists, op) }
            let lcpl = try makeLinkCreatePlist(loc)
            defer { closePlist(lcpl) }
            try loc.check(H5Ocopy(source.handle.id, name, handle.id, name, bp_H5P_DEFAULT(), lcpl), "H5Ocopy")
        }
    }

    /// Writes an attribute read with `attribute(_:)` back with the same kind: scalar or 1-D,
    /// string, 64-bit integer or float (every kind this module reads and writes, e.g. a sweep
    /// point's `grid_axes`, a 1-D string attribute).
    public func setAttribute(_ name: String, value: H5Value) throws {
        switch value {
        case .string(let s): try setAttribute(name, s)
        case .double(let d): try setAttribute(name, d)
        case .doubles(let d): try setAttribute(name, d)
        case .int(let i): try setAttribute(name, i)
        case .ints(let i): try setAttribute(name, i)
        case .strings(let s): try setAttribute(name, s)
        }
    }
}
