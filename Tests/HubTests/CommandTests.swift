import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `backpack download`, `--model ORG/NAME` offline, a full disk, and `backpack data fetch` on the
/// shared HTTP client, all through the built binary.
@Suite struct HubCommandTests {
    @Test func downloadThenInfoOfflineByRepoID() throws {
        let ws = try Workspace("cli")
        defer { ws.remove() }
        let server = try HubServer(repos: ["org/tiny": ws.repo], in: ws.root)
        defer { server.stop() }
        let online = ["HF_ENDPOINT": server.endpoint, "HF_HUB_CACHE": ws.cache.path, "HF_HOME": ws.root.appendingPathComponent("home").path]
        let d = try backpack(["download", "org/tiny"], environment: online)
        #expect(d.status == 0, "\(d.err)")
        let snapshot = d.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(snapshot.hasPrefix(ws.cache.appendingPathComponent("models--org--tiny/snapshots/").path), "\(d.out)")
        #expect(d.err.contains("downloading org/tiny/model.safetensors") && d.err.contains("7 file(s), 7 downloaded"), "\(d.err)")
        print("backpack download stderr:\n\(d.err)")
        server.stop()

        var offline = online
        offline["HF_HUB_OFFLINE"] = "1"
        offline["HF_ENDPOINT"] = "http://127.0.0.1:9"
        let info = try backpack(["info", "--model", "org/tiny"], environment: offline)
        #expect(info.status == 0, "\(info.err)")
        #expect(info.out.contains("model        \(snapshot)") && info.out.contains("tokenizer    "), "\(info.out)")
        let tokens = try backpack(["tokenize", "--model", "org/tiny@main", "--ids-only", "the cat"], environment: offline)
        #expect(tokens.status == 0 && !tokens.out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(tokens.err)")
        let again = try backpack(["download", "org/tiny"], environment: offline)
        #expect(again.status == 0 && again.out.trimmingCharacters(in: .whitespacesAndNewlines) == snapshot, "\(again.err)")

        // An edit of the cached model is an ordinary folder: files, not links into the cache.
        let edited = ws.root.appendingPathComponent("edited")
        let scale0 = TestPaths.repoRoot.appendingPathComponent("Tests/EditingTests/Edits/scale0.yaml").path
        let e = try backpack(["edit", "--model", "org/tiny", "--edit", scale0, "--out", edited.path], environment: offline)
        #expect(e.status == 0, "\(e.err)")
        let copied = try FileManager.default.attributesOfItem(atPath: edited.appendingPathComponent("tokenizer.json").path)
        #expect(copied[.type] as? FileAttributeType == .typeRegular)
        #expect(try backpack(["info", edited.path]).status == 0)

        let missing = try backpack(["info", "--model", "org/absent"], environment: offline)
        #expect(missing.status != 0 && missing.err.contains("run `backpack download org/absent`"), "\(missing.err)")
        let twice = try backpack(["info", "org/tiny", "--model", "org/tiny"], environment: offline)
        #expect(twice.status != 0)
    }

    @Test func downloadRefusesAnUnwritableCacheBeforeAnyRequest() throws {
        let ws = try Workspace("cli-readonly", tokenizer: false)
        defer { ws.remove() }
        let server = try HubServer(repos: ["org/tiny": ws.repo], in: ws.root)
        defer { server.stop() }
        // A file where the cache folder should be: no folder can be made there (root or not).
        let blocker = ws.root.appendingPathComponent("not-a-folder")
        try Data("x".utf8).write(to: blocker)
        let r = try backpack(["download", "org/tiny"], environment: ["HF_ENDPOINT": server.endpoint, "HF_HUB_CACHE": blocker.appendingPathComponent("hub").path])
        #expect(r.status != 0 && r.err.contains(blocker.path) && r.err.contains("HF_HUB_CACHE"), "\(r.err)")
        #expect(try server.requests().isEmpty)
    }

