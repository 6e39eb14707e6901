import BackpackCheckpoint
import BackpackEditing
import BackpackModel
import BackpackResults
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Long runs that never lose work (issue 14): outputs checked before any work, numbers that
/// fit, two writers sharing one results file, a full disk. Every case goes through the CLI.
@Suite(.serialized) struct ReliabilityTests {
    static let ppl = "suite: tiny-ppl\nversion: 1\nkind: perplexity\ntext: \"the man was with the car. When he said that the man was with the car\"\nmax_length: 8\nstride: 4\nprepend_eos: false\n"
    static let pronouns = TinySuites.pronouns

    /// A scratch folder with the two suites.
    struct Scratch {
        let root: URL
        var ppl: URL { root.appendingPathComponent("ppl.yaml") }
        var pronouns: URL { root.appendingPathComponent("pronouns.yaml") }
        init(_ tag: String) throws {
            root = try TestPaths.temporaryDirectory(tag)
            try ReliabilityTests.ppl.write(to: ppl, atomically: true, encoding: .utf8)
            try ReliabilityTests.pronouns.write(to: pronouns, atomically: true, encoding: .utf8)
        }
        func url(_ name: String) -> URL { root.appendingPathComponent(name) }
        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    static func evalArgs(model: URL = TestPaths.tinyModel, suite: URL, out: String) -> [String] {
        ["eval", "--model", model.path, "--tokenizer", TestPaths.toyTokenizer.path, "--suite", suite.path, "--out", out]
    }

