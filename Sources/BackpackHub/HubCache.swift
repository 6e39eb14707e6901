import BackpackJSON
import BackpackModelFolder
import Foundation

/// The settings huggingface_hub reads from the environment, read the same way so that this
/// toolkit and transformers share one cache.
public struct HubEnvironment: Sendable {
    public var values: [String: String]

    public init(_ values: [String: String] = ProcessInfo.processInfo.environment) {
        self.values = values
    }

    private func value(_ name: String) -> String? {
        guard let v = values[name], !v.isEmpty else { return nil }
        return v
    }

    private func expand(_ path: String) -> URL {
        if path == "~" || path.hasPrefix("~/") {
            let home = value("HOME") ?? FileManager.default.homeDirectoryForCurrentUser.path
            return URL(fileURLWithPath: home + path.dropFirst())
        }
        return URL(fileURLWithPath: path)
    }

    /// HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
    public var home: URL {
        if let h = value("HF_HOME") { return expand(h) }
        return expand(value("XDG_CACHE_HOME") ?? "~/.cache").appendingPathComponent("huggingface")
    }

    /// HF_HUB_CACHE (or its old name HUGGINGFACE_HUB_CACHE), else HF_HOME/hub.
    public var cacheRoot: URL {
        if let c = value("HF_HUB_CACHE") ?? value("HUGGINGFACE_HUB_CACHE") { return expand(c) }
        return home.appendingPathComponent("hub")
    }

    /// HF_ENDPOINT without a trailing slash, else https://huggingface.co.
    public var endpoint: String {
        var e = value("HF_ENDPOINT") ?? "https://huggingface.co"
        while e.hasSuffix("/") { e.removeLast() }
        return e
    }

    /// HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set to 1, ON, YES or TRUE, as huggingface_hub reads it.
    public var offline: Bool {
        guard let v = value("HF_HUB_OFFLINE") ?? value("TRANSFORMERS_OFFLINE") else { return false }
        return ["1", "ON", "YES", "TRUE"].contains(v.uppercased())
    }

    /// HF_TOKEN (or HUGGING_FACE_HUB_TOKEN), else the file `huggingface-cli login` writes
    /// (HF_TOKEN_PATH, default HF_HOME/token).
    public var token: String? {
        if let t = value("HF_TOKEN") ?? value("HUGGING_FACE_HUB_TOKEN") { return t.trimmingCharacters(in: .whitespacesAndNewlines) }
        let file = value("HF_TOKEN_PATH").map(expand) ?? home.appendingPathComponent("token")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return nil }
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return t.isEmpty ? nil : t
    }
}

/// `ORG/NAME[@REVISION]`: a model repository on the Hub and a branch, tag or commit.
public struct HubReference: Sendable, Equatable, CustomStringConvertible {
    public let repoID: String
    public let revision: String

    public static let defaultRevision = "main"

    public init(repoID: String, revision: String? = nil) throws {
        guard Self.isValidRepoID(repoID) else {
            throw DownloadError(.badInput, "'\(repoID)' is not a Hugging Face repository id (expected ORG/NAME: letters, digits, '-', '_', '.'; no '--' or '..')")
        }
        let revision = revision ?? Self.defaultRevision
        guard Self.isValidRevision(revision) else {
            throw DownloadError(.badInput, "'\(revision)' is not a usable revision of \(repoID) (a branch, tag or commit hash without '..', spaces or a leading '/')")
        }
        self.repoID = repoID
        self.revision = revision
    }

    /// Parses `ORG/NAME` or `ORG/NAME@REVISION`.
    public init(parsing text: String) throws {
        if let at = text.firstIndex(of: "@") {
            try self.init(repoID: String(text[..<at]), revision: String(text[text.index(after: at)...]))
        } else {
            try self.init(repoID: text)
        }
    }

    public var description: String { revision == Self.defaultRevision ? repoID : "\(repoID)@\(revision)" }

    /// Whether a `--model` argument means a repository: ORG/NAME[@REV] with exactly one '/'
    /// before any '@' (a bare NAME stays a local path, as before).
    public static func looksLikeReference(_ text: String) -> Bool {
        let repo = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? text
        return repo.split(separator: "/", omittingEmptySubsequences: false).count == 2 && (try? HubReference(parsing: text)) != nil
    }

    /// huggingface_hub's rule: `[ORG/]NAME`, parts of [A-Za-z0-9_.-] that start and end with a
    /// letter, digit or '_', no '--' or '..', not ending in '.git', at most 96 characters.
    public static func isValidRepoID(_ id: String) -> Bool {
        guard !id.isEmpty, id.count <= 96, !id.contains("--"), !id.contains(".."), !id.hasSuffix(".git") else { return false }
        let parts = id.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2 else { return false }
        func edge(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || c == "_") }
        for part in parts {
            guard let first = part.first, let last = part.last, edge(first), edge(last),
                  part.allSatisfy({ edge($0) || $0 == "-" || $0 == "." }) else { return false }
        }
        return true
    }

    static func isValidRevision(_ r: String) -> Bool {
        !r.isEmpty && r.count <= 255 && !r.hasPrefix("/") && !r.hasSuffix("/") && !r.contains("..")
            && !r.contains("//") && r != "." && !r.unicodeScalars.contains { $0.value < 0x21 || $0 == "\\" || $0.value == 0x7F }
    }

    static func isCommitHash(_ r: String) -> Bool {
        r.count == 40 && r.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }
}

