import BackpackEvaluation
import BackpackHub
import BackpackIO
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A suite's external data set, fetched from where its suite file says it comes from. The suite
/// files are the one list of data sources: `data_file` (the file's place under the fetch cache),
/// `url` (where it is published) and, when pinned, `sha256` (of `data_file`). When `url` is a zip
/// archive, the archive is cached beside `data_file` and its one member with `data_file`'s name is
/// extracted (WikiText's `wiki.test.raw` from `wikitext-2-raw-v1.zip`); the pin is checked on
/// that member.
public struct SuiteDataFetch: Sendable {
    public let suiteName: String
    public let suiteFile: URL
    public let dataFile: String
    /// nil: the suite names no source (its data ships in Data/ or is copied by hand).
    public let url: String?
    public let sha256: String?

    /// The suite's `data_file`, `url` and `sha256` (the suite was loaded, so they are valid).
    public init(_ suite: Suite) throws {
        let doc = try SuiteError.wrapping { try SuiteDocument(url: suite.file) }
        guard let dataFile = try doc.optionalString("data_file") else {
            throw SuiteError(file: suite.file.path, reason: "suite '\(suite.name)' (kind \(suite.kindName)) reads no external data set (no 'data_file'): nothing to fetch")
        }
        suiteName = suite.name; suiteFile = suite.file; self.dataFile = dataFile
        url = try doc.optionalString("url")
        sha256 = try doc.optionalString("sha256")?.lowercased()
    }

    var isArchive: Bool { url.flatMap { URL(string: $0) }?.pathExtension.lowercased() == "zip" }

    /// The address to fetch from: `url`, or with BACKPACK_DATA_ENDPOINT set (a mirror, or a test's
    /// local server) that endpoint followed by `url`'s path.
    public func address(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        guard let url else {
            throw SuiteError(file: suiteFile.path, reason: "suite '\(suiteName)' names no 'url' for its data file \(dataFile), so it cannot be fetched; copy the file into --data-dir, the repository's Data/ or the fetch cache")
        }
        guard let endpoint = environment["BACKPACK_DATA_ENDPOINT"], !endpoint.isEmpty, let canonical = URL(string: url) else { return url }
        return (endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint) + canonical.path
    }

    /// Where the suite reads its data from the fetch cache `cache`.
    public func cachedFile(in cache: URL) -> URL { cache.appendingPathComponent(dataFile) }

