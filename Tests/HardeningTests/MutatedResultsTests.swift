import BackpackModel
import BackpackResults
import Foundation
import Testing
import TestSupport

/// `backpack report` may be handed any `.h5`. Damaged copies of a real results file (random bytes
/// changed, mostly in the first 8 kB where HDF5 keeps its superblock and root objects) must give
/// exit 0 (the change hit data) or exit 1 with a message, never a signal. libhdf5 itself crashes on
/// some of them (docs/HARDENING.md, finding 9): `report` reads the file in a child process.
@Suite(.timeLimit(.minutes(5))) struct MutatedResultsTests {
    func baseFile(_ dir: URL) throws -> URL {
        let url = dir.appendingPathComponent("base.h5")
        var suite = SuiteResult(suiteName: "pronoun-bias", suiteVersion: "2", dataSHA256: String(repeating: "a", count: 64))
        suite.set("bias", 6.25, headline: true)
        suite.set("n_prompts", 520)
        suite.add("ratio", (0..<520).map { 1 + Double($0 % 17) / 3 })
        suite.add("nouns", strings: (0..<40).map { "noun\($0)" })
        suite.add("noun_bias", (0..<40).map { Double($0) / 7 })
        let variants = ["base", "edit-a", "edit-b"].map { VariantResults(variant: $0, editText: "schema: backpack-edit/1\n", editSHA256: "", suites: [suite]) }
        let record = RunRecord(provenance: RunProvenance(toolVersion: "test", gitCommit: "", modelPath: "m", modelSHA256: ""),
                               commandLine: "backpack eval", elapsedSeconds: 1, variants: variants)
        try ResultsFile.append(record, to: url, runID: "run-1")
        return url
    }

    @Test func damagedFilesAreErrorsNeverCrashes() throws {
        let dir = try TestPaths.temporaryDirectory("mutated-h5")
        defer { try? FileManager.default.removeItem(at: dir) }
        let original = try Data(contentsOf: try baseFile(dir))
        var rng = SeededGenerator(seed: 20261201)   // the same mutations on every machine
        var outcomes: [String: Int] = [:]
        for i in 0..<60 {
            var bytes = [UInt8](original)
            let changes = [1, 4, 16, 64][Int(rng.next() % 4)]
            for _ in 0..<changes {
                let limit = rng.next() % 10 < 7 ? min(bytes.count, 8192) : bytes.count
                bytes[Int(rng.next() % UInt64(limit))] = UInt8(truncatingIfNeeded: rng.next())
            }
            let url = dir.appendingPathComponent("m\(i).h5")
            try Data(bytes).write(to: url)
            let r = try Child.backpack(["report", url.path, "--json"])
            #expect(r.signal == nil, "m\(i).h5: ended by signal \(r.signal ?? 0): \(r.err)")
            #expect(r.status == 0 || r.status == 1, "m\(i).h5: status \(String(describing: r.status)): \(r.err)")
            if r.status == 1 { #expect(r.err.contains(url.path), "m\(i).h5: the message does not name the file: \(r.err)") }
            let key = r.err.contains("libhdf5 crashed") ? "libhdf5 crash caught" : r.status == 0 ? "read" : "error"
            outcomes[key, default: 0] += 1
            try FileManager.default.removeItem(at: url)
        }
        print("mutated results files: \(outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
        #expect(outcomes.values.reduce(0, +) == 60)
    }
}