    /// Files in `dir` other than `keep` (leftovers of a failed write).
    static func leftovers(_ dir: URL, keep: Set<String>) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !keep.contains($0) }.sorted()
    }

    // MARK: 1. Outputs checked before any work

    /// Each writing command refuses an output that cannot be written, naming the path and the
    /// reason, before the model (or other input) is read: the same command with its inputs
    /// replaced by missing paths gives the same error about the output. Runs as root, where permission bits do
    /// not stop writes: the unwritable cases are a parent that is a regular file and /proc
    /// (which refuses new files even to root).
    @Test func outputsAreCheckedFirst() throws {
        let s = try Scratch("outcheck")
        defer { s.remove() }
        let fm = FileManager.default
        let dirOut = s.url("results-dir")
        try fm.createDirectory(at: dirOut, withIntermediateDirectories: true)
        let plainFile = s.url("plain.txt")
        try Data("not a folder\n".utf8).write(to: plainFile)
        let notHDF5 = s.url("notes.h5")
        try Data("these are my notes, not HDF5\n".utf8).write(to: notHDF5)
        let notesHash = try sha256File(notHDF5)
        // A real results file to report on.
        let good = s.url("good.h5")
        let made = try Child.backpack(Self.evalArgs(suite: s.ppl, out: good.path))
        try #require(made.status == 0, "\(made)")
        let edit = TestPaths.repoRoot.appendingPathComponent("Tests/EditingTests/Edits/scale0.yaml").path
        let tiny = ["--model", TestPaths.tinyModel.path, "--tokenizer", TestPaths.toyTokenizer.path]

        let cases: [(label: String, args: [String], path: String, reason: String)] = [
            ("eval --out DIR/", Self.evalArgs(suite: s.pronouns, out: dirOut.path + "/"), dirOut.path, "is a directory"),
            ("eval --out FILE/x.h5", Self.evalArgs(suite: s.pronouns, out: plainFile.path + "/x.h5"), plainFile.path, "is not a directory"),
            ("eval --out /proc/x.h5", Self.evalArgs(suite: s.pronouns, out: "/proc/backpack-reliability.h5"), "/proc", "cannot create files"),
            ("eval --out NOT-HDF5", Self.evalArgs(suite: s.pronouns, out: notHDF5.path), notHDF5.path, "not a backpack results file"),
            ("eval --out missing/x.h5", Self.evalArgs(suite: s.pronouns, out: s.url("missing/x.h5").path), s.url("missing").path, "does not exist"),
            ("forward --out DIR", ["forward"] + tiny + ["--ids", "1,2,3", "--out", dirOut.path], dirOut.path, "is a directory"),
            ("forward --out FILE/x", ["forward"] + tiny + ["--ids", "1,2,3", "--out", plainFile.path + "/x.safetensors"], plainFile.path, "is not a directory"),
            ("report --html DIR", ["report", good.path, "--html", dirOut.path], dirOut.path, "is a directory"),
            ("report --html /proc/x", ["report", good.path, "--html", "/proc/backpack-reliability.html"], "/proc", "cannot create files"),
            ("edit --out FILE/x", ["edit"] + tiny + ["--edit", edit, "--out", plainFile.path + "/edited"], plainFile.path, "is not a directory"),
            ("edit --out FILE", ["edit"] + tiny + ["--edit", edit, "--out", plainFile.path], plainFile.path, "is not a directory"),
            ("init --out FILE/x", ["init", "--config", TestPaths.tinyModel.appendingPathComponent("config.json").path, "--out", plainFile.path + "/m"], plainFile.path, "is not a directory"),
            ("init --out /proc/x", ["init", "--config", TestPaths.tinyModel.appendingPathComponent("config.json").path, "--out", "/proc/backpack-reliability-model"], "/proc", "cannot create files"),
        ]
        // Inputs replaced by paths that do not exist: an input read before the output check
        // would be the error instead.
        let missing = s.url("missing-input").path
        let inputs = [TestPaths.tinyModel.path: missing + "/model", good.path: missing + "/good.h5",
                      TestPaths.tinyModel.appendingPathComponent("config.json").path: missing + "/config.json"]
        for c in cases {
            let r = try Child.backpack(c.args)
            let first = r.err.split(separator: "\n").first.map(String.init) ?? ""
            print("output check '\(c.label)': status \(r.status.map(String.init) ?? "-"), \(String(format: "%.2f", r.seconds)) s: \(first)")
            HostileCorpus.report("output\t\(c.label)\t\(first.replacingOccurrences(of: s.root.path, with: "TMP"))")
            #expect(r.status == 1, "\(c.label): \(r)")
            #expect(r.err.contains(c.path) && r.err.contains(c.reason), "\(c.label): expected '\(c.reason)' naming \(c.path): \(r)")
            let blind = try Child.backpack(c.args.map { inputs[$0] ?? $0 })
            #expect(blind.status == 1 && blind.err.contains(c.path) && blind.err.contains(c.reason) && !blind.err.contains(missing),
                    "\(c.label) with missing inputs: the output must be checked before any input is read: \(blind)")
        }
        #expect(try sha256File(notHDF5) == notesHash, "the file that is not HDF5 was changed")
        #expect(try Self.leftovers(dirOut, keep: []).isEmpty)
    }

    // MARK: 2. Numbers that fit

    @Test func floatOverflowInAnEditFile() throws {
        let s = try Scratch("overflow")
        defer { s.remove() }
        let text = "schema: backpack-edit/1\nname: huge\ninterventions:\n  - tokens: [73]\n    senses: [3]\n    scale: 1e39\n"
        let file = s.url("huge.yaml")
        try text.write(to: file, atomically: true, encoding: .utf8)
        #expect {
            _ = try EditFile.parse(text, url: file)
        } throws: { error in
            "\(error)".contains("huge.yaml:6:12") && "\(error)".contains("32-bit float")
        }
        let r = try Child.backpack(["edit", "--model", TestPaths.tinyModel.path, "--edit", file.path, "--check", "--out", s.url("x").path])
        HostileCorpus.report("number\tedit file `scale: 1e39`\t\((r.err.split(separator: "\n").first.map(String.init) ?? "").replacingOccurrences(of: s.root.path, with: "TMP"))")
        #expect(r.status == 1 && r.err.contains("huge.yaml:6:12") && r.err.contains("does not fit"), "\(r)")
    }

    /// The tiny model with a NaN in the final layer norm: every logit is NaN.
    static func nanModel(in root: URL) throws -> URL {
        let dir = root.appendingPathComponent("nan-model")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: TestPaths.tinyModel.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        var tensors = try ModelDirectory(TestPaths.tinyModel).parameters().tensors()
        let i = try #require(tensors.firstIndex { $0.name.hasSuffix("ln_f.weight") })
        tensors[i].values[0] = .nan
        try SafetensorsWriter.write(tensors, metadata: ["format": "pt"], to: dir.appendingPathComponent("model.safetensors"))
        return dir
    }

    @Test func nonFiniteResultsAreRefused() throws {
        let s = try Scratch("nan")
        defer { s.remove() }
        let model = try Self.nanModel(in: s.root)
        let h5 = s.url("results.h5")
        let r = try Child.backpack(Self.evalArgs(model: model, suite: s.ppl, out: h5.path))
        let line = r.err.split(separator: "\n").last.map(String.init) ?? ""
        HostileCorpus.report("number\teval of a model with a NaN weight\t\(line.replacingOccurrences(of: s.root.path, with: "TMP"))")
        #expect(r.status == 1, "\(r)")
        #expect(r.err.contains("base") && r.err.contains("tiny-ppl") && r.err.contains("item 0") && r.err.contains("--allow-nonfinite"), "\(r)")
        #expect(!FileManager.default.fileExists(atPath: h5.path), "a run with NaN was stored")
        let allowed = try Child.backpack(Self.evalArgs(model: model, suite: s.ppl, out: h5.path) + ["--allow-nonfinite"])
        #expect(allowed.status == 0, "\(allowed)")
        #expect(try ResultsFile.runs(in: h5).count == 1)

        let out = s.url("fwd.safetensors")
        let f = try Child.backpack(["forward", "--model", model.path, "--tokenizer", TestPaths.toyTokenizer.path, "--ids", "1,2,3", "--out", out.path])
        HostileCorpus.report("number\tforward of a model with a NaN weight\t\((f.err.split(separator: "\n").last.map(String.init) ?? "").replacingOccurrences(of: s.root.path, with: "TMP"))")
        #expect(f.status == 1 && f.err.contains("logits") && f.err.contains("--allow-nonfinite"), "\(f)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
        let fa = try Child.backpack(["forward", "--model", model.path, "--ids", "1,2,3", "--out", out.path, "--allow-nonfinite"])
        #expect(fa.status == 0 && FileManager.default.fileExists(atPath: out.path), "\(fa)")
    }

    // MARK: 3. Writers share a file

    /// Starts the processes together and waits for all of them.
    static func together(_ runs: [[String]]) throws -> [(status: Int32, err: String)] {
        let processes: [(Process, Pipe)] = runs.map { args in
            let p = Process()
            p.executableURL = TestPaths.backpackBinary
            p.arguments = args
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            return (p, err)
        }
        for (p, _) in processes { try p.run() }
        return processes.map { p, pipe in
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: data, as: UTF8.self))
        }
    }

    /// Two `eval` processes started together on one existing results file: both runs land.
    /// The file is made large (64 MiB of earlier data) so that copying and fsyncing it takes long
    /// enough for the two appends to overlap; without the lock the later rename drops a run.
    @Test func twoWritersBothLand() throws {
        let s = try Scratch("writers")
        defer { s.remove() }
        let h5 = s.url("results.h5")
        try ResultsFile.append(to: h5, runID: "earlier") { run in
            let g = try run.createGroup("base").createGroup("ballast")
            try g.write("values", doubles: (0..<(8 << 20)).map { Double($0) })
        }
        for round in 0..<3 {
            let ids = ["a\(round)", "b\(round)"]
            let results = try Self.together(ids.map { Self.evalArgs(suite: s.pronouns, out: h5.path) + ["--run-id", $0] })
            for (id, r) in zip(ids, results) { #expect(r.status == 0, "\(id): \(r.err)") }
            let runs = try ResultsFile.runs(in: h5)
            #expect(ids.allSatisfy(runs.contains), "round \(round): runs in the file: \(runs)")
        }
        #expect(try ResultsFile.runs(in: h5).count == 7)
        #expect(try Self.leftovers(s.root, keep: ["results.h5", ".results.h5.lock", "ppl.yaml", "pronouns.yaml"]).isEmpty)
    }

    /// Another process holds the lock: eval says so once and gives up after --lock-timeout.
    @Test func lockTimeout() throws {
        let s = try Scratch("lock")
        defer { s.remove() }
        let h5 = s.url("results.h5")
        let lock = s.url(".results.h5.lock")
        let fd = open(lock.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        try #require(fd >= 0)
        defer { close(fd) }
        try #require(flock(fd, LOCK_EX) == 0)
        let r = try Child.backpack(Self.evalArgs(suite: s.ppl, out: h5.path) + ["--lock-timeout", "1"])
        HostileCorpus.report("lock\teval while another process holds the lock (--lock-timeout 1)\t\(r.err.split(separator: "\n").filter { $0.contains("lock") }.joined(separator: " / ").replacingOccurrences(of: s.root.path, with: "TMP"))")
        #expect(r.status == 1, "\(r)")
        #expect(r.err.components(separatedBy: "waiting for the lock on \(h5.path) held by another backpack process").count == 2, "\(r)")
        #expect(r.err.contains("timed out") && r.err.contains("--lock-timeout"), "\(r)")
        #expect(!FileManager.default.fileExists(atPath: h5.path))
    }

    // MARK: 4. A full disk

    /// Runs backpack with RLIMIT_FSIZE = `bytes` and SIGXFSZ ignored (set by a small python3
    /// before exec), so that a write past the limit fails with EFBIG as on a full disk.
    static func withFileSizeLimit(_ bytes: Int, _ arguments: [String]) throws -> ChildResult {
        let python = try #require(Child.pythonPath, "python3 is needed to set the file size limit")
        let script = """
            import os, resource, signal, sys
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            n = int(sys.argv[1])
            resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))
            os.execv(sys.argv[2], sys.argv[2:])
            """
        return try Child.run(python, ["-c", script, String(bytes), TestPaths.backpackBinary.path] + arguments)
    }

    static func checkFullDisk(_ label: String, _ r: ChildResult, target: URL, previous: [String: String], dir: URL, keep: Set<String>,
                              hashes: (URL) throws -> [String: String]) throws {
        let line = r.err.split(separator: "\n").last.map(String.init) ?? ""
        print("full disk '\(label)': \(line)")
        HostileCorpus.report("disk\t\(label)\t\(line.replacingOccurrences(of: dir.path, with: "TMP"))")
        #expect(r.status == 1 && r.signal == nil, "\(label): \(r)")
        #expect(r.err.contains(target.path) && r.err.contains("file size limit"), "\(label): \(r)")
        #expect(try hashes(target) == previous, "\(label): the previous output changed")
        let left = try Self.leftovers(dir, keep: keep)
        #expect(left.isEmpty, "\(label): leftovers \(left)")
    }

    @Test func fullDiskResults() throws {
        let s = try Scratch("disk-results")
        defer { s.remove() }
        let out = s.url("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let h5 = out.appendingPathComponent("results.h5")
        let first = try Child.backpack(Self.evalArgs(suite: s.pronouns, out: h5.path))
        try #require(first.status == 0, "\(first)")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: h5.path)[.size] as? Int)
        let previous = ["": try sha256File(h5)]
        let r = try Self.withFileSizeLimit(size + 512, Self.evalArgs(suite: s.pronouns, out: h5.path))
        try Self.checkFullDisk("eval --out results.h5", r, target: h5, previous: previous, dir: out,
                               keep: ["results.h5", ".results.h5.lock"]) { ["": try sha256File($0)] }
        #expect(try ResultsFile.runs(in: h5).count == 1)
    }

    @Test func fullDiskEdit() throws {
        let s = try Scratch("disk-edit")
        defer { s.remove() }
        let out = s.url("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let target = out.appendingPathComponent("edited")
        let edits = TestPaths.repoRoot.appendingPathComponent("Tests/EditingTests/Edits")
        let args = ["edit", "--model", TestPaths.tinyModel.path, "--tokenizer", TestPaths.toyTokenizer.path, "--out", target.path, "--edit"]
        let first = try Child.backpack(args + [edits.appendingPathComponent("scale_half.yaml").path])
        try #require(first.status == 0, "\(first)")
        let previous = try treeHashes(target)
        // Room for the small files, not for model.safetensors (about 1 MB).
        let r = try Self.withFileSizeLimit(256 << 10, args + [edits.appendingPathComponent("scale0.yaml").path])
        try Self.checkFullDisk("edit --out DIR", r, target: target, previous: previous, dir: out, keep: ["edited"], hashes: treeHashes)
    }

    @Test func fullDiskForward() throws {
        let s = try Scratch("disk-forward")
        defer { s.remove() }
        let out = s.url("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let target = out.appendingPathComponent("fwd.safetensors")
        let args = ["forward", "--model", TestPaths.tinyModel.path, "--tokenizer", TestPaths.toyTokenizer.path, "--out", target.path, "--ids"]
        let first = try Child.backpack(args + ["1,2"])
        try #require(first.status == 0, "\(first)")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: target.path)[.size] as? Int)
        let previous = ["": try sha256File(target)]
        let r = try Self.withFileSizeLimit(size, args + [(1...40).map(String.init).joined(separator: ",")])
        try Self.checkFullDisk("forward --out FILE", r, target: target, previous: previous, dir: out, keep: ["fwd.safetensors"]) { ["": try sha256File($0)] }
    }
}

// MARK: 5. Resume

/// `backpack eval --resume`: a run killed at several points continues where it stopped, computes
/// only the missing (variant, suite) pairs, and ends equal to an uninterrupted run.
@Suite(.serialized) struct ResumeTests {
    static let edit = TestPaths.repoRoot.appendingPathComponent("Tests/EditingTests/Edits/scale0.yaml").path

    static func args(_ s: ReliabilityTests.Scratch, out: URL) -> [String] {
        ["eval", "--model", TestPaths.tinyModel.path, "--tokenizer", TestPaths.toyTokenizer.path,
         "--suite", s.pronouns.path, "--suite", s.ppl.path, "--edit", edit, "--out", out.path]
    }

    /// Where a resumed run may differ from an uninterrupted one: a resumed run that skips a whole
    /// suite fills the sense-vector cache in another order, which moves floats by rounding
    /// (README, docs/SHARDING.md: at most 1e-6 of each dataset's largest value; 1e-8 measured).
    /// Returns the differences beyond that; strings and integers must be equal.
    static func beyondBound(_ url: URL, _ id: String, _ ref: URL, _ refID: String) throws -> [String] {
        func numbers(_ u: URL, _ i: String) throws -> [String: [Double]] {
            var out: [String: [Double]] = [:]
            for v in try ResultsFile(opening: u).record(i).variants {
                for s in v.suites {
                    for (k, value) in s.attributes { if case .double(let d) = value { out["\(v.variant)/\(s.suiteName) @\(k)"] = [d] } }
                    for (k, values) in s.datasets { if case .doubles(let d) = values { out["\(v.variant)/\(s.suiteName) \(k)"] = d } }
                }
            }
            return out
        }
        let a = try numbers(url, id), b = try numbers(ref, refID)
        var bad: [String] = []
        if Set(a.keys) != Set(b.keys) { bad.append("different fields: \(Set(a.keys).symmetricDifference(Set(b.keys)).sorted())") }
        for (key, x) in a {
            guard let y = b[key], x.count == y.count else { bad.append("\(key): lengths"); continue }
            let scale = y.filter(\.isFinite).map(abs).max() ?? 0
            for (p, q) in zip(x, y) where !(p == q || (p.isNaN && q.isNaN) || abs(p - q) <= 1e-6 * scale) { bad.append("\(key): \(p) vs \(q)"); break }
        }
        return bad
    }

    /// (variant/suite) -> attributes and datasets, for comparing runs.
    static func contents(_ url: URL, _ id: String) throws -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        for v in try ResultsFile(opening: url).record(id).variants {
            for s in v.suites {
                var m: [String: String] = [:]
                for (k, value) in s.attributes { m["attr " + k] = "\(value)" }
                for (k, values) in s.datasets { m["data " + k] = "\(values)" }
                out[v.variant + "/" + s.suiteName] = m
            }
        }
        return out
    }

    @Test func killedRunsResumeToTheSameResults() throws {
        let s = try ReliabilityTests.Scratch("resume")
        defer { s.remove() }
        let ref = s.url("ref.h5")
        let full = try Child.backpack(Self.args(s, out: ref))
        try #require(full.status == 0, "\(full)")
        let refID = try #require(try ResultsFile.runs(in: ref).first)
        let expected = try Self.contents(ref, refID)
        #expect(expected.count == 4, "\(expected.keys.sorted())")
        var states: [String] = []
        var partial = 0
        // Deterministic kills right after the N-th stored result (a hidden fault-injection option):
        // resuming computes exactly the 4 - N missing results and gives the uninterrupted run.
        for n in 1...3 {
            let h5 = s.url("after-\(n).h5")
            let killed = try Child.backpack(Self.args(s, out: h5) + ["--kill-after-stored", String(n)])
            #expect(killed.signal == SIGKILL, "\(killed)")
            let open = try #require(try ResultsFile(opening: h5).latestUnfinishedRun(), "kill after \(n): no unfinished run")
            #expect(open.finished.count == n, "kill after \(n): \(open.finished.count) stored")
            // The report says the run is unfinished before anyone reads its numbers as final.
            let report = try Child.backpack(["report", h5.path])
            #expect(report.status == 0 && report.out.contains("status: running: unfinished, \(n) result(s) stored"), "\(report)")
            let resumed = try Child.backpack(Self.args(s, out: h5) + ["--resume"])
            try #require(resumed.status == 0, "\(resumed)")
            let computed = resumed.err.components(separatedBy: " done in ").count - 1
            let skipped = resumed.err.components(separatedBy: "already stored, not recomputed").count - 1
            #expect(computed == 4 - n && skipped == n, "kill after \(n): computed \(computed), skipped \(skipped): \(resumed.err)")
            let id = try #require(try ResultsFile.runs(in: h5).first)
            #expect(try Self.contents(h5, id).keys == expected.keys)
            let beyond = try Self.beyondBound(h5, id, ref, refID)
            #expect(beyond.isEmpty, "kill after \(n): the resumed run differs from an uninterrupted one beyond the bound: \(beyond)")
            states.append("killed after \(n) stored: resumed, \(computed) computed")
            partial += 1
        }
        // Kills at times: loading takes most of the first half of the run, the delays cover the second half.
        for k in 0..<10 {
            let h5 = s.url("killed-\(k).h5")
            let delay = full.seconds * (0.45 + 0.055 * Double(k))
            let killed = try Child.backpack(Self.args(s, out: h5), killAfter: delay)
            #expect(killed.signal == SIGKILL || killed.status == 0, "\(killed)")
            var stored = 0
            var state = "no file"
            if FileManager.default.fileExists(atPath: h5.path) {
                let file = try ResultsFile(opening: h5)
                if let open = try file.latestUnfinishedRun() {
                    stored = open.finished.count
                    state = "running, \(stored) of 4 stored"
                    if stored > 0 && stored < 4 { partial += 1 }
                } else {
                    state = "complete"
                }
            }
            if state == "complete" { states.append(String(format: "%.3f s: ", delay) + state); continue }
            let resumed = try Child.backpack(Self.args(s, out: h5) + (state == "no file" ? [] : ["--resume"]))
            try #require(resumed.status == 0, "after \(state): \(resumed)")
            let computed = resumed.err.components(separatedBy: " done in ").count - 1
            let skipped = resumed.err.components(separatedBy: "already stored, not recomputed").count - 1
            #expect(computed == 4 - stored && skipped == stored, "after \(state): computed \(computed), skipped \(skipped): \(resumed.err)")
            let ids = try ResultsFile.runs(in: h5)
            #expect(ids.count == 1, "\(ids)")
            if let id = ids.first {
                #expect(try ResultsFile(opening: h5).latestUnfinishedRun() == nil, "the resumed run is not marked complete")
                let beyond = try Self.beyondBound(h5, id, ref, refID)
                #expect(try Self.contents(h5, id).keys == expected.keys && beyond.isEmpty, "after \(state): the resumed run differs from an uninterrupted one beyond the bound: \(beyond)")
            }
            states.append(String(format: "%.3f s: ", delay) + state + " -> resumed (\(computed) computed)")
        }
        print("resume test: " + states.joined(separator: ", "))
        HostileCorpus.report("kill\tbackpack eval, then eval --resume (tiny, 2 variants x 2 suites, \(String(format: "%.2f", full.seconds)) s)\t\(states.joined(separator: "; "))")
        #expect(partial > 0, "no kill landed between two stored results: \(states)")
    }

    /// A stored result costs its own size: the results file is not rewritten per result (the run
    /// is begun in it, each result is a part file beside it, and the parts are added when the run
    /// finishes). Readers of an unfinished run see the parts; the finished file has no parts left.
    @Test func storedResultsArePartsUntilTheRunFinishes() throws {
        let s = try ReliabilityTests.Scratch("resume-parts")
        defer { s.remove() }
        let h5 = s.url("results.h5")
        let killed = try Child.backpack(Self.args(s, out: h5) + ["--kill-after-stored", "3"])
        #expect(killed.signal == SIGKILL, "\(killed)")
        let file = try ResultsFile(opening: h5)
        let id = try #require(try file.runs().first)
        // In the HDF5 file: the begun run, no suite group yet.
        #expect(try file.run(id).groupNames().allSatisfy { try file.run(id).group($0).groupNames().isEmpty })
        let parts = try FileManager.default.contentsOfDirectory(atPath: ResultsFile.partsDirectory(for: h5).appendingPathComponent(id).path)
        #expect(parts.filter { $0.hasSuffix(".part") }.count == 3, "\(parts)")
        #expect(try file.record(id).variants.map(\.suites.count).reduce(0, +) == 3)
        #expect(try file.latestUnfinishedRun()?.finished.count == 3)
        try file.file.close()
        let resumed = try Child.backpack(Self.args(s, out: h5) + ["--resume"])
        try #require(resumed.status == 0, "\(resumed)")
        let done = try ResultsFile(opening: h5)
        #expect(try done.run(id).groupNames().map { try done.run(id).group($0).groupNames().count } == [2, 2])
        #expect(!FileManager.default.fileExists(atPath: ResultsFile.partsDirectory(for: h5).path), "parts left after the run finished")
    }

    @Test func resumeRefusesOtherInputs() throws {
        let s = try ReliabilityTests.Scratch("resume-other")
        defer { s.remove() }
        let h5 = s.url("results.h5")
        let plan = RunPlan(modelSHA256: String(repeating: "0", count: 64), variants: [("base", "", "")],
                           suites: [("tiny-pronouns", "1", String(repeating: "1", count: 64))])
        try ResultsFile.beginRun(plan, provenance: RunProvenance(toolVersion: "test", gitCommit: "", modelPath: "elsewhere", modelSHA256: plan.modelSHA256),
                                 commandLine: "test", to: h5, runID: "other")
        let r = try Child.backpack(ReliabilityTests.evalArgs(suite: s.pronouns, out: h5.path) + ["--resume"])
        HostileCorpus.report("lock\teval --resume of a run made from other inputs\t\((r.err.split(separator: "\n").last.map(String.init) ?? "").replacingOccurrences(of: s.root.path, with: "TMP"))")
        #expect(r.status == 1 && r.err.contains("run other was started with other inputs") && r.err.contains("model 0000"), "\(r)")
        let none = s.url("none.h5")
        let n = try Child.backpack(ReliabilityTests.evalArgs(suite: s.pronouns, out: none.path) + ["--resume"])
        #expect(n.status == 1 && n.err.contains("no unfinished run"), "\(n)")
    }

    /// The plan holds the SHA-256 of every data file a suite reads, not only of the suite file:
    /// a corpus changed after the kill is named, and the run is not continued on other data.
    @Test func resumeRefusesChangedDataFiles() throws {
        let s = try ReliabilityTests.Scratch("resume-data")
        defer { s.remove() }
        let corpus = s.url("corpus.txt"), suite = s.url("file-ppl.yaml"), h5 = s.url("results.h5")
        try "the man was with the car. When he said that the man was with the car".write(to: corpus, atomically: true, encoding: .utf8)
        try "suite: file-ppl\nversion: 1\nkind: perplexity\npath: corpus.txt\nmax_length: 8\nstride: 4\nprepend_eos: false\n"
            .write(to: suite, atomically: true, encoding: .utf8)
        let args = ReliabilityTests.evalArgs(suite: suite, out: h5.path) + ["--edit", ResumeTests.edit]
        let killed = try Child.backpack(args + ["--kill-after-stored", "1"])
        #expect(killed.signal == SIGKILL, "\(killed)")
        let open = try #require(try ResultsFile(opening: h5).latestUnfinishedRun())
        let digest = try sha256File(corpus)
        #expect(open.plan.contains("data file-ppl corpus.txt \(digest)"), "\(open.plan)")
        try "the man was with the car. When she said that the man was with the car".write(to: corpus, atomically: true, encoding: .utf8)
        let refused = try Child.backpack(args + ["--resume"])
        #expect(refused.status == 1 && refused.err.contains("run \(open.id) was started with other inputs")
                && refused.err.contains("data file-ppl corpus.txt \(digest)"), "\(refused)")
        #expect(try ResultsFile(opening: h5).latestUnfinishedRun()?.finished == open.finished, "a refused resume changed the run")
    }
}
