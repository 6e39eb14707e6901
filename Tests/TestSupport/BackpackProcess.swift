import Foundation

/// Runs the built `backpack` binary and collects what it printed: the one runner of the CLI,
/// Hub and evaluation tests. `removing` drops variables of the test's environment (tokens, offline
/// switches), `environment` sets others; `launcher` runs the binary through a command (e.g.
/// `["prlimit", "--fsize=..."]`) found on PATH.
public struct BackpackRun: Sendable {
    public let status: Int32
    public let out: String
    public let err: String
    /// True when a signal ended the process (a crash, never an answer).
    public let signaled: Bool

    public static func run(_ arguments: [String], environment: [String: String] = [:], removing: [String] = [],
                           launcher: [String] = []) throws -> BackpackRun {
        guard FileManager.default.isExecutableFile(atPath: TestPaths.backpackBinary.path) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: TestPaths.backpackBinary.path,
                NSLocalizedDescriptionKey: "no backpack binary beside the test bundle at \(TestPaths.backpackBinary.path); build with `swift build --build-tests` (make test)"])
        }
        let process = Process()
        if launcher.isEmpty {
            process.executableURL = TestPaths.backpackBinary
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = launcher + [TestPaths.backpackBinary.path] + arguments
        }
        var env = ProcessInfo.processInfo.environment
        for key in removing { env[key] = nil }
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return BackpackRun(status: process.terminationStatus, out: String(decoding: outData, as: UTF8.self),
                           err: String(decoding: errData, as: UTF8.self), signaled: process.terminationReason != .exit)
    }
}
