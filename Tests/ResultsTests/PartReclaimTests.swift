import Foundation
import Testing
import TestSupport
@testable import BackpackResults

/// `reclaimAbandonedParts` (issue 30.4): the parts of a finished run (a fold killed after its
/// rename) or of a run the file does not have are removed with one line each; a running run's
/// stored parts stay whoever owns them (it may be resumed), only its half-written files go.
@Suite struct PartReclaimTests {
    @Test func finishedAndMissingRunsAreReclaimedRunningOnesKept() throws {
        let dir = try TestPaths.temporaryDirectory("reclaim")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fm = FileManager.default
        let url = dir.appendingPathComponent("r.h5")
        let plan = RunPlan(modelSHA256: "m", variants: [("base", "", "")], suites: [("tiny ppl", "2", "s")])
        let provenance = RunProvenance(toolVersion: "t", gitCommit: "g", modelPath: "p", modelSHA256: "m", host: "h", created: "c")
        let root = ResultsFile.partsDirectory(for: url)

        // A finished run whose fold was killed after its rename: the part is still there.
        let done = try ResultsFile.beginRun(plan, provenance: provenance, commandLine: "test", to: url, runID: "done")
        try ResultsFile.storePart(ResultPartTests.result(), variant: "base", run: done, for: url)
        let doneDir = root.appendingPathComponent(done)
        let name = try #require(try fm.contentsOfDirectory(atPath: doneDir.path).first { $0.hasSuffix(".part") })
        let bytes = try Data(contentsOf: doneDir.appendingPathComponent(name))
        try ResultsFile.finishRun(done, elapsedSeconds: 1, in: url)
        #expect(!fm.fileExists(atPath: doneDir.path), "a finished run's folder stays")
        try fm.createDirectory(at: doneDir, withIntermediateDirectories: true)
        try bytes.write(to: doneDir.appendingPathComponent(name))

        // A folder of a run the file does not have (the file was replaced), with a half-written part.
        let goneDir = root.appendingPathComponent("gone")
        try fm.createDirectory(at: goneDir, withIntermediateDirectories: true)
        try bytes.write(to: goneDir.appendingPathComponent(name))
        try Data(count: 10).write(to: goneDir.appendingPathComponent(".tmp-0123"))

        // A running run that no process owns any more (its writer is gone): resumable.
        let open = try ResultsFile.beginRun(plan, provenance: provenance, commandLine: "test", to: url, runID: "open")
        try ResultsFile.storePart(ResultPartTests.result(), variant: "base", run: open, for: url)
        let openDir = root.appendingPathComponent(open)
        try Data(count: 7).write(to: openDir.appendingPathComponent(".tmp-dead"))

        // While this process owns `open`, even its half-written file stays.
        var lines: [String] = []
        ResultsFile.reclaimAbandonedParts(for: url) { lines.append($0) }
        #expect(lines.count == 2, "\(lines)")
        #expect(lines.contains("reclaimed run done: removed 1 result part(s), \(bytes.count) bytes, from \(doneDir.path) (the run is finished, its results are in r.h5, and no process owns it)"), "\(lines)")
        #expect(lines.contains("reclaimed run gone: removed 1 result part(s) and 1 half-written file(s), \(bytes.count + 10) bytes, from \(goneDir.path) (r.h5 has no such run and no process owns it)"), "\(lines)")
        #expect(!fm.fileExists(atPath: doneDir.path) && !fm.fileExists(atPath: goneDir.path))
        #expect(fm.fileExists(atPath: openDir.appendingPathComponent(".tmp-dead").path))

        // Its owner gone, the running run keeps its stored part; the half-written file goes.
        PartOwner.release(openDir)
        lines = []
        ResultsFile.reclaimAbandonedParts(for: url) { lines.append($0) }
        #expect(lines == ["reclaimed run open: removed 0 result part(s) and 1 half-written file(s), 7 bytes, from \(openDir.path) (run open is unfinished and no process owns it: its 1 stored part(s) are kept for --resume)"], "\(lines)")
        #expect(try ResultsFile(opening: url).latestUnfinishedRun()?.finished == ["base/tiny ppl"])
        lines = []
        ResultsFile.reclaimAbandonedParts(for: url) { lines.append($0) }
        #expect(lines.isEmpty, "\(lines)")
        // It still finishes with its part.
        try ResultsFile.finishRun(open, elapsedSeconds: 1, in: url)
        #expect(try ResultsFile(opening: url).record(open).variants.map(\.suites.count) == [1])
        #expect(!fm.fileExists(atPath: root.path))
    }
}