    /// Downloads from `address` into `cache` (resuming a cut download), verifies the pin, extracts
    /// an archive's member, and returns the cached data file. `say` gets the lines that name what
    /// was written and its SHA-256 (nil: quiet). A server that cannot be reached or does not serve
    /// the file is a `DataFetchError` with `unreachable` set.
    @discardableResult
    public func fetch(from address: String, cache: URL, timeout: Int, progress: ProgressDisplay? = nil,
                      say: ((String) -> Void)? = nil) throws -> URL {
        let target = cachedFile(in: cache)
        let download = isArchive ? target.deletingLastPathComponent().appendingPathComponent(url.flatMap { URL(string: $0) }?.lastPathComponent ?? "")
                                 : target
        // An archive is not pinned (the pin is the member's): checked after the extraction.
        let pinned = isArchive ? nil : sha256
        guard let from = URL(string: address), from.scheme == "http" || from.scheme == "https" else {
            throw DataFetchError("--url '\(address)': expected an http:// or https:// address")
        }
        try FileManager.default.createDirectory(at: download.deletingLastPathComponent(), withIntermediateDirectories: true)
        // Kept after a cut connection, so that the next fetch resumes (BackpackHub's client sends Range).
        let partial = download.deletingLastPathComponent().appendingPathComponent(".\(download.lastPathComponent).incomplete")
        // Without a pinned digest nothing would catch a partial file from another URL or version:
        // resume only within this run then.
        if pinned == nil { try? FileManager.default.removeItem(at: partial) }
        if say != nil { FileHandle.standardError.write(Data("downloading \(address)\n".utf8)) }
        signal(SIGXFSZ, SIG_IGN)
        let client = HTTPClient(headers: ["User-Agent": "backpack-edit"], idleTimeout: TimeInterval(timeout), totalTimeout: TimeInterval(timeout))
        let digest: String
        do {
            digest = try client.fetch(from, partial: partial, destination: download, expectedSHA256: pinned, label: suiteName, progress: progress)
        } catch let error as DownloadError where error.kind == .checksumMismatch {
            throw DataFetchError("\(address): \(error.description)")
        } catch let error as DownloadError where error.kind == .diskFull || error.kind == .notWritable {
            throw DataFetchError("download of \(suiteName) data to \(download.path) failed: \(error.description)")
        } catch let error as DownloadError {
            throw DataFetchError("download of \(suiteName) data from \(address) failed (\(error.description)). Are you offline? Copy the file by hand to \(target.path), or pass --data-dir to `backpack eval`.",
                                 unreachable: true)
        }
        say?("\(suiteName): \(download.path) sha256 \(digest)\(isArchive ? "" : pinned == nil ? " (not pinned)" : " (verified)")")
        guard isArchive else { return target }
        let member = try Self.member(of: download, named: target.lastPathComponent)
        try Self.unzip(download, member: member, to: target)
        let extracted = try FileDigest.sha256(target)
        if let sha256, extracted != sha256 {
            try? FileManager.default.removeItem(at: target)
            throw DataFetchError("\(member) of \(address): SHA-256 \(extracted) differs from the one \(suiteFile.lastPathComponent) pins (\(sha256)); not cached")
        }
        say?("\(member) -> \(target.path) sha256 \(extracted)\(sha256 == nil ? " (not pinned)" : " (verified)")")
        return target
    }

    static func unzipTool() throws -> String {
        guard let tool = ["/usr/bin/unzip", "/bin/unzip", "/usr/local/bin/unzip"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw DataFetchError("extracting from a zip archive needs `unzip` (not found); extract the file by hand into the fetch cache")
        }
        return tool
    }

    /// The archive's one member whose file name is `name` (the suite's data_file names the member
    /// by its file name; the archive's folder layout is the publisher's).
    static func member(of archive: URL, named name: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try unzipTool())
        process.arguments = ["-Z1", archive.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let listing = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw DataFetchError("\(archive.path): unzip cannot list it (exit status \(process.terminationStatus)); is it a zip archive?")
        }
        let matches = listing.split(separator: "\n").map(String.init).filter { $0 == name || $0.hasSuffix("/" + name) }
        guard matches.count == 1 else {
            throw DataFetchError("\(archive.path): expected one member named \(name), found \(matches.isEmpty ? "none" : matches.joined(separator: ", "))")
        }
        return matches[0]
    }

    /// Extracts one member of a zip archive with the system's `unzip` (to a temporary file, then renamed).
    static func unzip(_ archive: URL, member: String, to destination: URL) throws {
        let tool = try unzipTool()
        try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temporary = destination.deletingLastPathComponent().appendingPathComponent(".\(destination.lastPathComponent).partial")
        _ = FileManager.default.createFile(atPath: temporary.path, contents: nil)   // opening it below reports a failure
        let out = try FileHandle(forWritingTo: temporary)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["-p", archive.path, member]
        process.standardOutput = out
        try process.run(); process.waitUntilExit()
        try out.close()
        guard process.terminationStatus == 0 else {
            try? FileManager.default.removeItem(at: temporary)
            throw DataFetchError("unzip could not extract \(member) from \(archive.path) (exit status \(process.terminationStatus))")
        }
        // rename(2): replaces an earlier extraction in one step; Foundation's replaceItemAt fails
        // on Linux when there is none yet.
        guard rename(temporary.path, destination.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw DataFetchError("cannot move the extracted \(member) to \(destination.path): \(reason)")
        }
    }
}

public struct DataFetchError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// The server could not be reached or did not serve the file (offline, blocked, not found).
    public var unreachable = false
    public init(_ d: String, unreachable: Bool = false) { description = d; self.unreachable = unreachable }
}
