import BackpackModelFolder
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Downloads what the toolkit needs from a Hub model repository into the shared cache, following
/// huggingface_hub's protocol: HEAD `{endpoint}/{repo}/resolve/{revision}/{file}` without following
/// redirects; X-Repo-Commit names the commit, X-Linked-Etag (else ETag) the blob, X-Linked-Size
/// (else Content-Length) its size, and for LFS files Location the address to GET.
public struct HubDownloader {
    public let environment: HubEnvironment
    public let cache: HubCache
    public var client: HTTPClient
    public var progress: ProgressDisplay?

    public init(environment: HubEnvironment = HubEnvironment(), progress: ProgressDisplay? = nil) {
        self.environment = environment
        cache = HubCache(environment)
        client = HTTPClient(headers: ["User-Agent": "backpack-edit"], idleTimeout: 30)
        self.progress = progress
    }

    public struct Outcome: Sendable {
        public var snapshot: URL
        public var commit: String
        /// Repository paths now in the snapshot.
        public var files: [String] = []
        /// Those transferred by this call (the rest were cached).
        public var downloaded: [String] = []
        /// Optional files the repository does not have.
        public var absent: [String] = []
    }

    /// Tokenizer files taken when the repository has them (the model-folder contract's list).
    public static let tokenizerFiles = ModelFolder.tokenizerFiles

    public func download(_ ref: HubReference) throws -> Outcome {
        if environment.offline {
            do {
                let snapshot = try cache.resolveModel(ref)
                return Outcome(snapshot: snapshot, commit: snapshot.lastPathComponent)
            } catch let error as DownloadError {
                throw DownloadError(.notCached, "HF_HUB_OFFLINE is set, so nothing can be downloaded: \(error.description)")
            }
        }
        try checkWritable()
        // config.json first: its answer names the commit; every other file is asked for at that
        // commit, so that a push to the branch mid-download cannot mix two versions.
        guard case .present(let config) = try metadata(ref.repoID, revision: ref.revision, file: ModelFolder.configFile) else {
            throw DownloadError(.notFound, "\(ref.repoID) has no config.json at revision '\(ref.revision)' (\(url(ref.repoID, ref.revision, ModelFolder.configFile))); is it a transformers model repository?")
        }
        let commit = config.commit
        try writeRef(ref, commit: commit)
        var outcome = Outcome(snapshot: cache.snapshot(ref.repoID, commit: commit), commit: commit)
        try store(ref.repoID, ModelFolder.configFile, config, &outcome)
        let configFile = outcome.snapshot.appendingPathComponent(ModelFolder.configFile)

        // Weights: the first form, in the order every reader prefers them, that the repository has.
        let weights = try ModelFolder.preferredWeights { try take(ref.repoID, commit, $0, &outcome) }
        switch weights {
        case .shardedSafetensors:
            let index = outcome.snapshot.appendingPathComponent(ModelFolder.safetensorsIndexFile)
            for shard in try HubCache.shardNames(index: index) {
                guard try take(ref.repoID, commit, shard, &outcome) else {
                    throw DownloadError(.notFound, "\(ref.repoID)@\(commit): \(ModelFolder.safetensorsIndexFile) names the shard \(shard), which the repository does not have")
                }
            }
        case .safetensors, .torch: break
        case nil: throw DownloadError(.notFound, "\(ref.repoID)@\(ref.revision) has no weights: tried \(ModelFolder.Weights.choices)")
        }

        for file in Self.tokenizerFiles where !(try take(ref.repoID, commit, file, &outcome)) {
            outcome.absent.append(file)
        }
        // The code transformers runs for `trust_remote_code` models, so that it finds it here too.
        for file in try HubCache.autoMapFiles(config: configFile) where !(try take(ref.repoID, commit, file, &outcome)) {
            progress?.note("note: config.json auto_map names \(file), which \(ref.repoID) does not have")
            outcome.absent.append(file)
        }
        return outcome
    }

    // MARK: - One file

    struct Metadata {
        var commit: String
        var etag: String
        var size: Int64
        var location: URL
    }

    enum Lookup {
        case present(Metadata)
        case missing
    }

    func url(_ repoID: String, _ revision: String, _ file: String) -> URL {
        // As hf_hub_url: the revision is quoted whole ('/' too), the path keeps its '/'.
        let rev = revision.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? revision
        let path = file.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~/"))) ?? file
        return URL(string: "\(environment.endpoint)/\(repoID)/resolve/\(rev)/\(path)")!
    }

    var authorization: [String: String] {
        environment.token.map { ["Authorization": "Bearer \($0)"] } ?? [:]
    }

    /// Takes `file` at `commit` when the repository has it; false when it does not (404).
    func take(_ repoID: String, _ commit: String, _ file: String, _ outcome: inout Outcome) throws -> Bool {
        let pointer = outcome.snapshot.appendingPathComponent(file)
        if FileManager.default.fileExists(atPath: pointer.path) {
            outcome.files.append(file)
            return true
        }
        if FileManager.default.fileExists(atPath: cache.noExistMarker(repoID, commit: commit, file: file).path) { return false }
        switch try metadata(repoID, revision: commit, file: file) {
        case .missing: return false
        case .present(let meta):
            guard meta.commit == commit else {
                throw DownloadError(.badResponse, "\(repoID)/\(file): asked for commit \(commit), the server answered for \(meta.commit)")
            }
            try store(repoID, file, meta, &outcome)
            return true
        }
    }

