import BackpackResults
import Foundation
import Testing
import TestSupport

/// `backpack eval --shard K/N` and `backpack merge` on the tiny fixture model: a sweep split in 2
/// or 3 shards and merged is, group for group, attribute for attribute and dataset for dataset,
/// the run one unsharded eval writes (run-level provenance aside); merges of shards that do not
/// belong together are refused, naming the file and the difference.
@Suite(.serialized) struct ShardTests {
    static let editNames = ["scale0", "scale_half", "nullspace", "nullspace_all", "knowledge_projection"]
    static func edit(_ name: String) -> String {
        TestPaths.repoRoot.appendingPathComponent("Tests/EditingTests/Edits/\(name).yaml").path
    }
    static let ppl = "suite: tiny-ppl\nversion: 1\nkind: perplexity\ntext: \"the man was with the car. When he said that the man was with the car\"\nmax_length: 8\nstride: 4\nprepend_eos: false\n"
    /// Run attributes that legitimately differ between a merged and an unsharded run.
    static let provenanceKeys: Set<String> = ["created", "elapsed_seconds", "host", "command_line", "merged_from"]

    struct Scratch {
        let root: URL
        init(_ tag: String) throws {
            root = try TestPaths.temporaryDirectory(tag)
            try TinySuites.pronouns.write(to: url("pronouns.yaml"), atomically: true, encoding: .utf8)
            try ShardTests.ppl.write(to: url("ppl.yaml"), atomically: true, encoding: .utf8)
        }
        func url(_ name: String) -> URL { root.appendingPathComponent(name) }
        func path(_ name: String) -> String { url(name).path }
        func remove() { try? FileManager.default.removeItem(at: root) }
        /// `backpack eval` of base + `edits` on the two tiny suites.
        func eval(_ edits: [String], out: String, _ extra: [String] = []) -> [String] {
            ["eval", "--model", TestPaths.tinyModel.path, "--tokenizer", TestPaths.toyTokenizer.path,
             "--suite", path("pronouns.yaml"), "--suite", path("ppl.yaml")]
                + edits.flatMap { ["--edit", ShardTests.edit($0)] } + ["--out", path(out)] + extra
        }
    }

    static func backpack(_ args: [String]) throws -> BackpackRun {
        let r = try BackpackRun.run(args)
        #expect(!r.signaled || args.contains("--kill-after-stored"), "backpack \(args) ended by a signal: \(r.err)")
        return r
    }

    /// Everything below `group`, one line per child, attribute and dataset (shape, type, chunks,
    /// filters and values), in the file's order. Doubles are printed by Swift's shortest
    /// round-trip form, so equal lines mean bit-equal values (NaN aside, printed "nan").
    static func tree(_ group: H5Group, skippingAttributes skip: Set<String> = []) throws -> [String] {
        var lines: [String] = []
        for name in try group.attributeNames() where !skip.contains(name) {
            lines.append("\(group.path) @\(name) = \(try group.attribute(name))")
        }
        for child in try group.children() {
            switch try group.kind(of: child) {
            case .group: lines.append("\(group.path)/\(child)/"); lines += try tree(try group.group(child))
            case .dataset:
                let info = try group.datasetInfo(child)
                let values: String
                switch info.element {
                case .float: values = "\(try group.readDoubles(child).values)"
                case .integer: values = "\(try group.readInt64s(child).values)"
                case .string: values = "\(try group.readStrings(child))"
                case .other: values = "?"
                }
                lines.append("\(group.path)/\(child) \(info.shape) \(info.element) chunks \(String(describing: info.chunks)) filters \(info.filters) = \(values)")
            default: lines.append("\(group.path)/\(child) other")
            }
        }
        return lines
    }

    /// The run `id` of `url`, without the provenance that may differ; paths relative to the run.
    static func runTree(_ url: URL, _ id: String) throws -> [String] {
        let file = try ResultsFile(opening: url)
        defer { try? file.file.close() }
        return try tree(try file.run(id), skippingAttributes: provenanceKeys).map { $0.replacingOccurrences(of: "/runs/\(id)", with: "RUN") }
    }

