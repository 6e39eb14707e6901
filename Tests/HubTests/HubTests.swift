import BackpackHub
import BackpackModel
import Foundation
import Testing
import TestSupport

/// Downloads from an imitation Hub into a cache laid out as huggingface_hub lays it out; offline
/// resolution; resume; every error. The server is hub_server.py, run by each test.
@Suite struct HubDownloadTests {
    let modelSHA = "47e8b3a44c65dc5e0c3158d65b9ecf9426281efe85ce1a3c3282fbcd8e9da6ed"  // Tests/Fixtures/tiny/model.safetensors

    @Test func fullDownloadThenModelDirectoryLoadsItByRepoID() throws {
        let ws = try Workspace("full")
        defer { ws.remove() }
        let server = try HubServer(repos: ["org/tiny": ws.repo], in: ws.root)
        defer { server.stop() }
        #expect(try sha256(Workspace.tiny.appendingPathComponent("model.safetensors")) == modelSHA)
        let env = ws.environment(server)
        let outcome = try HubDownloader(environment: env).download(try HubReference(parsing: "org/tiny"))

        // The layout of huggingface_hub: refs/main -> commit; snapshot links into blobs/.
        let repoFolder = ws.cache.appendingPathComponent("models--org--tiny")
        let commit = try String(contentsOf: repoFolder.appendingPathComponent("refs/main"), encoding: .utf8)
        #expect(commit.count == 40 && commit == outcome.commit, "refs/main holds exactly the commit, no newline")
        #expect(outcome.snapshot.path == repoFolder.appendingPathComponent("snapshots/\(commit)").path)
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: outcome.snapshot.appendingPathComponent("model.safetensors").path)
        #expect(link == "../../blobs/\(modelSHA)")
        let configLink = try FileManager.default.destinationOfSymbolicLink(atPath: outcome.snapshot.appendingPathComponent("config.json").path)
        #expect(configLink.hasPrefix("../../blobs/") && configLink.count == "../../blobs/".count + 40, "git file: blob named by its sha1: \(configLink)")
        #expect(try sha256(repoFolder.appendingPathComponent("blobs/\(modelSHA)")) == modelSHA)
        for file in ["config.json", "tokenizer.json", "vocab.json", "merges.txt", "configuration_backpack_gpt2.py", "modeling_backpack_gpt2.py"] {
            let served = try Data(contentsOf: ws.repo.appendingPathComponent(file))
            let cached = try Data(contentsOf: outcome.snapshot.appendingPathComponent(file))
            #expect(served == cached, "\(file) differs")
        }
        // Every tokenizer file of the model-folder contract is asked for; this repository has
        // Hugging Face's names, not OpenAI's (encoder.json + vocab.bpe) nor the settings files.
        #expect(Set(outcome.absent) == ["encoder.json", "vocab.bpe", "tokenizer_config.json", "special_tokens_map.json"])
        #expect(FileManager.default.fileExists(atPath: repoFolder.appendingPathComponent(".no_exist/\(commit)/tokenizer_config.json").path))
        #expect(FileManager.default.fileExists(atPath: ws.cache.appendingPathComponent(".locks/models--org--tiny/\(modelSHA).lock").path))
        #expect(ws.incompleteFiles().isEmpty)

        // Loading by repository id gives the same parameters as the fixture folder itself.
        let resolved = try ModelLocator.resolve("org/tiny", environment: env)
        #expect(resolved.path == outcome.snapshot.path)
        let viaHub = try ModelDirectory(resolved)
        let direct = try ModelDirectory(Workspace.tiny)
        let a = try viaHub.parameters().counts(), b = try direct.parameters().counts()
        #expect(a.map(\.count) == b.map(\.count) && !a.isEmpty)
        #expect(try viaHub.tokenizer() != nil)

