import Foundation
import Testing
@testable import BackpackResults
import TestSupport

@Suite("Results file", .serialized)
struct ResultsFileTests {
    /// Fills a run the way the evaluation is expected to: provenance, base + one edit, two suites.
    static func fillRun(_ run: H5Group, seed: Int) throws {
        try RunProvenance(toolVersion: "0.1.0", gitCommit: "abc123", modelPath: "/models/tiny",
                          modelSHA256: String(repeating: "ab", count: 32), host: "test-host",
                          created: "2026-11-26T19:45:03Z").write(to: run)
        for variant in ["base", "edit-nurse"] {
            let v = try run.createGroup(variant)
            try v.setAttribute(ResultsKeys.editText, variant == "base" ? "" : "nurse: -she +he")
            try v.setAttribute(ResultsKeys.editSHA256, variant == "base" ? "" : String(repeating: "0f", count: 32))
            let bias = try v.createGroup("bias")
            try bias.setAttribute(ResultsKeys.suiteName, "bias")
            try bias.setAttribute(ResultsKeys.suiteVersion, "1")
            try bias.setAttribute(ResultsKeys.dataSHA256, String(repeating: "11", count: 32))
            try bias.write("prompts", strings: ["The nurse said that", "La infirmière — ü", "看護師は"])
            try bias.write("words", strings: ["nurse", "infirmière", "看護師"])
            try bias.write("log_odds", floats: [0.5, -0.25, Float(seed)], shape: [3])
            try bias.write("probs", doubles: [0.1, 0.9, 0.2, 0.8, 0.3, 0.7], shape: [3, 2])
            try bias.setAttribute("mean_abs_log_odds", 0.25 + Double(seed))
            try bias.setAttribute("n_items", 3)
            try bias.write("mean_abs_log_odds", scalar: 0.25 + Double(seed))
            let ppl = try v.createGroup("perplexity")
            try ppl.setAttribute(ResultsKeys.suiteName, "perplexity")
            try ppl.setAttribute(ResultsKeys.suiteVersion, "1")
            try ppl.setAttribute(ResultsKeys.dataSHA256, String(repeating: "22", count: 32))
            let losses: [Float] = (0..<4096).map { Float($0 % 13) * 0.1 + Float(seed) }
            try ppl.write("token_loss", floats: losses, shape: [64, 64])
            try ppl.write("doc_lengths", int64s: [1024, 1024, 1024, 1024])
            try ppl.setAttribute("perplexity", 12.5 + Double(seed))
        }
    }

    static func tempFiles(in dir: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp-") }
    }

    @Test func runsAccumulateAndEarlierRunsStayIntact() throws {
        let dir = try TestPaths.temporaryDirectory("results-acc")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("results.h5")
        var ids: [String] = []
        for seed in 0..<3 {
            ids.append(try ResultsFile.append(to: url) { run in try Self.fillRun(run, seed: seed) })
            #expect(try Self.tempFiles(in: dir).isEmpty)
        }
        #expect(Set(ids).count == 3)
        #expect(try ResultsFile.runs(in: url) == ids)

        let results = try ResultsFile(opening: url)
        #expect(try results.file.root.stringAttribute(ResultsKeys.layoutVersion) == "1")
        #expect(try results.file.root.stringAttribute(ResultsKeys.createdBy) == "backpack-edit")
        for (seed, id) in ids.enumerated() {
            let run = try results.run(id)
            #expect(try RunProvenance(reading: run).gitCommit == "abc123")
            #expect(try run.groupNames() == ["base", "edit-nurse"])
            let bias = try results.suite(run: id, variant: "edit-nurse", suite: "bias")
            #expect(try bias.readFloats("log_odds").values == [0.5, -0.25, Float(seed)])
            #expect(try bias.readStrings("prompts")[2] == "看護師は")
            #expect(try bias.doubleAttribute("mean_abs_log_odds") == 0.25 + Double(seed))
            let ppl = try results.suite(run: id, variant: "base", suite: "perplexity")
            let loss = try ppl.readFloats("token_loss")
            #expect(loss.shape == [64, 64])
            #expect(loss.values[13] == Float(seed))
            #expect(try ppl.datasetInfo("token_loss").isCompressed)
        }

        let summary = try results.summary()
        #expect(summary.map(\.id) == ids)
        #expect(summary[0].attributes[ResultsKeys.host] == .string("test-host"))
        #expect(summary[0].variants.map(\.name) == ["base", "edit-nurse"])
        #expect(summary[0].variants[1].attributes[ResultsKeys.editText] == .string("nurse: -she +he"))
        let bias = summary[1].variants[0].suites[0]
        #expect(bias.name == "bias")
        #expect(bias.attributes["n_items"] == .int(3))
        #expect(bias.datasets.map(\.name) == ["prompts", "words", "log_odds", "probs", "mean_abs_log_odds"])
        #expect(bias.datasets[3].info.shape == [3, 2])
        #expect(bias.datasets[4].info.shape == [])
    }