/// huggingface_hub's cache, as `hf_hub_download` writes it:
///
///     <root>/models--ORG--NAME/refs/<revision>          commit hash (no newline)
///     <root>/models--ORG--NAME/blobs/<etag>             file contents; etag = sha256 (LFS) or git blob sha1
///     <root>/models--ORG--NAME/blobs/<etag>.incomplete  a transfer in progress (resumable)
///     <root>/models--ORG--NAME/snapshots/<commit>/FILE  relative symlink to ../../blobs/<etag>
///     <root>/models--ORG--NAME/.no_exist/<commit>/FILE  empty: the file does not exist at that commit
///     <root>/.locks/models--ORG--NAME/<etag>.lock       taken while a blob is downloaded
public struct HubCache: Sendable {
    public let root: URL

    public init(root: URL) { self.root = root }
    public init(_ environment: HubEnvironment = HubEnvironment()) { root = environment.cacheRoot }

    /// `models--ORG--NAME` (huggingface_hub's repo_folder_name for a model).
    public static func folderName(_ repoID: String) -> String {
        (["models"] + repoID.split(separator: "/").map(String.init)).joined(separator: "--")
    }

    public func repoFolder(_ repoID: String) -> URL { root.appendingPathComponent(Self.folderName(repoID)) }

    public func refFile(_ ref: HubReference) -> URL {
        repoFolder(ref.repoID).appendingPathComponent("refs").appendingPathComponent(ref.revision)
    }

    public func snapshot(_ repoID: String, commit: String) -> URL {
        repoFolder(repoID).appendingPathComponent("snapshots").appendingPathComponent(commit)
    }

    public func blob(_ repoID: String, etag: String) -> URL {
        repoFolder(repoID).appendingPathComponent("blobs").appendingPathComponent(etag)
    }

    public func noExistMarker(_ repoID: String, commit: String, file: String) -> URL {
        repoFolder(repoID).appendingPathComponent(".no_exist").appendingPathComponent(commit).appendingPathComponent(file)
    }

    public func lockFile(_ repoID: String, etag: String) -> URL {
        root.appendingPathComponent(".locks").appendingPathComponent(Self.folderName(repoID)).appendingPathComponent("\(etag).lock")
    }

    /// The commit a revision names in the cache: the revision itself when it is a full commit
    /// hash, else the contents of refs/<revision>.
    public func commit(for ref: HubReference) -> String? {
        if HubReference.isCommitHash(ref.revision) { return ref.revision }
        guard let text = try? String(contentsOf: refFile(ref), encoding: .utf8) else { return nil }
        let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return commit.isEmpty ? nil : commit
    }

    /// A model repository in the cache: its named revisions (refs/), each with the commit it names
    /// and whether that snapshot holds what the toolkit needs (`missingModelFiles`).
    public struct CachedModel: Sendable {
        public let repoID: String
        public let revisions: [(name: String, commit: String, complete: Bool)]
    }

    /// The model repositories in the cache, by id. Never touches the network.
    public func cachedModels() -> [CachedModel] {
        let fm = FileManager.default
        let prefix = "models--"   // folderName(_:) without the id
        let folders = ((try? fm.contentsOfDirectory(atPath: root.path)) ?? []).filter { $0.hasPrefix(prefix) }.sorted()
        return folders.map { folder in
            let repoID = String(folder.dropFirst(prefix.count)).replacingOccurrences(of: "--", with: "/")
            let refs = root.appendingPathComponent(folder).appendingPathComponent("refs")
            let names = ((try? fm.subpathsOfDirectory(atPath: refs.path)) ?? []).filter { name in
                var isDir: ObjCBool = false
                return fm.fileExists(atPath: refs.appendingPathComponent(name).path, isDirectory: &isDir) && !isDir.boolValue
            }.sorted()
            let revisions = names.compactMap { name -> (name: String, commit: String, complete: Bool)? in
                guard let ref = try? HubReference(repoID: repoID, revision: name), let commit = commit(for: ref) else { return nil }
                return (name, commit, Self.missingModelFiles(in: snapshot(repoID, commit: commit)).isEmpty)
            }
            return CachedModel(repoID: repoID, revisions: revisions)
        }
    }

