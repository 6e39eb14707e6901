import BackpackResults
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 30.4: the next `eval`, `eval --resume` or `merge` on a results file removes the part
/// folders of abandoned runs (their run is finished or gone from the file, and no process owns
/// them), one stderr line each; a folder a live process owns, and a killed run that may still be
/// resumed, keep their parts, and `--resume` still continues the killed run.
@Suite(.serialized) struct PartReclaimCLITests {
    /// A process holding the owner mark of a part folder (a shared flock on `.owner`, as a
    /// writer holds it), taken with `flock(1)`; `kill()` ends it with SIGKILL, as a killed eval ends.
    final class Owner {
        let process = Process()
        init(_ dir: URL) throws {
            // One process holds the lock and is the one killed: the shell opens the file, takes
            // the lock with flock(1) on that descriptor, and becomes `sleep` keeping it.
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "exec 9>>\"$0\" && flock -s 9 && exec sleep 120", dir.appendingPathComponent(".owner").path]
            try process.run()
            // Until the lock is held: an exclusive try fails.
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                let fd = open(dir.appendingPathComponent(".owner").path, O_RDWR | O_CLOEXEC)
                if fd >= 0 {
                    defer { close(fd) }
                    if flock(fd, LOCK_EX | LOCK_NB) != 0 { return }
                    _ = flock(fd, LOCK_UN)
                }
                usleep(10_000)
            }
            throw POSIXError(.ETIMEDOUT)
        }
        func kill() {
            guard process.isRunning else { return }
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        deinit { kill() }
    }

    static func reclaimed(_ err: String) -> [String] {
        err.split(separator: "\n").map(String.init).filter { $0.hasPrefix("reclaimed run ") }
    }

    @Test func abandonedPartsGoLiveAndResumableOnesStay() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/flock") else { return }
        let s = try ReliabilityTests.Scratch("reclaim")
        defer { s.remove() }
        let fm = FileManager.default
        let h5 = s.url("results.h5")
        let root = ResultsFile.partsDirectory(for: h5)
        // A run killed after 2 of its 4 results: unfinished, resumable.
        let killed = try Child.backpack(ResumeTests.args(s, out: h5) + ["--kill-after-stored", "2"])
        #expect(killed.signal == SIGKILL, "\(killed)")
        let id = try #require(try ResultsFile.runs(in: h5).first)
        let killedDir = root.appendingPathComponent(id)
        let name = try #require(try fm.contentsOfDirectory(atPath: killedDir.path).first { $0.hasSuffix(".part") })
        let part = try Data(contentsOf: killedDir.appendingPathComponent(name))
        func folder(_ run: String) throws -> URL {
            let dir = root.appendingPathComponent(run)
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            try part.write(to: dir.appendingPathComponent(name))
            try Data(count: 10).write(to: dir.appendingPathComponent(".tmp-0123"))
            return dir
        }
        // `gone`: the results file has no such run, and its owner was SIGKILLed.
        let gone = try folder("gone")
        try Owner(gone).kill()
        // `live`: no such run either, but its owner lives.
        let live = try folder("live")
        let liveOwner = try Owner(live)
        defer { liveOwner.kill() }

        // The next eval (a new run) removes `gone` only.
        let next = try Child.backpack(ResumeTests.args(s, out: h5))
        try #require(next.status == 0, "\(next)")
        #expect(Self.reclaimed(next.err) == ["reclaimed run gone: removed 1 result part(s) and 1 half-written file(s), \(part.count + 10) bytes, from \(gone.path) (results.h5 has no such run and no process owns it)"], "\(next.err)")
        #expect(!fm.fileExists(atPath: gone.path))
        #expect(try fm.contentsOfDirectory(atPath: live.path).sorted() == [".owner", ".tmp-0123", name])
        #expect(try fm.contentsOfDirectory(atPath: killedDir.path).filter { $0.hasSuffix(".part") }.count == 2)

        // --resume continues the killed run with its 2 stored results.
        let resumed = try Child.backpack(ResumeTests.args(s, out: h5) + ["--resume"])
        try #require(resumed.status == 0, "\(resumed)")
        #expect(resumed.err.components(separatedBy: "already stored, not recomputed").count - 1 == 2, "\(resumed.err)")
        #expect(Self.reclaimed(resumed.err).isEmpty, "\(resumed.err)")
        #expect(try ResultsFile(opening: h5).latestUnfinishedRun() == nil)
        #expect(!fm.fileExists(atPath: killedDir.path))

        // Once `live`'s owner is killed, the next merge into the file removes it.
        liveOwner.kill()
        let shard = s.url("shard.h5")
        let sharded = try Child.backpack(ResumeTests.args(s, out: shard) + ["--shard", "1/1"])
        try #require(sharded.status == 0, "\(sharded)")
        let merged = try Child.backpack(["merge", shard.path, "--out", h5.path])
        try #require(merged.status == 0, "\(merged)")
        #expect(Self.reclaimed(merged.err) == ["reclaimed run live: removed 1 result part(s) and 1 half-written file(s), \(part.count + 10) bytes, from \(live.path) (results.h5 has no such run and no process owns it)"], "\(merged.err)")
        #expect(!fm.fileExists(atPath: root.path), "parts left: \((try? fm.contentsOfDirectory(atPath: root.path)) ?? [])")
    }
}
