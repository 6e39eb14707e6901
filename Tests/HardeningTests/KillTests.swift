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
}