    /// Fails naming the first line that differs.
    static func expectSame(_ a: [String], _ b: [String], _ what: String) {
        if a == b { return }
        let i = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
        Issue.record("\(what): \(a.count) vs \(b.count) lines; first difference at line \(i):\n  \(i < a.count ? a[i] : "(none)")\n  \(i < b.count ? b[i] : "(none)")")
    }

    @Test func shardedSweepMergesToTheUnshardedRun() throws {
        let s = try Scratch("shard")
        defer { s.remove() }
        let whole = try Self.backpack(s.eval(Self.editNames, out: "whole.h5"))
        try #require(whole.status == 0, "\(whole.err)")
        let wholeID = try #require(try ResultsFile.runs(in: s.url("whole.h5")).first)
        let expected = try Self.runTree(s.url("whole.h5"), wholeID)
        // 6 variants x 2 suites, each with its datasets and aggregates.
        #expect(expected.filter { $0.hasSuffix("/aggregates/") }.count == 12, "\(expected.prefix(20))")

        var shardID: String?
        for n in [2, 3] {
            var files: [String] = []
            var computed = 0
            for k in 1...n {
                let out = "shard-\(k)-of-\(n).h5"
                let r = try Self.backpack(s.eval(Self.editNames, out: out, ["--shard", "\(k)/\(n)"]))
                try #require(r.status == 0, "shard \(k)/\(n): \(r.err)")
                computed += r.err.components(separatedBy: " done in ").count - 1
                // Round-robin over 6 variants: every shard evaluates 6/n variants of each suite together.
                #expect(r.err.contains("(\(6 / n) variant(s) evaluated together)"), "shard \(k)/\(n): \(r.err)")
                let ids = try ResultsFile.runs(in: s.url(out))
                #expect(ids.count == 1 && ids[0].hasPrefix("shard-") && ids[0].count == 18, "\(ids)")
                if shardID == nil { shardID = ids.first }
                #expect(ids.first == shardID, "every shard of a plan derives the same run id: \(ids) vs \(String(describing: shardID))")
                let run = try ResultsFile(opening: s.url(out)).run(ids[0])
                #expect(try run.intAttribute(ResultsKeys.shardIndex) == k && run.intAttribute(ResultsKeys.shardCount) == n)
                #expect(try run.stringAttribute(ResultsKeys.status) == "complete")
                files.append(s.path(out))
            }
            #expect(computed == 12, "the \(n) shards computed \(computed) results, not 12")
            // Any order of the inputs.
            let merged = try Self.backpack(["merge"] + files.reversed() + ["--out", s.path("merged-\(n).h5")])
            try #require(merged.status == 0, "merge of \(n): \(merged.err)")
            let id = try #require(shardID)
            #expect(merged.out.contains("run \(id)"), "\(merged.out)")
            Self.expectSame(try Self.runTree(s.url("merged-\(n).h5"), id), expected, "\(n) shards merged vs unsharded")
            let run = try ResultsFile(opening: s.url("merged-\(n).h5")).run(id)
            let from = try run.stringAttribute(ResultsKeys.mergedFrom).split(separator: "\n")
            #expect(from.count == n, "\(from)")
            for (k, file) in files.enumerated() {
                #expect(from[k].hasPrefix("shard \(k + 1)/\(n) \(file) ") && from[k].contains("--shard \(k + 1)/\(n)"), "\(from[k])")
            }
            #expect(try run.stringAttribute(ResultsKeys.commandLine).contains("merge"))
        }
        let id = try #require(shardID)
        // A shard's report says which share of the run it holds.
        let shardReport = try Self.backpack(["report", s.path("shard-2-of-2.h5")])
        #expect(shardReport.status == 0 && shardReport.out.contains("shard: 2 of 2"), "\(shardReport.out)")
        // The merged run appends to a results file like eval's runs do.
        let appended = try Self.backpack(["merge", s.path("shard-1-of-2.h5"), s.path("shard-2-of-2.h5"), "--out", s.path("whole.h5")])
        try #require(appended.status == 0, "\(appended.err)")
        #expect(try ResultsFile.runs(in: s.url("whole.h5")) == [wholeID, id])
        // Merging the same again into that file is refused before anything is written.
        let again = try Self.backpack(["merge", s.path("shard-1-of-2.h5"), s.path("shard-2-of-2.h5"), "--out", s.path("whole.h5")])
        #expect(again.status != 0 && again.err.contains("already has run \(id)"), "\(again.err)")
    }

