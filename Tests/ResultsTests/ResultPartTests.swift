import Foundation
import Testing
import TestSupport
@testable import BackpackResults

/// The part file of one stored result (ResultPart.swift): it gives back exactly what was stored
/// (doubles by their bits, NaN and -0 included, order kept), and any damage is refused naming the
/// file; `foldParts` adds the parts to the results file as `RunWriter` writes a whole run.
@Suite struct ResultPartTests {
    static func result() -> SuiteResult {
        var r = SuiteResult(suiteName: "tiny ppl", suiteVersion: "2", dataSHA256: String(repeating: "ab", count: 32))
        r.set("token_perplexity", 12.5, headline: true)
        r.set("bias", -0.0, headline: true)
        r.set("n_tokens", 42)
        r.set("pair", "he,she")
        r.roles = [.cost: "token_perplexity", .bias: "bias"]
        r.add("nll", [1.0, .nan, -.infinity, 0.1 + 0.2, Double.leastNonzeroMagnitude])
        r.add("tokens", ints: [1, -2, Int(Int32.max) + 7])
        r.add("documents", strings: ["a", "", "ünïcode #1", String(repeating: "x", count: 5000)])
        return r
    }

    static func bits(_ r: SuiteResult) -> String {
        var lines = ["\(r.suiteName) \(r.suiteVersion) \(r.dataSHA256) \(r.headline) \(r.rolesText)"]
        for (n, v) in r.attributes {
            if case .double(let d) = v { lines.append("\(n) \(d.bitPattern)") } else { lines.append("\(n) \(v)") }
        }
        for (n, v) in r.datasets {
            if case .doubles(let d) = v { lines.append("\(n) \(d.map(\.bitPattern))") } else { lines.append("\(n) \(v)") }
        }
        return lines.joined(separator: "\n")
    }

    /// The suite's kind and its metrics' metadata come back from a part (the fold writes them
    /// to the HDF5 file), and a part written before they were stored still reads.
    @Test func keepsKindAndMetricMetadata() throws {
        var r = Self.result()
        r.kind = "perplexity"
        r.metrics = [MetricInfo("token_perplexity", "exp of the mean token loss", unit: "perplexity", ideal: nil, better: .lower),
                     MetricInfo("bias", "a bias, \"quoted\"", unit: "ratio", ideal: 1, better: .closerToIdeal)]
        let back = try ResultPart.decode(try ResultPart(run: "r", variant: "base", result: r).encoded(), file: "p.part").result
        #expect(back.kind == "perplexity" && back.metrics == r.metrics)
        // Without a kind section (an older part): no kind, no metadata, the rest as stored.
        var old = ByteWriter()
        for s in ["r", "base", r.suiteName, r.suiteVersion, r.dataSHA256] { old.string(s) }
        old.u32(0); old.u32(0); old.u32(1); old.string("x"); old.u8(0); old.u64((2.5).bitPattern); old.u32(0)
        let legacy = try ResultPart.decode(try ResultPart.framed(old.bytes), file: "old.part").result
        #expect(legacy.kind == nil && legacy.metrics.isEmpty && legacy["x"] == .double(2.5))
    }

    @Test func roundTripsBitForBit() throws {
        let part = ResultPart(run: "run-1", variant: "sweep[scale=0.5]", result: Self.result())
        let bytes = try part.encoded()
        let back = try ResultPart.decode(bytes, file: "p.part")
        #expect(back.run == "run-1" && back.variant == "sweep[scale=0.5]")
        #expect(Self.bits(back.result) == Self.bits(part.result))
        // Compressed: the 5000-character string costs far less than 5000 bytes.
        #expect(bytes.count < 1000, "\(bytes.count) bytes")
    }

    @Test func damageIsRefusedNamingTheFile() throws {
        let bytes = try ResultPart(run: "r", variant: "v", result: Self.result()).encoded()
        var flipped = bytes; flipped[bytes.count - 3] ^= 0x10
        let cases: [([UInt8], String)] = [
            (Array(bytes.prefix(bytes.count - 1)), "truncated"),
            (flipped, "CRC-32 mismatch"),
            (Array("not a part at all, just text".utf8), "not a result part"),
            ([], "not a result part"),
        ]
        for (data, why) in cases {
            do {
                _ = try ResultPart.decode(data, file: "/x/r-1.part")
                Issue.record("decoded a damaged part (\(why))")
            } catch {
                #expect("\(error)".contains("/x/r-1.part") && "\(error)".contains(why), "\(error)")
            }
        }
    }

    /// Parts stored for a begun run are read with the run, folded in plan order by `finishRun`,
    /// and equal what a whole run written at once holds; a damaged part is left out and removed.
    @Test func foldedPartsEqualAWholeRun() throws {
        let dir = try TestPaths.temporaryDirectory("parts")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("r.h5")
        let plan = RunPlan(modelSHA256: "m", variants: [("base", "", ""), ("e", "edit", "sha")],
                           suites: [("tiny ppl", "2", "s"), ("other", "1", "t")])
        let provenance = RunProvenance(toolVersion: "t", gitCommit: "g", modelPath: "p", modelSHA256: "m", host: "h", created: "c")
        let id = try ResultsFile.beginRun(plan, provenance: provenance, commandLine: "test", to: url, runID: "run")
        var other = Self.result(); other.suiteName = "other"
        // Stored out of plan order; the fold puts each variant's suites in plan order.
        try ResultsFile.storePart(other, variant: "e", run: id, for: url)
        try ResultsFile.storePart(Self.result(), variant: "e", run: id, for: url)
        try ResultsFile.storePart(Self.result(), variant: "base", run: id, for: url)
        let runDir = ResultsFile.partsDirectory(for: url).appendingPathComponent(id)
        try Data("garbage".utf8).write(to: runDir.appendingPathComponent("r-0000000000000000.part"))
        let before = try ResultsFile(opening: url)
        #expect(try before.record(id).variants.map { $0.suites.map(\.suiteName) } == [["tiny ppl"], ["tiny ppl", "other"]])
        #expect(try before.latestUnfinishedRun()?.finished == ["base/tiny ppl", "e/tiny ppl", "e/other"])
        #expect(ResultsFile.parts(of: id, for: url).damaged.count == 1)
        try before.file.close()
        try ResultsFile.finishRun(id, elapsedSeconds: 2, in: url)
        #expect(!FileManager.default.fileExists(atPath: ResultsFile.partsDirectory(for: url).path))
        let file = try ResultsFile(opening: url)
        let record = try file.record(id)
        #expect(record.status == "complete")
        #expect(try file.run(id).group("e").groupNames() == ["tiny ppl", "other"])
        #expect(record.variants.map { $0.suites.map(\.suiteName) } == [["tiny ppl"], ["tiny ppl", "other"]])
        #expect(Self.bits(record.variants[1].suites[0]).split(separator: "\n").sorted() == Self.bits(Self.result()).split(separator: "\n").sorted())
    }
}