    /// HEAD of one file. Relative redirects (a renamed repository) are followed, at most 5.
    func metadata(_ repoID: String, revision: String, file: String) throws -> Lookup {
        guard HubCache.isSafeRelativePath(file) else {
            throw DownloadError(.badResponse, "\(repoID): refusing the file name '\(file)' (it would leave the snapshot folder)")
        }
        var address = url(repoID, revision, file)
        var head = try client.head(address, headers: authorization)
        var hops = 0
        while (300...399).contains(head.status), let location = head.header("location"),
              !location.contains("://"), hops < 5 {
            guard let next = URL(string: location, relativeTo: address)?.absoluteURL else { break }
            address = next
            head = try client.head(address, headers: authorization)
            hops += 1
        }
        let what = "\(repoID)/\(file) at revision '\(revision)'"
        let serverSays = head.header("x-error-message").map { " (server: \($0))" } ?? ""
        switch head.status {
        case 200...399:
            guard let commit = head.header("x-repo-commit"), HubReference.isCommitHash(commit) else {
                throw DownloadError(.badResponse, "\(address.absoluteString): no X-Repo-Commit header; is \(environment.endpoint) a Hugging Face Hub (check HF_ENDPOINT)?")
            }
            guard let etag = Self.normalizeETag(head.header("x-linked-etag") ?? head.header("etag")), HubCache.isPlainFileName(etag) else {
                throw DownloadError(.badResponse, "\(address.absoluteString): no ETag; cannot name the blob")
            }
            guard let size = (head.header("x-linked-size") ?? head.header("content-length")).flatMap({ Int64($0) }), size >= 0 else {
                throw DownloadError(.badResponse, "\(address.absoluteString): no X-Linked-Size or Content-Length")
            }
            var location = address
            if let l = head.header("location"), let u = URL(string: l, relativeTo: address)?.absoluteURL { location = u }
            return .present(Metadata(commit: commit, etag: etag, size: size, location: location))
        case 401:
            let advice = environment.token == nil
                ? "set HF_TOKEN to a token with read access (\(environment.endpoint)/settings/tokens)"
                : "the token in HF_TOKEN was refused (expired, or without access to \(repoID))"
            throw DownloadError(.unauthorized, "\(what): HTTP 401 Unauthorized: the repository does not exist, or it is private or gated and needs a token: \(advice)\(serverSays)")
        case 403:
            throw DownloadError(.forbidden, "\(what): HTTP 403 Forbidden: the repository is gated; accept its licence at \(environment.endpoint)/\(repoID) while logged in with the account whose token is in HF_TOKEN\(serverSays)")
        case 404:
            switch head.header("x-error-code") {
            case "RepoNotFound":
                throw DownloadError(.notFound, "\(repoID): repository not found at \(environment.endpoint) (HTTP 404); check the name\(serverSays)")
            case "RevisionNotFound":
                throw DownloadError(.notFound, "\(repoID): revision '\(revision)' not found (HTTP 404); check the branch, tag or commit\(serverSays)")
            default:
                guard let commit = head.header("x-repo-commit"), HubReference.isCommitHash(commit) else {
                    throw DownloadError(.notFound, "\(what): HTTP 404: the repository, the revision or the file does not exist\(serverSays)")
                }
                // huggingface_hub remembers the absence so that offline look-ups need not ask.
                try? markAbsent(repoID, commit: commit, file: file)
                return .missing
            }
        default:
            throw DownloadError(.httpStatus(head.status), "\(what): HTTP \(head.status) from \(address.absoluteString)\(serverSays)")
        }
    }

    /// The blob (downloaded under the lock unless present) and the snapshot link to it.
    func store(_ repoID: String, _ file: String, _ meta: Metadata, _ outcome: inout Outcome) throws {
        let blob = cache.blob(repoID, etag: meta.etag)
        let pointer = cache.snapshot(repoID, commit: meta.commit).appendingPathComponent(file)
        try makeDirectory(blob.deletingLastPathComponent())
        try makeDirectory(pointer.deletingLastPathComponent())
        if !FileManager.default.fileExists(atPath: blob.path) {
            let lock = cache.lockFile(repoID, etag: meta.etag)
            try makeDirectory(lock.deletingLastPathComponent())
            let held = try FileLock(lock, waiting: { progress?.note("waiting for another download of \(repoID)/\(file) (lock \(lock.path))") })
            defer { held.release() }
            if !FileManager.default.fileExists(atPath: blob.path) {
                let partial = blob.appendingPathExtension("incomplete")
                try checkSpace(for: meta.size - fileSize(partial), at: blob.deletingLastPathComponent())
                // Hub ETags of LFS files are their SHA-256; git files have a 40-digit sha1 instead.
                let sha256 = meta.etag.count == 64 && meta.etag.allSatisfy(\.isHexDigit) ? meta.etag : nil
                let sameHost = meta.location.host == URL(string: environment.endpoint)?.host
                do {
                    _ = try client.fetch(meta.location, partial: partial, destination: blob, expectedSize: meta.size,
                                         expectedSHA256: sha256, label: "\(repoID)/\(file)", progress: progress,
                                         headers: sameHost ? authorization : [:])
                } catch let error as DownloadError where error.kind == .checksumMismatch {
                    throw DownloadError(.checksumMismatch, "\(error.description) (the Hub's X-Linked-Etag); run `backpack download \(repoID)` again")
                }
                outcome.downloaded.append(file)
            }
        }
        try link(pointer, to: blob)
        outcome.files.append(file)
    }

