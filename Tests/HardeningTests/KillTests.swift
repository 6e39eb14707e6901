import Foundation
import Testing
import TestSupport

/// SIGKILL during `backpack init` / `backpack edit`: the target is absent, the complete previous
/// version or the complete new one; inputs never change; leftovers are only `.NAME.tmp-*`.
@Suite(.serialized) struct KillTests {
    static let delays: [Double] = [0.001, 0.003, 0.01, 0.02, 0.04, 0.07, 0.1, 0.15, 0.25, 0.4]

    /// Checks one killed run and removes the leftovers it allowed. Returns what the target held.
    static func check(target: URL, previous: [String: String], new: [String: String], delay: Double, _ r: ChildResult,
                      hashes: (URL) throws -> [String: String] = treeHashes) throws -> String {
        let fm = FileManager.default
        let name = target.lastPathComponent
        var state = "absent"
        if fm.fileExists(atPath: target.path) {
            let h = try hashes(target)
            if h == previous { state = "previous" } else if h == new { state = "new" } else {
                state = "CORRUPT"
                Issue.record("after SIGKILL at \(delay) s the target is neither the previous nor the new version: \(h.keys.sorted())")
            }
        }
        for entry in try fm.contentsOfDirectory(atPath: target.deletingLastPathComponent().path) where entry != name {
            #expect(entry.hasPrefix(".\(name).tmp-"), "after SIGKILL at \(delay) s: unexpected leftover '\(entry)' (target \(state))")
            try? fm.removeItem(at: target.deletingLastPathComponent().appendingPathComponent(entry))
        }
        #expect(r.signal == SIGKILL || r.status == 0, "run ended otherwise: \(r)")
        return state
    }

