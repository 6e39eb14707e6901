import BackpackCheckpoint
import BackpackHub
import Foundation
import Testing
import TestSupport

/// The imitation Hub (hub_server.py beside this file), started per test on a free port of
/// 127.0.0.1 and stopped by `stop()`; it also exits by itself after `lifetime` seconds.
final class HubServer {
    let process = Process()
    let port: Int
    let log: URL

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("hub_server.py")

    init(repos: [String: URL], options: [String] = [], in folder: URL, lifetime: Int = 120) throws {
        log = folder.appendingPathComponent("requests-\(UUID().uuidString.prefix(6)).jsonl")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script.path, "--log", log.path, "--lifetime", String(lifetime)]
            + repos.flatMap { ["--repo", "\($0.key)=\($0.value.path)"] } + options
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        // First line: "PORT <n>". At most 200 reads; an early exit gives EOF (empty read).
        var text = ""
        for _ in 0..<200 where !text.contains("\n") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let line = text.split(separator: "\n").first, line.hasPrefix("PORT "), let port = Int(line.dropFirst(5)) else {
            process.terminate()
            throw TestFailure("hub_server.py did not report its port (output: '\(text)')")
        }
        self.port = port
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

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
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

/// Runs the built `backpack` binary; returns (exit status, stdout, stderr).
func backpack(_ arguments: [String], environment: [String: String] = [:], launcher: [String] = []) throws -> (status: Int32, out: String, err: String) {
    let process = Process()
    if launcher.isEmpty {
        process.executableURL = TestPaths.backpackBinary
        process.arguments = arguments
    } else {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = launcher + [TestPaths.backpackBinary.path] + arguments
    }
    var env = ProcessInfo.processInfo.environment
    for key in ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT"] { env[key] = nil }
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    #expect(process.terminationReason == .exit, "backpack \(arguments) ended by a signal")
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

func sha256(_ url: URL) throws -> String { try FileDigest.sha256(url) }