    /// A relative link (../../blobs/<etag>, one more ../ per folder in the file's path), made
    /// under a temporary name and renamed over the final one.
    func link(_ pointer: URL, to blob: URL) throws {
        let depth = pointer.deletingLastPathComponent().pathComponents.count - cache.repoFolder("x").deletingLastPathComponent().pathComponents.count - 1
        let target = String(repeating: "../", count: depth) + "blobs/" + blob.lastPathComponent
        let temporary = pointer.deletingLastPathComponent().appendingPathComponent(".\(pointer.lastPathComponent).\(UUID().uuidString.prefix(8)).link")
        guard symlink(target, temporary.path) == 0 else { throw writeError(errno, temporary.path, "create the link") }
        guard rename(temporary.path, pointer.path) == 0 else {
            let code = errno
            unlink(temporary.path)
            throw writeError(code, pointer.path, "rename the link")
        }
    }

    func writeRef(_ ref: HubReference, commit: String) throws {
        guard ref.revision != commit else { return }
        let file = cache.refFile(ref)
        if (try? String(contentsOf: file, encoding: .utf8)) == commit { return }
        try makeDirectory(file.deletingLastPathComponent())
        try writeAtomically(Data(commit.utf8), to: file)
    }

    func markAbsent(_ repoID: String, commit: String, file: String) throws {
        let marker = cache.noExistMarker(repoID, commit: commit, file: file)
        try makeDirectory(marker.deletingLastPathComponent())
        if !FileManager.default.fileExists(atPath: marker.path) { try writeAtomically(Data(), to: marker) }
    }

    /// Before any transfer: the cache folder exists (or can be made) and takes a file.
    public func checkWritable() throws {
        let root = cache.root
        do { try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true) } catch {
            throw DownloadError(.notWritable, "cannot create the Hugging Face cache folder \(root.path): \(describe(error)); set HF_HUB_CACHE to a writable folder")
        }
        let probe = root.appendingPathComponent(".backpack-write-test-\(UUID().uuidString.prefix(8))")
        let fd = open(probe.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let code = errno
            throw DownloadError(.notWritable, "the Hugging Face cache folder \(root.path) is not writable (\(String(cString: strerror(code)))); set HF_HUB_CACHE to a writable folder")
        }
        close(fd)
        unlink(probe.path)
    }

    func checkSpace(for bytes: Int64, at folder: URL) throws {
        var info = statvfs()
        guard bytes > 0, statvfs(folder.path, &info) == 0 else { return }
        let free = Int64(info.f_bavail) * Int64(info.f_frsize)
        if free < bytes {
            throw DownloadError(.diskFull, "not enough space in \(folder.path): \(mebibytes(bytes)) needed, \(mebibytes(free)) free; free some space or set HF_HUB_CACHE to a folder on a bigger disk")
        }
    }

    func makeDirectory(_ url: URL) throws {
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw DownloadError(.notWritable, "cannot create \(url.path): \(describe(error))")
        }
    }

    func writeAtomically(_ data: Data, to url: URL) throws {
        do { try data.write(to: url, options: .atomic) } catch {
            throw DownloadError(.notWritable, "cannot write \(url.path): \(describe(error))")
        }
    }

    /// ETag header -> blob name: without a weak marker `W/` and without quotes.
    static func normalizeETag(_ etag: String?) -> String? {
        guard var e = etag?.trimmingCharacters(in: .whitespaces) else { return nil }
        if e.hasPrefix("W/") { e.removeFirst(2) }
        e = e.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        return e.isEmpty ? nil : e
    }
}

/// An exclusive flock(2) on a lock file, as huggingface_hub's FileLock takes it, so that two
/// processes (this toolkit or Python) never write the same blob at once.
final class FileLock {
    private var fd: Int32

    init(_ url: URL, waiting: () -> Void) throws {
        fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw writeError(errno, url.path, "open the lock file") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            waiting()
            while flock(fd, LOCK_EX) != 0 {
                guard errno == EINTR else {
                    let code = errno
                    close(fd)
                    throw writeError(code, url.path, "lock")
                }
            }
        }
    }

    func release() {
        if fd >= 0 { flock(fd, LOCK_UN); close(fd); fd = -1 }
    }

    deinit { release() }
}