    @Test func givenRunIDAndRefusingDuplicates() throws {
        let dir = try TestPaths.temporaryDirectory("results-dup")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("results.h5")
        let id = try ResultsFile.append(to: url, runID: "my-run") { try $0.setAttribute("x", 1) }
        #expect(id == "my-run")
        let before = try Data(contentsOf: url)
        let dup = #expect(throws: ResultsError.self) {
            try ResultsFile.append(to: url, runID: "my-run") { try $0.setAttribute("x", 2) }
        }
        #expect(dup?.kind == .alreadyExists)
        #expect(dup?.object == "/runs/my-run")
        #expect(try Data(contentsOf: url) == before)
        let bad = #expect(throws: ResultsError.self) { try ResultsFile.append(to: url, runID: "a/b") { _ in } }
        #expect(bad?.kind == .invalidArgument)
        #expect(try Self.tempFiles(in: dir).isEmpty)
        #expect(try ResultsFile(opening: url).run("my-run").intAttribute("x") == 1)
    }

    struct BodyFailed: Error {}

    @Test func throwingBodyLeavesFileByteIdentical() throws {
        let dir = try TestPaths.temporaryDirectory("results-throw")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("results.h5")
        // Throwing on first creation leaves no file at all.
        #expect(throws: BodyFailed.self) {
            try ResultsFile.append(to: url) { run in
                try run.write("x", doubles: [1, 2, 3])
                throw BodyFailed()
            }
        }
        #expect(!FileManager.default.fileExists(atPath: url.path))
        #expect(try Self.tempFiles(in: dir).isEmpty)

        let first = try ResultsFile.append(to: url) { try Self.fillRun($0, seed: 1) }
        let before = try Data(contentsOf: url)
        let beforeInode = try FileManager.default.attributesOfItem(atPath: url.path)[.systemFileNumber] as? Int
        #expect(throws: BodyFailed.self) {
            try ResultsFile.append(to: url) { run in
                try Self.fillRun(run, seed: 2)
                throw BodyFailed()
            }
        }
        #expect(try Data(contentsOf: url) == before)
        #expect(try FileManager.default.attributesOfItem(atPath: url.path)[.systemFileNumber] as? Int == beforeInode)
        #expect(try Self.tempFiles(in: dir).isEmpty)
        #expect(try ResultsFile.runs(in: url) == [first])
    }

    @Test func nonResultsFilesAreRefusedAndLeftAlone() throws {
        let dir = try TestPaths.temporaryDirectory("results-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = dir.appendingPathComponent("results.h5")
        let original = Data("not hdf5 at all\n".utf8)
        try original.write(to: text)
        let e1 = #expect(throws: ResultsError.self) { try ResultsFile.append(to: text) { _ in } }
        #expect(e1?.description.contains(text.path) == true)
        #expect(try Data(contentsOf: text) == original)
        #expect(try Self.tempFiles(in: dir).isEmpty)
        let e2 = #expect(throws: ResultsError.self) { try ResultsFile.runs(in: text) }
        #expect(e2?.description.contains(text.path) == true)

        let missing = dir.appendingPathComponent("missing.h5")
        let e3 = #expect(throws: ResultsError.self) { try ResultsFile.runs(in: missing) }
        #expect(e3?.kind == .notFound)
        #expect(e3?.description.contains(missing.path) == true)

        // An HDF5 file that is not a results file (no layout_version).
        let plain = dir.appendingPathComponent("plain.h5")
        try H5File.create(plain).close()
        let plainBytes = try Data(contentsOf: plain)
        let e4 = #expect(throws: ResultsError.self) { try ResultsFile.append(to: plain) { _ in } }
        #expect(e4?.kind == .unsupportedLayout)
        #expect(e4?.file == plain.path)
        #expect(try Data(contentsOf: plain) == plainBytes)
        #expect(try Self.tempFiles(in: dir).isEmpty)
    }

    @Test func appendLeavesNoOpenHandlesAndIgnoresStaleTempFiles() throws {
        let dir = try TestPaths.temporaryDirectory("results-leak")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("results.h5")
        // A temp file left by a killed process must not disturb later appends.
        let stale = dir.appendingPathComponent(".results.h5.tmp-deadbeef")
        try Data("half-written".utf8).write(to: stale)
        // Hold the HDF5 lock so that tests running in parallel cannot change the global count.
        try H5Library.locked {
            let before = H5Library.openObjectCountAllFiles()
            try ResultsFile.append(to: url) { try Self.fillRun($0, seed: 0) }
            #expect(H5Library.openObjectCountAllFiles() == before)
            #expect(throws: BodyFailed.self) {
                try ResultsFile.append(to: url) { run in
                    _ = try run.createGroup("partial")
                    throw BodyFailed()
                }
            }
            #expect(H5Library.openObjectCountAllFiles() == before)
            _ = try ResultsFile.summary(of: url)
            #expect(H5Library.openObjectCountAllFiles() == before)
        }
        #expect(try Self.tempFiles(in: dir) == [stale.lastPathComponent])
        #expect(try ResultsFile.runs(in: url).count == 1)
    }

    @Test func runIDFormat() throws {
        let date = Date(timeIntervalSince1970: 1_795_722_303)  // 2026-11-26T19:45:03Z
        let id = ResultsFile.makeRunID(date: date)
        #expect(id.hasPrefix("2026-11-26T19-45-03Z-"))
        let suffix = id.dropFirst("2026-11-26T19-45-03Z-".count)
        #expect(suffix.count == 6)
        #expect(suffix.allSatisfy { $0.isHexDigit })
        #expect(ResultsFile.timestamp(date) == "2026-11-26T19:45:03Z")
        #expect(ResultsFile.makeRunID(date: date) != id)
    }

    /// Writes a sample results file to $BACKPACK_H5_KEEP (if set) for Tools/h5py-check/check.py.
    @Test func writeSampleFileForH5py() throws {
        let keep = ProcessInfo.processInfo.environment["BACKPACK_H5_KEEP"].flatMap { $0.isEmpty ? nil : $0 }
        let dir = try TestPaths.temporaryDirectory("results-keep")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = keep.map { URL(fileURLWithPath: $0) } ?? dir.appendingPathComponent("results.h5")
        if keep != nil { try? FileManager.default.removeItem(at: url) }
        try ResultsFile.append(to: url, runID: "2026-11-26T19-45-03Z-3fa9c1") { try Self.fillRun($0, seed: 0) }
        try ResultsFile.append(to: url, runID: "2026-11-27T08-00-00Z-b00b1e") { try Self.fillRun($0, seed: 1) }
        #expect(try ResultsFile.runs(in: url).count == 2)
    }
}
