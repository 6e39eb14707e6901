import Foundation
import Crypto

/// An input file that cannot be read: the path and the reason.
public struct InputError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let reason: String
    public init(file: String, reason: String) { self.file = file; self.reason = reason }
    public var description: String { "\(file): \(reason)" }
}

/// The project's one SHA-256 (swift-crypto): files, bytes in memory, and lists of files.
public enum FileDigest {
    /// SHA-256 of bytes in memory as lowercase hex (edit files, strings).
    public static func sha256(data: Data) -> String {
        hex(SHA256.hash(data: data))
    }

    /// One file's digest; for several files the digest of their digests joined by newlines (so a
    /// set of data files, or a sharded checkpoint, has one fingerprint).
    public static func combined(_ files: [URL]) throws -> String {
        combined(digests: try files.map { try sha256($0) })
    }

    /// What `combined(_:)` gives for files with these digests (each file hashed once by callers
    /// that keep the per-file digests too).
    public static func combined(digests: [String]) -> String {
        if digests.count == 1 { return digests[0] }
        return sha256(data: Data(digests.joined(separator: "\n").utf8))
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String { digest.map { String(format: "%02x", $0) }.joined() }

    /// SHA-256 of a file as lowercase hex, read in 4 MiB chunks (files may be hundreds of MB).
    public static func sha256(_ url: URL) throws -> String {
        let handle: FileHandle
        do { handle = try FileHandle(forReadingFrom: url) } catch {
            throw InputError(file: url.path, reason: "cannot open: \(error.localizedDescription)")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk: Data?
            do { chunk = try handle.read(upToCount: 4 << 20) } catch {
                throw InputError(file: url.path, reason: "read failed: \(error.localizedDescription)")
            }
            guard let chunk, !chunk.isEmpty else { break }
            hasher.update(data: chunk)
        }
        return hex(hasher.finalize())
    }
}