    /// RLIMIT_FSIZE (set by python3 before it execs the binary) makes the write fail with EFBIG,
    /// which a full disk (ENOSPC) shares its handling with.
    @Test(.enabled(if: HubCommandTests.canLimitFileSize, "needs Linux setrlimit(RLIMIT_FSIZE) through python3"))
    func aFileSizeLimitFailsClearlyAndLeavesOnlyThePartialFile() throws {
        let ws = try Workspace("cli-fsize", tokenizer: false)
        defer { ws.remove() }
        let server = try HubServer(repos: ["org/tiny": ws.repo], in: ws.root)
        defer { server.stop() }
        let limit = 200_000
        let launcher = ["python3", "-c", "import os,resource,signal,sys; resource.setrlimit(resource.RLIMIT_FSIZE, (\(limit), \(limit))); os.execv(sys.argv[1], sys.argv[1:])"]
        let r = try backpack(["download", "org/tiny"],
                             environment: ["HF_ENDPOINT": server.endpoint, "HF_HUB_CACHE": ws.cache.path, "HF_HOME": ws.root.path],
                             launcher: launcher)
        let sha = "47e8b3a44c65dc5e0c3158d65b9ecf9426281efe85ce1a3c3282fbcd8e9da6ed"
        let partial = ws.cache.appendingPathComponent("models--org--tiny/blobs/\(sha).incomplete")
        print("file-size limit message: \(r.err)")
        #expect(r.status != 0 && r.err.contains("org/tiny/model.safetensors: ") && r.err.contains(partial.path) && r.err.contains("ulimit"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: ws.cache.appendingPathComponent("models--org--tiny/blobs/\(sha)").path))
        let kept = try FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? Int ?? -1
        #expect(kept <= limit)
    }

    static var canLimitFileSize: Bool {
        #if os(Linux)
        return FileManager.default.isExecutableFile(atPath: "/usr/bin/env")
        #else
        return false
        #endif
    }

    @Test func dataFetchUsesTheSharedClient() throws {
        let ws = try Workspace("fetch", weights: [], tokenizer: false)
        defer { ws.remove() }
        // The shipped CrowS-Pairs file is the pinned one; served as an LFS-like file it is reached
        // through a redirect, cut once (resume) and, on a second server, corrupted.
        let served = ws.root.appendingPathComponent("served/data")
        try FileManager.default.createDirectory(at: served, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: TestPaths.repoRoot.appendingPathComponent("Data/crows_pairs/crows_pairs_anonymized.csv"),
                                         to: served.appendingPathComponent("crows.bin"))
        let server = try HubServer(repos: ["org/data": served], options: ["--cut", "crows.bin"], in: ws.root)
        defer { server.stop() }
        let cache = ws.root.appendingPathComponent("data-cache")
        let url = "\(server.endpoint)/org/data/resolve/main/crows.bin"
        let ok = try backpack(["data", "fetch", "crows-pairs", "--url", url, "--cache-dir", cache.path, "--timeout", "20"])
        #expect(ok.status == 0 && ok.out.contains("(verified)"), "\(ok.out)\(ok.err)")
        let gets = try server.requests().filter { $0.method == "GET" && $0.path.hasPrefix("/cdn/") }
        #expect(gets.count == 2 && gets.last?.range != nil, "\(gets.map { $0.range ?? "-" })")
        let target = cache.appendingPathComponent("crows_pairs/crows_pairs_anonymized.csv")
        #expect(try sha256(target) == "dfb36986ce0502abbaf7055b9176da3d08d48e07df1251991b5dfbcbceab9d0c")

        let corrupt = try HubServer(repos: ["org/data": served], options: ["--corrupt", "crows.bin"], in: ws.root)
        defer { corrupt.stop() }
        let other = ws.root.appendingPathComponent("data-cache-2")
        let bad = try backpack(["data", "fetch", "crows-pairs", "--url", "\(corrupt.endpoint)/org/data/resolve/main/crows.bin",
                                "--cache-dir", other.path, "--timeout", "20"])
        #expect(bad.status != 0 && bad.err.contains("does not match the expected") && bad.err.contains("not cached"), "\(bad.err)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: other.appendingPathComponent("crows_pairs").path)) ?? []
        #expect(left.isEmpty, "\(left)")
    }
}