    /// A sweep file (4 grid points, whose variant groups carry the 1-D string attributes
    /// `grid_axes` and `grid_values`) x 2 suites, dealt into 3 shards: the merge equals the
    /// unsharded run, group for group and bit for bit.
    @Test func shardedGridSweepMergesToTheUnshardedRun() throws {
        let s = try Scratch("shard-grid")
        defer { s.remove() }
        try SweepEvalTests.sweep.write(to: s.url("grid.yaml"), atomically: true, encoding: .utf8)
        func eval(out: String, _ extra: [String] = []) -> [String] {
            ["eval", "--model", TestPaths.tinyModel.path, "--tokenizer", TestPaths.toyTokenizer.path,
             "--suite", s.path("pronouns.yaml"), "--suite", s.path("ppl.yaml"), "--edit", s.path("grid.yaml"), "--out", s.path(out)] + extra
        }
        let whole = try Self.backpack(eval(out: "whole.h5"))
        try #require(whole.status == 0, "\(whole.err)")
        let wholeID = try #require(try ResultsFile.runs(in: s.url("whole.h5")).first)
        let expected = try Self.runTree(s.url("whole.h5"), wholeID)
        // base + 4 grid points, x 2 suites; every point has its coordinates.
        #expect(expected.filter { $0.hasSuffix("/aggregates/") }.count == 10, "\(expected.prefix(20))")
        #expect(expected.filter { $0.contains("@grid_axes = [\"top\", \"scale\"]") }.count == 4, "\(expected.prefix(20))")
        var files: [String] = []
        for k in 1...3 {
            let r = try Self.backpack(eval(out: "grid-\(k).h5", ["--shard", "\(k)/3"]))
            try #require(r.status == 0, "shard \(k)/3: \(r.err)")
            files.append(s.path("grid-\(k).h5"))
        }
        let merged = try Self.backpack(["merge"] + files + ["--out", s.path("merged.h5")])
        try #require(merged.status == 0, "merge: \(merged.err)")
        let id = try #require(try ResultsFile.runs(in: s.url("merged.h5")).first)
        Self.expectSame(try Self.runTree(s.url("merged.h5"), id), expected, "3 shards of a sweep merged vs unsharded")
        let record = try ResultsFile(opening: s.url("merged.h5")).record(id)
        #expect(record.variants.map(\.grid) == [nil] + [("1", "0"), ("1", "0.5"), ("2", "0"), ("2", "0.5")].map {
            GridPoint(family: "grid", axes: ["top", "scale"], values: [$0.0, $0.1]) })
    }

    @Test func badShardArguments() throws {
        let s = try Scratch("shard-args")
        defer { s.remove() }
        let cases: [(String, String)] = [
            ("0/2", "shards are numbered 1 to 2 (a 0-based index such as Kubernetes' JOB_COMPLETION_INDEX needs + 1"),
            ("3/2", "--shard 3/2: shards are numbered 1 to 2"),
            ("1/0", "--shard 1/0: the shard count must be at least 1"),
            ("two", "--shard two: expected K/N with whole numbers 1 <= K <= N"),
            ("1/2/3", "--shard 1/2/3: expected K/N"),
            // base + scale0 on 2 suites: 4 results, so at most 4 shards.
            ("5/5", "--shard 5/5: the run has only 4 (variant, suite) results to compute (2 variants x 2 suites); use at most 4 shards"),
        ]
        for (arg, message) in cases {
            let r = try Self.backpack(s.eval(["scale0"], out: "r.h5", ["--shard", arg]))
            #expect(r.status != 0 && r.err.contains(message), "--shard \(arg): \(r.err)")
            #expect(!FileManager.default.fileExists(atPath: s.path("r.h5")), "--shard \(arg) wrote a results file")
        }
    }

    @Test func mergeRefusesShardsThatDoNotBelongTogether() throws {
        let s = try Scratch("shard-merge")
        defer { s.remove() }
        func shard(_ edits: [String], _ spec: String, _ out: String) throws {
            let r = try Self.backpack(s.eval(edits, out: out, ["--shard", spec]))
            try #require(r.status == 0, "\(spec) -> \(out): \(r.err)")
        }
        try shard(["scale0"], "1/2", "a1.h5")
        try shard(["scale0"], "2/2", "a2.h5")
        try shard(["scale_half"], "2/2", "b2.h5")
        try shard(["scale0"], "2/3", "a2of3.h5")
        try FileManager.default.copyItem(at: s.url("a1.h5"), to: s.url("a1-copy.h5"))
        let before = try [ "a1.h5", "a2.h5", "b2.h5"].map { try Data(contentsOf: s.url($0)) }

        func merge(_ inputs: [String], _ extra: [String] = [], out: String = "m.h5") throws -> BackpackRun {
            try Self.backpack(["merge"] + inputs.map(s.path) + ["--out", s.path(out)] + extra)
        }
        let otherPlan = try merge(["a1.h5", "b2.h5"])
        #expect(otherPlan.status != 0 && otherPlan.err.contains("\(s.path("b2.h5")): run shard-") && otherPlan.err.contains("is a shard of another plan than \(s.path("a1.h5"))")
                && otherPlan.err.contains("variant scale_half"), "\(otherPlan.err)")
        let otherCount = try merge(["a1.h5", "a2of3.h5"])
        #expect(otherCount.status != 0 && otherCount.err.contains("\(s.path("a2of3.h5")) is shard 2/3, but \(s.path("a1.h5")) is shard 1/2"), "\(otherCount.err)")
        let twice = try merge(["a1.h5", "a1-copy.h5", "a2.h5"])
        #expect(twice.status != 0 && twice.err.contains("\(s.path("a1-copy.h5")) and \(s.path("a1.h5")) are both shard 1/2"), "\(twice.err)")
        let missing = try merge(["a2.h5"])
        #expect(missing.status != 0 && missing.err.contains("missing shard(s) 1/2") && missing.err.contains("--allow-incomplete"), "\(missing.err)")
        let intoInput = try merge(["a1.h5", "a2.h5"], out: "a1.h5")
        #expect(intoInput.status != 0 && intoInput.err.contains("refusing to write into or over the input"), "\(intoInput.err)")
        for bad in ["m.h5"] { #expect(!FileManager.default.fileExists(atPath: s.path(bad)), "a refused merge wrote \(bad)") }
        #expect(try ["a1.h5", "a2.h5", "b2.h5"].map { try Data(contentsOf: s.url($0)) } == before, "a merge changed an input")

        // A shard is computed once per file: running it again is refused before any work.
        let rerun = try Self.backpack(s.eval(["scale0"], out: "a1.h5", ["--shard", "1/2"]))
        #expect(rerun.status != 0 && rerun.err.contains("already has run shard-") && rerun.err.contains("every shard writes its own --out"), "\(rerun.err)")

        // With --allow-incomplete the merged run keeps status "running"; an unsharded --resume of
        // the same inputs computes the rest and gives the unsharded run.
        let partial = try merge(["a2.h5"], ["--allow-incomplete"], out: "partial.h5")
        try #require(partial.status == 0, "\(partial.err)")
        #expect(partial.err.contains("incomplete: 2 result(s) missing (base/tiny-pronouns, base/tiny-ppl)"), "\(partial.err)")
        let open = try #require(try ResultsFile(opening: s.url("partial.h5")).latestUnfinishedRun())
        #expect(open.finished == ["scale0/tiny-pronouns", "scale0/tiny-ppl"] && open.shard == nil, "\(open.finished)")
        let resumed = try Self.backpack(s.eval(["scale0"], out: "partial.h5", ["--resume"]))
        try #require(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.err.components(separatedBy: " done in ").count - 1 == 2, "\(resumed.err)")
        let whole = try Self.backpack(s.eval(["scale0"], out: "whole.h5"))
        try #require(whole.status == 0, "\(whole.err)")
        Self.expectSame(try Self.runTree(s.url("partial.h5"), open.id), try Self.runTree(s.url("whole.h5"), try #require(try ResultsFile.runs(in: s.url("whole.h5")).first)),
                        "incomplete merge + resume vs unsharded")
    }

    @Test func aKilledShardResumes() throws {
        let s = try Scratch("shard-resume")
        defer { s.remove() }
        let edits = ["scale0", "nullspace"]
        // Shard 1/2 of 3 variants x 2 suites has 3 results; killed after the first is stored.
        let killed = try Self.backpack(s.eval(edits, out: "k1.h5", ["--shard", "1/2", "--kill-after-stored", "1"]))
        #expect(killed.signaled, "\(killed.err)")
        let open = try #require(try ResultsFile(opening: s.url("k1.h5")).latestUnfinishedRun())
        let first = try RunShard(index: 1, count: 2)
        #expect(open.finished.count == 1 && open.shard == first, "\(open.finished) \(String(describing: open.shard))")
        let wrong = try Self.backpack(s.eval(edits, out: "k1.h5", ["--shard", "2/2", "--resume"]))
        #expect(wrong.status != 0 && wrong.err.contains("the unfinished run \(open.id) is shard 1/2, this invocation has --shard 2/2"), "\(wrong.err)")
        let unsharded = try Self.backpack(s.eval(edits, out: "k1.h5", ["--resume"]))
        #expect(unsharded.status != 0 && unsharded.err.contains("is shard 1/2, this invocation has no --shard"), "\(unsharded.err)")
        let resumed = try Self.backpack(s.eval(edits, out: "k1.h5", ["--shard", "1/2", "--resume"]))
        try #require(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.err.contains("1 of 3 results already stored"), "\(resumed.err)")
        #expect(resumed.err.components(separatedBy: " done in ").count - 1 == 2, "\(resumed.err)")
        #expect(try ResultsFile.runs(in: s.url("k1.h5")) == [open.id])
        let second = try Self.backpack(s.eval(edits, out: "k2.h5", ["--shard", "2/2"]))
        try #require(second.status == 0, "\(second.err)")
        let merged = try Self.backpack(["merge", s.path("k1.h5"), s.path("k2.h5"), "--out", s.path("m.h5")])
        try #require(merged.status == 0, "\(merged.err)")
        let whole = try Self.backpack(s.eval(edits, out: "whole.h5"))
        try #require(whole.status == 0, "\(whole.err)")
        // Shard 2/2 holds scale0 on tiny-pronouns but base only on tiny-ppl: its summary table
        // matches cells by suite and variant, so scale0's bias is the unsharded run's.
        // The table has a block per suite: a row per variant, its first cell the value.
        func values(_ table: String, _ suite: String) -> [String: String] {
            let lines = table.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            guard let title = lines.firstIndex(where: { $0.hasPrefix(suite + "  ") || $0 == suite }),
                  let rule = lines[title...].firstIndex(where: { $0.hasPrefix("---") }) else { return [:] }
            var out: [String: String] = [:]
            for line in lines[(rule + 1)...] {
                if line.trimmingCharacters(in: .whitespaces).isEmpty { break }
                // Columns are two or more spaces apart (a cell with its interval has single spaces).
                let cells = line.components(separatedBy: "  ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                out[cells[0]] = cells.count > 1 ? cells[1] : ""
            }
            return out
        }
        let shardBias = values(second.out, "tiny-pronouns"), wholeBias = values(whole.out, "tiny-pronouns")
        #expect(!wholeBias.isEmpty && Set(shardBias.keys) == Set(wholeBias.keys), "shard 2/2:\n\(second.out)\nunsharded:\n\(whole.out)")
        #expect(shardBias["scale0"] == wholeBias["scale0"] && !(shardBias["scale0"] ?? "").isEmpty, "\(shardBias) vs \(wholeBias)")
        #expect(shardBias.values.contains("") && shardBias.allSatisfy { $0.value.isEmpty || $0.value == wholeBias[$0.key] },
                "shard 2/2:\n\(second.out)\nunsharded:\n\(whole.out)")
        Self.expectSame(try Self.runTree(s.url("m.h5"), open.id), try Self.runTree(s.url("whole.h5"), try #require(try ResultsFile.runs(in: s.url("whole.h5")).first)),
                        "killed + resumed shard merged vs unsharded")
    }
}
