import BackpackHub
import BackpackIO
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The imitation Hub (hub_server.py beside this file), started per test on a free port of
/// 127.0.0.1 and stopped by `stop()`; it also exits by itself after `lifetime` seconds.
///
/// Started with posix_spawn, not Foundation's Process: Process notices a child's exit through a
/// descriptor the child inherits, and children started at the same moment by other tests inherit
/// each other's; a long-lived server holding them would stall those tests' `waitUntilExit` until
/// it exits. The server closes every inherited descriptor above 2 first thing, which it may do
/// because Process is not watching it. The signal mask is reset: a test thread's blocked SIGTERM
/// would otherwise be inherited and `stop()` could not end the server.
final class HubServer {
    let pid: pid_t
    let port: Int
    let log: URL

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("hub_server.py")

    init(repos: [String: URL], options: [String] = [], in folder: URL, lifetime: Int = 60) throws {
        log = folder.appendingPathComponent("requests-\(UUID().uuidString.prefix(6)).jsonl")
        let arguments = ["/usr/bin/env", "python3", Self.script.path, "--log", log.path, "--lifetime", String(lifetime)]
            + repos.flatMap { ["--repo", "\($0.key)=\($0.value.path)"] } + options
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw TestFailure("pipe: \(String(cString: strerror(errno)))") }
        // Not inherited by the children other tests start meanwhile (dup2 clears it on fd 1).
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let spawned = posix_spawn(&child, "/usr/bin/env", &actions, &attributes, argv, environ)
        close(fds[1])
        defer { close(fds[0]) }
        guard spawned == 0 else { throw TestFailure("cannot start hub_server.py: \(String(cString: strerror(spawned)))") }
        pid = child
        // First line: "PORT <n>". At most 200 reads; an early exit gives end of file.
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 256)
        for _ in 0..<200 where !text.contains("\n") {
            let n = read(fds[0], &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            text += String(decoding: buffer[..<n], as: UTF8.self)
        }
        guard let line = text.split(separator: "\n").first, line.hasPrefix("PORT "), let port = Int(line.dropFirst(5)) else {
            kill(child, SIGKILL)
            var status: Int32 = 0
            waitpid(child, &status, 0)
            throw TestFailure("hub_server.py did not report its port (output: '\(text)')")
        }
        self.port = port
    }

    private var stopped = false

    func stop() {
        guard !stopped else { return }
        stopped = true
        kill(pid, SIGTERM)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    var endpoint: String { "http://127.0.0.1:\(port)" }

    struct Request: Decodable {
        let method: String
        let path: String
        let range: String?
        let authorization: String?
    }

    func requests() throws -> [Request] {
        guard let text = try? String(contentsOf: log, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try JSONDecoder().decode(Request.self, from: Data($0.utf8)) }
    }

}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A temporary folder with a served repository made from Tests/Fixtures/tiny (config.json +
/// model.safetensors), the toy tokenizer and the .py files config.json's auto_map names.
struct Workspace {
    let root: URL
    var cache: URL { root.appendingPathComponent("hub-cache") }
    var repo: URL { root.appendingPathComponent("served/tiny") }

    static let fixtures = TestPaths.repoRoot.appendingPathComponent("Tests/Fixtures")
    static let tiny = fixtures.appendingPathComponent("tiny")

    init(_ tag: String, weights: [String] = ["model.safetensors"], tokenizer: Bool = true) throws {
        root = try TestPaths.temporaryDirectory("hub-\(tag)")
        let fm = FileManager.default
        try fm.createDirectory(at: repo, withIntermediateDirectories: true)
        for name in ["config.json"] + weights {
            try fm.copyItem(at: Self.tiny.appendingPathComponent(name), to: repo.appendingPathComponent(name))
        }
        if tokenizer {
            for name in ["tokenizer.json", "vocab.json", "merges.txt"] {
                try fm.copyItem(at: Self.fixtures.appendingPathComponent("toy-tokenizer/\(name)"), to: repo.appendingPathComponent(name))
            }
        }
        for module in ["configuration_backpack_gpt2", "modeling_backpack_gpt2"] {
            try Data("# \(module): served by the test Hub\n".utf8).write(to: repo.appendingPathComponent("\(module).py"))
        }
    }

    func environment(_ server: HubServer?, _ extra: [String: String] = [:]) -> HubEnvironment {
        var values = ["HF_HUB_CACHE": cache.path, "HF_HOME": root.appendingPathComponent("hf-home").path]
        if let server { values["HF_ENDPOINT"] = server.endpoint }
        for (k, v) in extra { values[k] = v }
        return HubEnvironment(values)
    }

    func remove() { try? FileManager.default.removeItem(at: root) }

    /// Every file under the cache whose name ends with `.incomplete`.
    func incompleteFiles() -> [String] {
        let walker = FileManager.default.enumerator(atPath: cache.path)
        var found: [String] = []
        while let path = walker?.nextObject() as? String { if path.hasSuffix(".incomplete") { found.append(path) } }
        return found
    }
}

/// Runs the built `backpack` binary without the Hub variables of the test's environment.
func backpack(_ arguments: [String], environment: [String: String] = [:], launcher: [String] = []) throws -> (status: Int32, out: String, err: String) {
    let r = try BackpackRun.run(arguments, environment: environment,
                                removing: ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT"],
                                launcher: launcher)
    #expect(!r.signaled, "backpack \(arguments) ended by a signal")
    return (r.status, r.out, r.err)
}

func sha256(_ url: URL) throws -> String { try FileDigest.sha256(url) }
