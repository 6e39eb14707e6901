import Foundation

/// An output that cannot be written: the path and the reason.
public struct OutputError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let reason: String
    public init(file: String, reason: String) { self.file = file; self.reason = reason }
    public var description: String { "\(file): \(reason)" }
}

/// Outputs are written beside their target under a temporary name and renamed into place, so
/// an interrupted run leaves either nothing or the previous complete version — never half a file.
public enum AtomicOutput {
    /// Builds a directory at `target` by filling a temporary sibling, then renaming it.
    /// An existing target is replaced only after the new one is complete.
    public static func directory(_ target: URL, _ fill: (URL) throws -> Void) throws {
        let fm = FileManager.default
        let parent = target.deletingLastPathComponent()
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        let temp = parent.appendingPathComponent(".\(target.lastPathComponent).tmp-\(UUID().uuidString.prefix(8))")
        try fm.createDirectory(at: temp, withIntermediateDirectories: false)
        do { try fill(temp) } catch {
            try? fm.removeItem(at: temp)
            throw nameTarget(target, error)
        }
        if fm.fileExists(atPath: target.path) {
            // One atomic step where the kernel offers it: swap the complete new directory with
            // the old one, then delete the old one from the temporary name.
            if exchange(temp, target) {
                try? fm.removeItem(at: temp)
                return
            }
            let old = parent.appendingPathComponent(".\(target.lastPathComponent).old-\(UUID().uuidString.prefix(8))")
            try fm.moveItem(at: target, to: old)
            try fm.moveItem(at: temp, to: target)
            try? fm.removeItem(at: old)
        } else {
            try fm.moveItem(at: temp, to: target)
        }
    }

    /// renameat2(RENAME_EXCHANGE) (Linux 3.15+, glibc 2.28+); false where unavailable.
    private static func exchange(_ a: URL, _ b: URL) -> Bool {
        #if os(Linux)
        typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return false }
        let renameat2 = unsafeBitCast(symbol, to: RenameAt2.self)
        let AT_FDCWD: Int32 = -100, RENAME_EXCHANGE: UInt32 = 1 << 1
        return renameat2(AT_FDCWD, a.path, AT_FDCWD, b.path, RENAME_EXCHANGE) == 0
        #else
        return false
        #endif
    }

    /// Writes `data` to a temporary sibling of `target`, then renames it over `target`.
    public static func file(_ target: URL, data: Data) throws {
        let temp = target.deletingLastPathComponent()
            .appendingPathComponent(".\(target.lastPathComponent).tmp-\(UUID().uuidString.prefix(8))")
        do {
            try data.write(to: temp)
            if rename(temp.path, target.path) != 0 {
                throw OutputError(file: target.path, reason: "cannot rename the finished output into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            try? FileManager.default.removeItem(at: temp)
            throw nameTarget(target, error)
        }
    }

    /// A full disk reported on a file inside the temporary sibling names the target instead, and
    /// says what happened (the temporary is gone, the previous version stays).
    public static func nameTarget(_ target: URL, _ error: Error) -> Error {
        guard let reason = OutputCheck.spaceReason("\(error)") else { return error }
        return OutputError(file: target.path, reason: "\(reason): \(error)")
    }

    /// Refuses to write into (or replace) a directory the command reads from.
    public static func checkNotInput(_ output: URL, inputs: [URL]) throws {
        let out = realPath(output)
        for input in inputs {
            let path = realPath(input)
            if out == path || path.hasPrefix(out + "/") || out.hasPrefix(path + "/") {
                throw OutputError(file: output.path, reason: "refusing to write into or over the input \(input.path); choose another output path")
            }
        }
    }

    /// The path with every symbolic link resolved, also when its last components do not exist yet
    /// (an output about to be made): the nearest existing ancestor is resolved and the rest kept.
    /// Foundation's resolvingSymlinksInPath leaves a path alone when it does not exist, so an
    /// output under a linked input folder would not be recognised.
    static func realPath(_ url: URL) -> String {
        var existing = url.standardizedFileURL
        var rest: [String] = []
        while !FileManager.default.fileExists(atPath: existing.path), existing.pathComponents.count > 1 {
            rest.insert(existing.lastPathComponent, at: 0)
            existing.deleteLastPathComponent()
        }
        var resolved = existing.resolvingSymlinksInPath()
        for component in rest { resolved.appendPathComponent(component) }
        return resolved.standardizedFileURL.path
    }
}

/// Checks an output before any work is done, so that a long computation never ends in "cannot
/// write": the parent folder exists and accepts new files, and the path is not of the wrong kind.
/// Every error names the path and the reason.
///
/// "Accepts new files" is tested by creating and removing a probe file (`.NAME.probe-*`) in the
/// parent: permission bits alone say nothing for root, a read-only mount or /proc.
public enum OutputCheck {
    /// A file output (results file, safetensors, HTML): the parent is an existing, writable folder
    /// and the path is not a directory.
    public static func file(_ url: URL) throws {
        let target = url.standardizedFileURL
        if isDirectory(target) || url.path.hasSuffix("/") && FileManager.default.fileExists(atPath: target.path) {
            throw OutputError(file: target.path, reason: "is a directory; this output is a file (give a file name, e.g. inside that directory)")
        }
        let parent = target.deletingLastPathComponent()
        try checkFolder(parent, for: target, mustExist: true)
    }

    /// A folder output (a model folder, replaced atomically): the path is a folder or absent, and
    /// the nearest existing ancestor is a writable folder (missing parents are created).
    public static func directory(_ url: URL) throws {
        let target = url.standardizedFileURL
        if FileManager.default.fileExists(atPath: target.path), !isDirectory(target) {
            throw OutputError(file: target.path, reason: "exists and is not a directory; the output is a model folder")
        }
        try checkFolder(target.deletingLastPathComponent(), for: target, mustExist: false)
    }

    /// The reason when an error's text says the disk is full or the file size limit was hit
    /// (EFBIG, ENOSPC, EDQUOT as the C library spells them), else nil.
    public static func spaceReason(_ text: String) -> String? {
        let full = [EFBIG, ENOSPC, EDQUOT].map { String(cString: strerror($0)) }
        guard let hit = full.first(where: { text.contains($0) }) else { return nil }
        return "the disk is full or the file size limit was reached (\(hit)); the previous version is unchanged"
    }

    private static func isDirectory(_ url: URL) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && isDir.boolValue
    }

    private static func checkFolder(_ folder: URL, for target: URL, mustExist: Bool) throws {
        var existing = folder
        // The nearest existing ancestor: a regular file there means the path cannot be made.
        while !FileManager.default.fileExists(atPath: existing.path), existing.pathComponents.count > 1 {
            if mustExist {
                throw OutputError(file: target.path, reason: "the folder \(existing.path) does not exist")
            }
            existing.deleteLastPathComponent()
        }
        guard isDirectory(existing) else {
            throw OutputError(file: target.path, reason: "\(existing.path) is not a directory")
        }
        let probe = existing.appendingPathComponent(".\(target.lastPathComponent).probe-\(UUID().uuidString.prefix(8))")
        let fd = open(probe.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw OutputError(file: target.path, reason: "cannot create files in \(existing.path): \(String(cString: strerror(errno)))")
        }
        close(fd)
        unlink(probe.path)
    }
}