    /// The snapshot folder of a cached model, with every file the toolkit needs present (links
    /// into blobs/ that resolve). Never touches the network. Throws a `.notCached` error listing
    /// what is missing and how to get it.
    public func resolveModel(_ ref: HubReference) throws -> URL {
        let folder = repoFolder(ref.repoID)
        let fetch = "run `backpack download \(ref.repoID)\(ref.revision == HubReference.defaultRevision ? "" : " --revision \(ref.revision)")`"
        guard FileManager.default.fileExists(atPath: folder.path) else {
            throw DownloadError(.notCached, "\(ref) is not in the Hugging Face cache (no \(folder.path)); \(fetch) (cache: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)")
        }
        guard let commit = commit(for: ref) else {
            throw DownloadError(.notCached, "revision '\(ref.revision)' of \(ref.repoID) is not in the cache (no \(refFile(ref).path)); \(fetch)")
        }
        let snapshot = snapshot(ref.repoID, commit: commit)
        guard FileManager.default.fileExists(atPath: snapshot.path) else {
            throw DownloadError(.notCached, "\(ref) (commit \(commit)) has no snapshot in the cache (no \(snapshot.path)); \(fetch)")
        }
        let missing = Self.missingModelFiles(in: snapshot)
        guard missing.isEmpty else {
            throw DownloadError(.notCached, "\(ref) (commit \(commit)) is incomplete in the cache \(snapshot.path): missing \(missing.joined(separator: ", ")); \(fetch)")
        }
        return snapshot
    }

    /// What a model folder lacks for `ModelDirectory`: config.json and the weights ModelDirectory
    /// would open (ModelFolder.Weights: model.safetensors; or the index and all its shards; or
    /// pytorch_model.bin) complete.
    /// A link whose blob is gone counts as missing.
    public static func missingModelFiles(in folder: URL) -> [String] {
        func present(_ name: String) -> Bool { FileManager.default.fileExists(atPath: folder.appendingPathComponent(name).path) }
        var missing: [String] = []
        if !present(ModelFolder.configFile) { missing.append(ModelFolder.configFile) }
        switch ModelFolder.preferredWeights(present) {
        case .safetensors, .torch: break
        case .shardedSafetensors:
            do {
                let shards = try shardNames(index: folder.appendingPathComponent(ModelFolder.safetensorsIndexFile))
                missing += shards.filter { !present($0) }
            } catch {
                missing.append("a readable \(ModelFolder.safetensorsIndexFile) (\(error))")
            }
        case nil: missing.append("weights (model.safetensors, or model.safetensors.index.json with its shards, or pytorch_model.bin)")
        }
        return missing
    }

    /// The shard files a `model.safetensors.index.json` names (`weight_map` values), sorted,
    /// each a plain file name (the rule ShardedSafetensors applies when it loads them).
    public static func shardNames(index: URL) throws -> [String] {
        let json = try readJSON(index)
        guard case .object(let map)? = json["weight_map"] else {
            throw DownloadError(.badResponse, "\(index.path): missing 'weight_map' object")
        }
        var names = Set<String>()
        for (tensor, value) in map {
            guard case .string(let file) = value, isPlainFileName(file) else {
                throw DownloadError(.badResponse, "\(index.path): weight_map['\(tensor)'] must be a plain file name in the same folder")
            }
            names.insert(file)
        }
        return names.sorted()
    }

    /// The Python files `auto_map` in config.json names (`module.Class`, or a list for
    /// tokenizers); `other/repo--module.Class` points into another repository and is skipped.
    public static func autoMapFiles(config: URL) throws -> [String] {
        let json = try readJSON(config)
        guard case .object(let map)? = json["auto_map"] else { return [] }
        var files = Set<String>()
        func add(_ value: JSONValue) {
            switch value {
            case .string(let reference):
                guard !reference.contains("--"), let dot = reference.lastIndex(of: ".") else { return }
                let module = String(reference[..<dot])
                let file = module.replacingOccurrences(of: ".", with: "/") + ".py"
                if isSafeRelativePath(file) { files.insert(file) }
            case .array(let items): items.forEach(add)
            default: break
            }
        }
        map.forEach { add($0.1) }
        return files.sorted()
    }

    static func readJSON(_ url: URL) throws -> JSONValue {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw DownloadError(.notCached, "cannot read \(url.path): \(describe(error))")
        }
        guard data.count <= 100_000_000 else { throw DownloadError(.badResponse, "\(url.path): larger than 100 MB") }
        do {
            return try data.withUnsafeBytes { try JSONReader.parse($0, options: .lenient) }
        } catch let e as JSONSyntaxError {
            throw DownloadError(.badResponse, "\(url.path): invalid JSON at byte \(e.offset): \(e.message)")
        }
    }

    static func isPlainFileName(_ name: String) -> Bool {
        !name.isEmpty && !name.contains("/") && !name.contains("\\") && name != "." && name != ".." && !name.contains("\0")
    }

    /// A repository path that stays inside a snapshot folder.
    static func isSafeRelativePath(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        return !path.hasPrefix("/") && parts.allSatisfy { isPlainFileName(String($0)) }
    }
}

/// Where `--model` points: an existing path as given; else `ORG/NAME[@REV]` resolved to its
/// snapshot in the Hugging Face cache (no network); else the path as given, for the caller's
/// "no such directory" error.
public enum ModelLocator {
    public static func resolve(_ argument: String, environment: HubEnvironment = HubEnvironment()) throws -> URL {
        if FileManager.default.fileExists(atPath: argument) || !HubReference.looksLikeReference(argument) {
            return URL(fileURLWithPath: argument)
        }
        return try HubCache(environment).resolveModel(try HubReference(parsing: argument))
    }
}
