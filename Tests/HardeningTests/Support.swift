import BackpackIO
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// What a child process did: exit status or the signal that ended it, peak RSS, output.
struct ChildResult: CustomStringConvertible {
    var status: Int32?      // exit status, nil if a signal ended it
    var signal: Int32?      // terminating signal
    var maxRSSKiB: Int
    var seconds: Double
    var out: String
    var err: String
    var description: String {
        "status \(status.map(String.init) ?? "-") signal \(signal.map(String.init) ?? "-") peak RSS \(maxRSSKiB) KiB, \(String(format: "%.2f", seconds)) s\nstdout: \(out)\nstderr: \(err)"
    }
}

enum Child {
    /// glibc >= 2.34 `posix_spawn_file_actions_addclosefrom_np` (not imported into Swift).
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    static let addCloseFrom: AddCloseFrom? = {
        guard let sym = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(sym, to: AddCloseFrom.self)
    }()

    /// Runs `executable` with posix_spawn and reaps it with wait4, so that its own peak RSS is
    /// known. With `killAfter`, SIGKILL is sent after that many seconds (if still running).
    static func run(_ executable: URL, _ arguments: [String], killAfter: Double? = nil,
                    timeout: Double = 120) throws -> ChildResult {
        let dir = try TestPaths.temporaryDirectory("child")
        defer { try? FileManager.default.removeItem(at: dir) }
        let outPath = dir.appendingPathComponent("out").path, errPath = dir.appendingPathComponent("err").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // Other tests hold files open (HDF5 keeps a flock on its fd): a child that inherited such
        // an fd would keep the lock after the test closes the file.
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable.path] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let start = Date()
        let rc = posix_spawn(&pid, executable.path, &actions, nil, argv, environ)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EINVAL) }
        var status: Int32 = 0
        var usage = rusage()
        let deadline = killAfter ?? timeout
        var killed = false
        while true {
            let r = wait4(pid, &status, WNOHANG, &usage)
            if r == pid { break }
            if r < 0 && errno != EINTR { throw POSIXError(.ECHILD) }
            if !killed, Date().timeIntervalSince(start) >= deadline {
                kill(pid, SIGKILL)
                killed = true
            }
            usleep(killAfter == nil ? 2000 : 200)
        }
        let seconds = Date().timeIntervalSince(start)
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        // WIFEXITED / WTERMSIG by hand (macros are not imported).
        let sig = status & 0x7f
        return ChildResult(status: sig == 0 ? (status >> 8) & 0xff : nil, signal: sig == 0 ? nil : sig,
                           maxRSSKiB: Int(usage.ru_maxrss), seconds: seconds, out: out, err: err)
    }

    /// Peak RSS of `backpack info` on the tiny model: what the binary needs anyway (about
    /// 45 MiB normally, far more under AddressSanitizer, which maps shadow memory).
    static let baselineRSSKiB: Int = {
        (try? backpack(["info", TestPaths.tinyModel.path]))?.maxRSSKiB ?? 0
    }()

    /// True when the child's peak RSS stays within `baseline + extraMiB`.
    static func rssIsSmall(_ r: ChildResult, extraMiB: Int = 128) -> Bool {
        r.maxRSSKiB < baselineRSSKiB + (extraMiB << 10)
    }

    static func backpack(_ arguments: [String], killAfter: Double? = nil) throws -> ChildResult {
        if killAfter == nil, let python = pythonPath {
            return try measured(python, arguments)
        }
        return try run(TestPaths.backpackBinary, arguments, killAfter: killAfter)
    }

    static let pythonPath: URL? = ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }.map { URL(fileURLWithPath: $0) }

    /// posix_spawn shares this process's memory until exec, and Linux then counts this
    /// process's peak RSS in the child's `ru_maxrss`. A small python3 that forks and execs the
    /// binary reports the binary's own peak instead.
    private static func measured(_ python: URL, _ arguments: [String]) throws -> ChildResult {
        let dir = try TestPaths.temporaryDirectory("rss")
        defer { try? FileManager.default.removeItem(at: dir) }
        let rssFile = dir.appendingPathComponent("rss").path
        let script = """
            import os, sys
            pid = os.fork()
            if pid == 0:
                os.execv(sys.argv[2], sys.argv[2:])
            _, status, ru = os.wait4(pid, 0)
            open(sys.argv[1], "w").write(str(ru.ru_maxrss))
            if os.WIFSIGNALED(status):
                os.kill(os.getpid(), os.WTERMSIG(status))
            sys.exit(os.WEXITSTATUS(status))
            """
        var r = try run(python, ["-c", script, rssFile, TestPaths.backpackBinary.path] + arguments)
        if let s = try? String(contentsOfFile: rssFile, encoding: .utf8), let v = Int(s) { r.maxRSSKiB = v }
        return r
    }
}

/// Marker files that a hostile payload would create (`touch /tmp/backpack-pwned-<name>`).
enum Markers {
    static func present() -> Set<String> {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []
        return Set(names.filter { $0.hasPrefix("backpack-pwned") })
    }
}

/// Peak resident set size of this process (VmHWM), in KiB.
func peakRSSKiB() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }
    return 0
}

func writeBytes(_ bytes: [UInt8], _ url: URL) throws { try Data(bytes).write(to: url) }

func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }

/// SHA-256 (hex) of every regular file under `dir`, by relative path.
func treeHashes(_ dir: URL) throws -> [String: String] {
    var out: [String: String] = [:]
    guard let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: [.isRegularFileKey]) else { return out }
    let base = dir.standardizedFileURL.path
    for case let u as URL in e {
        guard (try u.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true else { continue }
        let rel = String(u.standardizedFileURL.path.dropFirst(base.count))
        out[rel] = try sha256File(u)
    }
    return out
}

func sha256File(_ url: URL) throws -> String { try FileDigest.sha256(url) }