        // A second run transfers nothing: one HEAD (config.json, for the commit), no GET.
        let before = try server.requests().count
        let again = try HubDownloader(environment: env).download(try HubReference(parsing: "org/tiny"))
        let second = Array(try server.requests().dropFirst(before))
        #expect(again.downloaded.isEmpty)
        #expect(second.count == 1 && second.first?.method == "HEAD", "\(second.map { "\($0.method) \($0.path)" })")
    }

    @Test func revisionIsRecordedAndResolvable() throws {
        let ws = try Workspace("revision")
        defer { ws.remove() }
        let server = try HubServer(repos: ["org/tiny": ws.repo], in: ws.root)
        defer { server.stop() }
        let env = ws.environment(server)
        let outcome = try HubDownloader(environment: env).download(try HubReference(parsing: "org/tiny@v1"))
        let ref = ws.cache.appendingPathComponent("models--org--tiny/refs/v1")
        #expect(try String(contentsOf: ref, encoding: .utf8) == outcome.commit)
        #expect(!FileManager.default.fileExists(atPath: ws.cache.appendingPathComponent("models--org--tiny/refs/main").path))
        #expect(try ModelLocator.resolve("org/tiny@v1", environment: env).path == outcome.snapshot.path)
        #expect(try ModelLocator.resolve("org/tiny@\(outcome.commit)", environment: env).path == outcome.snapshot.path)
        #expect(throws: DownloadError.self) { try ModelLocator.resolve("org/tiny", environment: env) }
        #expect(try server.requests().allSatisfy { !$0.path.contains("/resolve/main/") })
        // An unknown revision: 404 RevisionNotFound.
        let error = try #require(throws: DownloadError.self) {
            try HubDownloader(environment: env).download(try HubReference(parsing: "org/tiny@nope"))
        }
        #expect(error.kind == .notFound && error.description.contains("revision 'nope'"), "\(error)")
    }

    @Test func resumesACutTransferWithARangeRequest() throws {
        let ws = try Workspace("resume", tokenizer: false)
        defer { ws.remove() }
        let server = try HubServer(repos: ["org/tiny": ws.repo], options: ["--cut", "model.safetensors"], in: ws.root)
        defer { server.stop() }
        let outcome = try HubDownloader(environment: ws.environment(server)).download(try HubReference(parsing: "org/tiny"))
        let gets = try server.requests().filter { $0.method == "GET" && $0.path.hasPrefix("/cdn/") }
        #expect(gets.count == 2, "\(gets.map { "\($0.path) \($0.range ?? "-")" })")
        #expect(gets.first?.range == nil)
        let size = 1_049_280
        let resumedFrom = gets.last?.range.flatMap { Int($0.dropFirst("bytes=".count).dropLast()) } ?? -1
        #expect(resumedFrom > 0 && resumedFrom < size, "second GET asked for \(gets.last?.range ?? "nothing")")
        #expect(try sha256(outcome.snapshot.appendingPathComponent("model.safetensors")) == modelSHA)
        #expect(ws.incompleteFiles().isEmpty)
    }

    @Test func keepsThePartialFileAndResumesInTheNextRun() throws {
        let ws = try Workspace("resume-runs", tokenizer: false)
        defer { ws.remove() }
        let cutting = try HubServer(repos: ["org/tiny": ws.repo], options: ["--cut-always", "model.safetensors"], in: ws.root)
        let error = try #require(throws: DownloadError.self) {
            try HubDownloader(environment: ws.environment(cutting)).download(try HubReference(parsing: "org/tiny"))
        }
        cutting.stop()
        #expect(error.kind == .interrupted && error.description.contains("org/tiny/model.safetensors") && error.description.contains("run again"), "\(error)")
        let partial = ws.cache.appendingPathComponent("models--org--tiny/blobs/\(modelSHA).incomplete")
        let kept = try FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? Int ?? 0
        #expect(kept > 0 && kept < 1_049_280)
        #expect(!FileManager.default.fileExists(atPath: ws.cache.appendingPathComponent("models--org--tiny/blobs/\(modelSHA)").path))
        let commit = try String(contentsOf: ws.cache.appendingPathComponent("models--org--tiny/refs/main"), encoding: .utf8)
        #expect(!FileManager.default.fileExists(atPath: ws.cache.appendingPathComponent("models--org--tiny/snapshots/\(commit)/model.safetensors").path))

        let server = try HubServer(repos: ["org/tiny": ws.repo], in: ws.root)
        defer { server.stop() }
        let outcome = try HubDownloader(environment: ws.environment(server)).download(try HubReference(parsing: "org/tiny"))
        let gets = try server.requests().filter { $0.method == "GET" && $0.path.hasPrefix("/cdn/") }
        #expect(gets.count == 1 && gets.first?.range == "bytes=\(kept)-", "\(gets.map { $0.range ?? "-" })")
        #expect(try sha256(outcome.snapshot.appendingPathComponent("model.safetensors")) == modelSHA)
    }

    @Test func startsOverWhenTheServerIgnoresRange() throws {
        let ws = try Workspace("ignore-range", tokenizer: false)
        defer { ws.remove() }
        let blobs = ws.cache.appendingPathComponent("models--org--tiny/blobs")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        // A partial file whose bytes are wrong: appended to, it would fail the checksum.
        try Data(repeating: 0xAB, count: 1000).write(to: blobs.appendingPathComponent("\(modelSHA).incomplete"))
        let server = try HubServer(repos: ["org/tiny": ws.repo], options: ["--ignore-range"], in: ws.root)
        defer { server.stop() }
        let outcome = try HubDownloader(environment: ws.environment(server)).download(try HubReference(parsing: "org/tiny"))
        let gets = try server.requests().filter { $0.method == "GET" && $0.path.hasPrefix("/cdn/") }
        #expect(gets.count == 1 && gets.first?.range == "bytes=1000-", "\(gets.map { $0.range ?? "-" })")
        #expect(try sha256(outcome.snapshot.appendingPathComponent("model.safetensors")) == modelSHA)
    }

    @Test func checksumMismatchLeavesNoFile() throws {
        let ws = try Workspace("corrupt", tokenizer: false)
        defer { ws.remove() }
        let server = try HubServer(repos: ["org/tiny": ws.repo], options: ["--corrupt", "model.safetensors"], in: ws.root)
        defer { server.stop() }
        let error = try #require(throws: DownloadError.self) {
            try HubDownloader(environment: ws.environment(server)).download(try HubReference(parsing: "org/tiny"))
        }
        #expect(error.kind == .checksumMismatch)
        #expect(error.description.contains("org/tiny/model.safetensors") && error.description.contains(modelSHA) && error.description.contains("removed"), "\(error)")
        let blobs = try FileManager.default.contentsOfDirectory(atPath: ws.cache.appendingPathComponent("models--org--tiny/blobs").path)
        #expect(!blobs.contains { $0.hasPrefix(modelSHA) }, "\(blobs)")
        #expect(throws: DownloadError.self) { try ModelLocator.resolve("org/tiny", environment: ws.environment(nil)) }
    }

    @Test func httpErrorsAreNamedAndExplained() throws {
        let ws = try Workspace("errors", tokenizer: false)
        defer { ws.remove() }
        let empty = ws.root.appendingPathComponent("served/empty")
        let noWeights = ws.root.appendingPathComponent("served/noweights")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: noWeights, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: empty.appendingPathComponent("README.md"))
        try FileManager.default.copyItem(at: ws.repo.appendingPathComponent("config.json"), to: noWeights.appendingPathComponent("config.json"))
        let server = try HubServer(repos: ["org/private": ws.repo, "org/gated": ws.repo, "org/empty": empty, "org/noweights": noWeights],
                                   options: ["--private", "org/private:secret", "--gated", "org/gated"], in: ws.root)
        defer { server.stop() }
        func failure(_ repo: String, _ extra: [String: String] = [:]) throws -> DownloadError {
            try #require(throws: DownloadError.self) {
                try HubDownloader(environment: ws.environment(server, extra)).download(try HubReference(parsing: repo))
            }
        }
        let e401 = try failure("org/private")
        #expect(e401.kind == .unauthorized && e401.description.contains("HF_TOKEN") && e401.description.contains("org/private"), "\(e401)")
        let wrongToken = try failure("org/private", ["HF_TOKEN": "wrong"])
        #expect(wrongToken.kind == .unauthorized && wrongToken.description.contains("was refused"), "\(wrongToken)")
        let e403 = try failure("org/gated")
        #expect(e403.kind == .forbidden && e403.description.contains("licence") && e403.description.contains("org/gated"), "\(e403)")
        let noRepo = try failure("org/absent")
        #expect(noRepo.kind == .notFound && noRepo.description.contains("org/absent: repository not found"), "\(noRepo)")
        let noConfig = try failure("org/empty")
        #expect(noConfig.kind == .notFound && noConfig.description.contains("no config.json"), "\(noConfig)")
        let noWeightsError = try failure("org/noweights")
        #expect(noWeightsError.kind == .notFound && noWeightsError.description.contains("pytorch_model.bin"), "\(noWeightsError)")
        for error in [e401, e403, noRepo, noConfig, noWeightsError] { print("message: \(error)") }

        // With the token: the download works, the token goes to the Hub, not to the CDN path.
        let before = try server.requests().count
        _ = try HubDownloader(environment: ws.environment(server, ["HF_TOKEN": "secret"])).download(try HubReference(parsing: "org/private"))
        let sent = Array(try server.requests().dropFirst(before))
        #expect(sent.filter { $0.method == "HEAD" }.allSatisfy { $0.authorization == "Bearer secret" })
    }

    @Test func offlineResolutionOfACacheLaidOutByHand() throws {
        // As huggingface_hub writes it: blobs named by sha256 / git sha1, relative links, refs/main.
        let ws = try Workspace("offline", tokenizer: false)
        defer { ws.remove() }
        let commit = String(repeating: "ab12", count: 10)
        let repoFolder = ws.cache.appendingPathComponent("models--stanfordnlp--tiny-backpack")
        let blobs = repoFolder.appendingPathComponent("blobs"), snapshot = repoFolder.appendingPathComponent("snapshots/\(commit)")
        let fm = FileManager.default
        try fm.createDirectory(at: blobs, withIntermediateDirectories: true)
        try fm.createDirectory(at: snapshot, withIntermediateDirectories: true)
        try fm.createDirectory(at: repoFolder.appendingPathComponent("refs"), withIntermediateDirectories: true)
        try Data(commit.utf8).write(to: repoFolder.appendingPathComponent("refs/main"))
        let configBlob = "0123456789abcdef0123456789abcdef01234567"
        try fm.copyItem(at: Workspace.tiny.appendingPathComponent("config.json"), to: blobs.appendingPathComponent(configBlob))
        try fm.createSymbolicLink(atPath: snapshot.appendingPathComponent("config.json").path, withDestinationPath: "../../blobs/\(configBlob)")

        let env = ws.environment(nil, ["HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"])
        // Weights missing: the error lists them and says how to get them.
        let missing = try #require(throws: DownloadError.self) { try ModelLocator.resolve("stanfordnlp/tiny-backpack", environment: env) }
        #expect(missing.kind == .notCached && missing.description.contains("model.safetensors")
                && missing.description.contains("run `backpack download stanfordnlp/tiny-backpack`"), "\(missing)")
        // A dangling link counts as missing.
        try fm.createSymbolicLink(atPath: snapshot.appendingPathComponent("model.safetensors").path, withDestinationPath: "../../blobs/\(modelSHA)")
        #expect(throws: DownloadError.self) { try ModelLocator.resolve("stanfordnlp/tiny-backpack", environment: env) }
        try fm.copyItem(at: Workspace.tiny.appendingPathComponent("model.safetensors"), to: blobs.appendingPathComponent(modelSHA))

        let viaMain = try ModelLocator.resolve("stanfordnlp/tiny-backpack", environment: env)
        let viaCommit = try ModelLocator.resolve("stanfordnlp/tiny-backpack@\(commit)", environment: env)
        #expect(viaMain.path == snapshot.path && viaCommit.path == snapshot.path)
        #expect(try ModelDirectory(viaMain).config.senses == 4)
        // Offline download: nothing fetched, the complete snapshot is reported.
        let outcome = try HubDownloader(environment: env).download(try HubReference(parsing: "stanfordnlp/tiny-backpack"))
        #expect(outcome.snapshot.path == snapshot.path && outcome.downloaded.isEmpty)
        let notThere = try #require(throws: DownloadError.self) {
            try HubDownloader(environment: env).download(try HubReference(parsing: "stanfordnlp/other"))
        }
        #expect(notThere.kind == .notCached && notThere.description.contains("HF_HUB_OFFLINE"), "\(notThere)")
        let unknownRevision = try #require(throws: DownloadError.self) { try ModelLocator.resolve("stanfordnlp/tiny-backpack@v2", environment: env) }
        #expect(unknownRevision.description.contains("refs/v2") && unknownRevision.description.contains("--revision v2"), "\(unknownRevision)")
        // An existing local path always wins; a bare name stays a path.
        #expect(try ModelLocator.resolve(Workspace.tiny.path, environment: env).path == Workspace.tiny.path)
        #expect(try ModelLocator.resolve("no-such-folder", environment: env).lastPathComponent == "no-such-folder")
    }

    @Test func cacheRootAndSettingsFollowHuggingFaceHub() throws {
        #expect(HubEnvironment(["HF_HUB_CACHE": "/a/hub", "HF_HOME": "/b"]).cacheRoot.path == "/a/hub")
        #expect(HubEnvironment(["HF_HOME": "/b"]).cacheRoot.path == "/b/hub")
        #expect(HubEnvironment(["HOME": "/home/u"]).cacheRoot.path == "/home/u/.cache/huggingface/hub")
        #expect(HubEnvironment(["XDG_CACHE_HOME": "/x", "HOME": "/home/u"]).cacheRoot.path == "/x/huggingface/hub")
        #expect(HubEnvironment([:]).endpoint == "https://huggingface.co")
        #expect(HubEnvironment(["HF_ENDPOINT": "http://mirror/"]).endpoint == "http://mirror")
        #expect(HubEnvironment(["HF_HUB_OFFLINE": "yes"]).offline && !HubEnvironment(["HF_HUB_OFFLINE": "0"]).offline)
        #expect(HubCache.folderName("stanfordnlp/backpack-gpt2") == "models--stanfordnlp--backpack-gpt2")
        #expect(try HubReference(parsing: "org/name@refs/pr/1").revision == "refs/pr/1")
        for bad in ["org/../x", "org/na--me", "/org/name", "org/name/extra", "org/name@", "org/name@../x", "org/-x"] {
            #expect(throws: DownloadError.self, "\(bad)") { try HubReference(parsing: bad) }
        }
        #expect(HubReference.looksLikeReference("org/name@v1") && !HubReference.looksLikeReference("models/x/y") && !HubReference.looksLikeReference("name"))
    }
}
