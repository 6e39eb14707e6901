import CHDF5
import Foundation

/// An open HDF5 file. Closed by `close()` or, failing that, when the object is released.
///
/// Not thread-safe: use a file and the groups taken from it on one thread (see H5Library.swift).
public final class H5File {
    /// The file on disk.
    public let url: URL
    /// The root group "/".
    public let root: H5Group
    private let handle: H5Handle
    private let location: H5Location

    private init(url: URL, id: hid_t, location: H5Location) throws {
        self.url = url
        self.location = location
        self.handle = H5Handle(id, closer: { H5Fclose($0) })
        let rootID = try H5Library.locked {
            try location.check(H5Gopen2(id, "/", bp_H5P_DEFAULT()), "H5Gopen2")
        }
        self.root = H5Group(id: rootID, location: location)
    }

    /// Creates a new file. Refuses to replace an existing file unless `overwrite` is true.
    /// The root group tracks link creation order (so `children()` lists in creation order).
    public static func create(_ url: URL, overwrite: Bool = false) throws -> H5File {
        try create(url, displayPath: url.path, overwrite: overwrite)
    }

    static func create(_ url: URL, displayPath: String, overwrite: Bool) throws -> H5File {
        let loc = H5Location(file: displayPath, path: "/")
        return try H5Library.locked {
            let fcpl = try loc.check(H5Pcreate(bp_H5P_FILE_CREATE()), "H5Pcreate(file create)")
            defer { closePlist(fcpl) }
            try loc.check(H5Pset_link_creation_order(fcpl, bp_H5P_CRT_ORDER_TRACKED() | bp_H5P_CRT_ORDER_INDEXED()),
                          "H5Pset_link_creation_order")
            let flags = overwrite ? bp_H5F_ACC_TRUNC() : bp_H5F_ACC_EXCL()
            let id = H5Fcreate(url.path, flags, fcpl, bp_H5P_DEFAULT())
            if id < 0 {
                let stack = H5Library.errorStackMessage()
                if !overwrite && FileManager.default.fileExists(atPath: url.path) {
                    throw loc.error(.alreadyExists, "create file", stack)
                }
                throw loc.error(.hdf5, "H5Fcreate", stack)
            }
            return try H5File(url: url, id: id, location: loc)
        }
    }

    /// Opens an existing HDF5 file, read-only unless `writable`.
    /// A missing file or one that is not HDF5 throws an error naming the file.
    public static func open(_ url: URL, writable: Bool = false) throws -> H5File {
        try open(url, displayPath: url.path, writable: writable)
    }

    static func open(_ url: URL, displayPath: String, writable: Bool) throws -> H5File {
        let loc = H5Location(file: displayPath, path: "/")
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw loc.error(.notFound, "open file", "no such file")
        }
        if isDir.boolValue { throw loc.error(.invalidArgument, "open file", "is a directory") }
        return try H5Library.locked {
            let isHDF5 = H5Fis_hdf5(url.path)
            if isHDF5 == 0 {
                _ = bp_clear_errors()
                throw loc.error(.unsupportedLayout, "open file", "not an HDF5 file (no HDF5 signature)")
            }
            if isHDF5 < 0 {
                throw loc.error(.hdf5, "H5Fis_hdf5", H5Library.errorStackMessage())
            }
            // A read-only open takes no lock of HDF5's: this project never writes a results file
            // in place (ResultsFile writes a copy under its own lock file and renames it over the
            // file), so a reader cannot meet a file half written, and HDF5's flock only failed
            // opens ("unable to lock the file", errno 11, while any copy of a writer's
            // descriptor lived on; errno 38 on file systems without flock).
            let fapl = try loc.check(H5Pcreate(bp_H5P_FILE_ACCESS()), "H5Pcreate(file access)")
            defer { closePlist(fapl) }
            if !writable { try loc.check(H5Pset_file_locking(fapl, false, true), "H5Pset_file_locking") }
            let id = H5Fopen(url.path, writable ? bp_H5F_ACC_RDWR() : bp_H5F_ACC_RDONLY(), fapl)
            try loc.check(id, "H5Fopen")
            return try H5File(url: url, id: id, location: loc)
        }
    }

    /// Flushes everything to the OS and closes the file identifier. Objects still open from this
    /// file keep HDF5's file open until they are released too (HDF5's "weak" close).
    /// Later calls do nothing.
    public func close() throws {
        try H5Library.locked {
            guard handle.isOpen else { return }
            let flushStatus = H5Fflush(handle.id, H5F_SCOPE_GLOBAL)
            let flushMessage = flushStatus < 0 ? H5Library.errorStackMessage() : ""
            root.handle.close()
            let status = handle.close()
            if flushStatus < 0 { throw location.error(.hdf5, "H5Fflush", flushMessage) }
            try location.check(status, "H5Fclose")
        }
    }

    /// Number of objects (groups, datasets, attributes, datatypes) of this file still open,
    /// not counting the file itself. Useful to check that nothing leaks.
    var openObjectCount: Int {
        H5Library.locked {
            guard handle.isOpen else { return 0 }
            let types = UInt32(H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL)
            return Int(max(0, H5Fget_obj_count(handle.id, types)))
        }
    }
}
