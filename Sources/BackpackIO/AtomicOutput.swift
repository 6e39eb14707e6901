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
            throw error
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
            throw error
        }
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