    @Test func killDuringInit() throws {
        let root = try TestPaths.temporaryDirectory("kill-init")
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        let config = root.appendingPathComponent("medium.json")
        // Medium size: ~12M parameters, a write takes a noticeable fraction of a second.
        try Data(#"{"architectures":["BackpackGPT2LMHeadModel"],"model_type":"gpt2","n_embd":256,"n_layer":4,"n_head":4,"n_positions":128,"vocab_size":8000,"num_senses":4,"sense_intermediate_scale":4,"activation_function":"gelu_new"}"#.utf8).write(to: config)
        let configHash = try sha256File(config)
        let outDir = root.appendingPathComponent("out")
        try fm.createDirectory(at: outDir, withIntermediateDirectories: true)
        let target = outDir.appendingPathComponent("model")
        let ref = root.appendingPathComponent("ref-new")
        let full = try Child.backpack(["init", "--config", config.path, "--seed", "2", "--out", ref.path])
        #expect(full.status == 0, "\(full)")
        let prev = try Child.backpack(["init", "--config", config.path, "--seed", "1", "--out", target.path])
        #expect(prev.status == 0, "\(prev)")
        print("kill test: a full medium `backpack init` takes \(String(format: "%.2f", full.seconds)) s")
        let previous = try treeHashes(target), new = try treeHashes(ref)
        #expect(previous != new && !previous.isEmpty)
        var states: [String] = []
        // Scale the delays to the run time so that they cover the whole write.
        for d in Self.delays {
            let delay = d * max(1, full.seconds / 0.4)
            let r = try Child.backpack(["init", "--config", config.path, "--seed", "2", "--out", target.path], killAfter: delay)
            states.append(String(format: "%.3f s: ", delay) + (try Self.check(target: target, previous: previous, new: new, delay: delay, r)))
            #expect(try sha256File(config) == configHash, "the input config changed")
        }
        print("kill test (init): " + states.joined(separator: ", "))
        HostileCorpus.report("kill\tbackpack init (medium, \(String(format: "%.2f", full.seconds)) s)\t\(states.joined(separator: "; "))")
    }

    @Test func killDuringEdit() throws {
        let root = try TestPaths.temporaryDirectory("kill-edit")
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        let model = root.appendingPathComponent("model")
        try fm.createDirectory(at: model, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors"] {
            try fm.copyItem(at: TestPaths.tinyModel.appendingPathComponent(f), to: model.appendingPathComponent(f))
        }
        try fm.copyItem(at: TestPaths.toyTokenizer.appendingPathComponent("tokenizer.json"), to: model.appendingPathComponent("tokenizer.json"))
        let edits = TestPaths.repoRoot.appendingPathComponent("Tests/EditingTests/Edits")
        let editNew = edits.appendingPathComponent("scale0.yaml"), editOld = edits.appendingPathComponent("scale_half.yaml")
        let inputsBefore = try treeHashes(model)
        let editHashes = try [sha256File(editNew), sha256File(editOld)]
        let outDir = root.appendingPathComponent("out")
        try fm.createDirectory(at: outDir, withIntermediateDirectories: true)
        let target = outDir.appendingPathComponent("edited")
        let ref = root.appendingPathComponent("ref-new")
        let full = try Child.backpack(["edit", "--model", model.path, "--edit", editNew.path, "--out", ref.path])
        #expect(full.status == 0, "\(full)")
        let prev = try Child.backpack(["edit", "--model", model.path, "--edit", editOld.path, "--out", target.path])
        #expect(prev.status == 0, "\(prev)")
        // edit-manifest.json records the creation time: compared as "present and valid JSON".
        func stable(_ dir: URL) throws -> [String: String] {
            var h = try treeHashes(dir)
            if let m = h.removeValue(forKey: "/edit-manifest.json") {
                let data = try Data(contentsOf: dir.appendingPathComponent("edit-manifest.json"))
                h["/edit-manifest.json"] = (try? JSONSerialization.jsonObject(with: data)) != nil ? "valid JSON" : "BROKEN \(m)"
            }
            return h
        }
        let previous = try stable(target), new = try stable(ref)
        print("kill test: a full tiny `backpack edit` takes \(String(format: "%.2f", full.seconds)) s; files \(new.keys.sorted())")
        #expect(previous != new && !previous.isEmpty)
        var states: [String] = []
        for d in Self.delays {
            let delay = d * max(1, full.seconds / 0.4)
            let r = try Child.backpack(["edit", "--model", model.path, "--edit", editNew.path, "--out", target.path], killAfter: delay)
            states.append(String(format: "%.3f s: ", delay) + (try Self.check(target: target, previous: previous, new: new, delay: delay, r, hashes: stable)))
            #expect(try treeHashes(model) == inputsBefore, "an input model file changed")
            #expect(try [sha256File(editNew), sha256File(editOld)] == editHashes, "an edit file changed")
        }
        print("kill test (edit): " + states.joined(separator: ", "))
        HostileCorpus.report("kill\tbackpack edit (tiny, \(String(format: "%.2f", full.seconds)) s)\t\(states.joined(separator: "; "))")
    }

    /// `backpack eval --out results.h5` appends a run to an existing file: a kill at any point
    /// leaves the earlier runs intact (the file is the previous or the next complete version).
    @Test func killDuringEval() throws {
        let root = try TestPaths.temporaryDirectory("kill-eval")
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        let ppl = root.appendingPathComponent("ppl.yaml")
        try "suite: tiny-ppl\nversion: 1\nkind: perplexity\ntext: \"the man was with the car. When he said that the man was with the car\"\nmax_length: 8\nstride: 4\nprepend_eos: false\n"
            .write(to: ppl, atomically: true, encoding: .utf8)
        let pplHash = try sha256File(ppl)
        let outDir = root.appendingPathComponent("out")
        try fm.createDirectory(at: outDir, withIntermediateDirectories: true)
        let h5 = outDir.appendingPathComponent("results.h5")
        func eval(_ id: String, killAfter: Double? = nil) throws -> ChildResult {
            try Child.backpack(["eval", "--model", TestPaths.tinyModel.path, "--tokenizer", TestPaths.toyTokenizer.path,
                                "--suite", ppl.path, "--out", h5.path, "--run-id", id], killAfter: killAfter)
        }
        for id in ["run-a", "run-b"] {
            let r = try eval(id)
            try #require(r.status == 0, "\(r)")
        }
        let full = try eval("run-c")
        try #require(full.status == 0, "\(full)")
        var previous = try sha256File(h5)
        var runs = 3
        var states: [String] = []
        for (k, d) in Self.delays.enumerated() {
            let delay = d * max(1, full.seconds / 0.4)
            let r = try eval("kill-\(k)", killAfter: delay)
            #expect(r.signal == SIGKILL || r.status == 0, "\(r)")
            try #require(fm.fileExists(atPath: h5.path), "results.h5 vanished after SIGKILL at \(delay) s")
            let h = try sha256File(h5)
            let report = try Child.backpack(["report", h5.path, "--json"])
            #expect(report.status == 0, "results.h5 unreadable after SIGKILL at \(delay) s: \(report)")
            let json = try? JSONSerialization.jsonObject(with: Data(report.out.utf8)) as? [String: Any]
            let ids = json?["runs"] as? [String] ?? []
            #expect(["run-a", "run-b", "run-c"].allSatisfy(ids.contains), "earlier runs lost after SIGKILL at \(delay) s: \(ids)")
            let state: String
            if h == previous { state = "previous (\(ids.count) runs)"; #expect(ids.count == runs) }
            else { state = "next (\(ids.count) runs)"; #expect(ids.count == runs + 1 && ids.contains("kill-\(k)")); runs += 1; previous = h }
            states.append(String(format: "%.3f s: ", delay) + state)
            // The lock file beside the results file stays (removing it would race with a waiting writer);
            // so do the parts of a run killed after storing results (its stored results, `--resume` adds them).
            for entry in try fm.contentsOfDirectory(atPath: outDir.path) where entry != "results.h5" && entry != ".results.h5.lock" {
                #expect(entry.hasPrefix(".results.h5.tmp-") || entry == ".results.h5.parts", "after SIGKILL at \(delay) s: unexpected leftover '\(entry)'")
                try? fm.removeItem(at: outDir.appendingPathComponent(entry))
            }
            #expect(try sha256File(ppl) == pplHash)
        }
        print("kill test (eval): " + states.joined(separator: ", "))
        HostileCorpus.report("kill\tbackpack eval --out results.h5 (tiny, \(String(format: "%.2f", full.seconds)) s)\t\(states.joined(separator: "; "))")
    }
}
