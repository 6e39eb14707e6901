import ArgumentParser
import BackpackCheckpoint
import BackpackEvaluation
import BackpackHub
import BackpackIO
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Manage external evaluation data sets.",
                                                    subcommands: [DataFetch.self])
}

/// Canonical files of the external data sets, from the official repositories.
enum DataSources {
    struct Source {
        var name: String; var url: String; var file: String; var sha256: String?
        /// For an archive: the member to extract (with `unzip`) and where under the cache it goes.
        var extract: (member: String, file: String)? = nil
    }
    static let all: [Source] = [
        Source(name: "crows-pairs", url: "https://raw.githubusercontent.com/nyu-mll/crows-pairs/master/data/crows_pairs_anonymized.csv",
               file: "crows_pairs/crows_pairs_anonymized.csv",
               sha256: "dfb36986ce0502abbaf7055b9176da3d08d48e07df1251991b5dfbcbceab9d0c"),
        // The official dev.json; its digest is not pinned yet (no network where this was written): the
        // fetch prints it so that it can be pinned here.
        Source(name: "stereoset", url: "https://raw.githubusercontent.com/moinnadeem/StereoSet/master/data/dev.json",
               file: "stereoset/dev.json", sha256: nil),
        // lm-evaluation-harness's lambada_openai: OpenAI's LAMBADA test file; the SHA-256 is the one
        // the harness's original LAMBADA task pinned for this URL.
        Source(name: "lambada", url: "https://openaipublic.blob.core.windows.net/gpt-2/data/lambada_test.jsonl",
               file: "lambada/lambada_test.jsonl",
               sha256: "4aa8d02cd17c719165fc8a7887fddd641f43fcafa4b1c806ca8abc31fabdb226"),
        // lm-evaluation-harness's wikitext (EleutherAI/wikitext_document_level, wikitext-2-raw-v1)
        // reads this archive's wiki.test.raw; no digest is published for it (printed, and recorded
        // in every result as the suite's data_sha256).
        Source(name: "wikitext", url: "https://wikitext.smerity.com/wikitext-2-raw-v1.zip",
               file: "wikitext/wikitext-2-raw-v1.zip", sha256: nil,
               extract: ("wikitext-2-raw/wiki.test.raw", "wikitext/wiki.test.raw")),
    ]
}

struct DataFetch: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fetch",
        abstract: "Download a data set from its official repository, verify its SHA-256 and cache it under ~/.cache/backpack-edit/.")

    @Argument(help: "crows-pairs, stereoset, lambada or wikitext") var name: String
    @Option(name: .long, help: "Cache directory (default ~/.cache/backpack-edit, or BACKPACK_CACHE).") var cacheDir: String?
    @Option(name: .long, help: "Download from this URL instead of the canonical one (mirrors, tests).") var url: String?
    @Option(name: .long, help: "Seconds before giving up on the download.") var timeout: Int = 60

    func run() throws {
        guard let source = DataSources.all.first(where: { $0.name == name }) else {
            throw ValidationError("unknown data set '\(name)' (known: \(DataSources.all.map(\.name).joined(separator: ", ")))")
        }
        let cache = cacheDir.map { URL(fileURLWithPath: $0) } ?? DataLocations.defaultCache
        let target = cache.appendingPathComponent(source.file)
        let from = url ?? source.url
        guard let address = URL(string: from), address.scheme == "http" || address.scheme == "https" else {
            throw ValidationError("--url '\(from)': expected an http:// or https:// address")
        }
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        // Kept after a cut connection, so that the next fetch resumes (BackpackHub's client sends Range).
        let partial = target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).incomplete")
        // Without a pinned digest nothing would catch a partial file from another URL or version:
        // resume only within this run then.
        if source.sha256 == nil { try? FileManager.default.removeItem(at: partial) }
        FileHandle.standardError.write(Data("downloading \(from)\n".utf8))
        signal(SIGXFSZ, SIG_IGN)
        let client = HTTPClient(headers: ["User-Agent": "backpack-edit"], idleTimeout: TimeInterval(timeout),
                                totalTimeout: TimeInterval(timeout))
        let digest: String
        do {
            digest = try client.fetch(address, partial: partial, destination: target, expectedSHA256: source.sha256,
                                      label: source.name, progress: ProgressDisplay())
        } catch let error as DownloadError where error.kind == .checksumMismatch {
            throw DataFetchError("\(from): \(error.description)")
        } catch let error as DownloadError where error.kind == .diskFull || error.kind == .notWritable {
            throw DataFetchError("download of \(source.name) to \(target.path) failed: \(error.description)")
        } catch let error as DownloadError {
            throw DataFetchError("download of \(source.name) from \(from) failed (\(error.description)). Are you offline? Copy the file by hand to \(target.path), or pass --data-dir to `backpack eval`.")
        }
        print("\(source.name): \(target.path) sha256 \(digest)\(source.sha256 == nil ? " (not pinned)" : " (verified)")")
        if let (member, file) = source.extract { try Self.unzip(target, member: member, to: cache.appendingPathComponent(file)) }
    }

    /// Extracts one member of a zip archive with the system's `unzip` (to a temporary file, then renamed).
    static func unzip(_ archive: URL, member: String, to destination: URL) throws {
        let tool = ["/usr/bin/unzip", "/bin/unzip", "/usr/local/bin/unzip"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let tool else {
            throw DataFetchError("extracting \(member) from \(archive.path) needs `unzip` (not found); extract it by hand to \(destination.path)")
        }
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
        _ = try FileManager.default.replaceItemAt(destination, withItemAt: temporary)
        print("\(member) -> \(destination.path) sha256 \(try FileDigest.sha256(destination))")
    }
}

struct DataFetchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
