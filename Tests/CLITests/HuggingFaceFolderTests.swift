import BackpackIO
import Foundation
import Testing
import TestSupport

/// What `backpack edit` writes for Hugging Face, checked without Python (Tools/hf-interop runs
/// transformers on the same folders): the base config's keys survive, auto_map names the shipped
/// modeling code, the overrides are declared with their SHA-256, the manifest has snake_case keys
/// and no absolute path, and the model card has the Hub's front matter.
@Suite struct HuggingFaceFolderTests {
    let scale0 = TestPaths.repoRoot.appendingPathComponent("Tests/EditingTests/Edits/scale0.yaml").path
    let codeDir = TestPaths.repoRoot.appendingPathComponent("Sources/BackpackEditing/HuggingFace")
    let ourAutoMap = ["AutoConfig": "configuration_backpack_gpt2.BackpackGPT2Config",
                      "AutoModelForCausalLM": "modeling_backpack_gpt2.BackpackGPT2LMHeadModel"]

    func json(_ url: URL) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        guard let dict = object as? [String: Any] else { throw Failure("\(url.path): not a JSON object") }
        return dict
    }

    struct Failure: Error, CustomStringConvertible { let description: String; init(_ d: String) { description = d } }

    /// The tiny fixture with the extra keys of a published config (a Hub auto_map, _name_or_path,
    /// nested unknown keys) and a model card naming a licence.
    func publishedLikeBase(in dir: URL) throws -> URL {
        let base = dir.appendingPathComponent("base")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: TestPaths.tinyModel.appendingPathComponent("model.safetensors"),
                                         to: base.appendingPathComponent("model.safetensors"))
        var config = try json(TestPaths.tinyModel.appendingPathComponent("config.json"))
        config["auto_map"] = ["AutoConfig": "stanfordnlp/backpack-gpt2--configuration_backpack_gpt2.BackpackGPT2Config",
                              "AutoModelForCausalLM": "stanfordnlp/backpack-gpt2--modeling_backpack_gpt2.BackpackGPT2LMHeadModel"]
        config["_name_or_path"] = "stanfordnlp/backpack-gpt2"
        config["task_specific_params"] = ["text-generation": ["do_sample": true, "max_length": 50]]
        config["x_extra"] = ["nested": [1, 2.5, NSNull(), "café"] as [Any]]
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted]).write(to: base.appendingPathComponent("config.json"))
        try Data("---\nlicense: apache-2.0\n---\n# base\n".utf8).write(to: base.appendingPathComponent("README.md"))
        return base
    }

    @Test func editedFolderIsAHuggingFaceFolderThatKeepsTheBaseConfig() throws {
        let dir = try TestPaths.temporaryDirectory("hf-folder")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try publishedLikeBase(in: dir)
        let vocab = dir.appendingPathComponent("vocab.yaml")
        try Data("""
            schema: backpack-edit/1
            interventions:
              - scope: vocabulary
                senses: [1]
                project_out: {direction: {embedding_difference: [{token: 383}, {token: 239}]}}

            """.utf8).write(to: vocab)
        let edited = dir.appendingPathComponent("edited")
        let r = try backpack(["edit", "--model", base.path, "--edit", scale0, "--edit", vocab.path, "--out", edited.path,
                              "--base-model-id", "example/tiny-backpack"])
        #expect(r.status == 0, "\(r.err)")

        // config.json: every base key with its value, except the two the edit must own
        let before = try json(base.appendingPathComponent("config.json"))
        let after = try json(edited.appendingPathComponent("config.json"))
        // compared as canonical JSON text (sorted keys), so nested values and numbers count exactly
        func canonical(_ value: Any?) throws -> String {
            guard let value else { return "<absent>" }
            return String(decoding: try JSONSerialization.data(withJSONObject: ["v": value], options: [.sortedKeys]), as: UTF8.self)
        }
        #expect(before.count == 33)
        for (key, value) in before where key != "auto_map" && key != "model_type" {
            #expect(try canonical(after[key]) == canonical(value), "config key \(key)")
        }
        #expect(after["auto_map"] as? [String: String] == ourAutoMap)
        #expect(after["model_type"] as? String == "backpack-gpt2")
        let edit = try #require(after["backpack_edit"] as? [String: Any])
        #expect(edit["base_auto_map"] as? [String: String] == before["auto_map"] as? [String: String])
        #expect(edit["base_model_type"] as? String == "gpt2")
        #expect(edit["tool_version"] as? String != nil)
        let overrides = edited.appendingPathComponent("sense_overrides.safetensors")
        #expect(edit["sense_overrides"] as? String == "sense_overrides.safetensors")
        #expect(edit["sense_overrides_sha256"] as? String == (try FileDigest.sha256(overrides)))

        // the shipped modeling code, byte for byte
        for name in ["configuration_backpack_gpt2.py", "modeling_backpack_gpt2.py"] {
            #expect(try Data(contentsOf: edited.appendingPathComponent(name)) == Data(contentsOf: codeDir.appendingPathComponent(name)), "\(name)")
        }
        for name in ["model.safetensors", "edit-manifest.json", "README.md"] {
            #expect(FileManager.default.fileExists(atPath: edited.appendingPathComponent(name).path), "\(name)")
        }

        // edit-manifest.json: snake_case keys, no absolute path anywhere
        var badKeys: [String] = [], absolute: [String] = []
        func walk(_ value: Any, _ path: String) {
            if let d = value as? [String: Any] {
                for (k, v) in d {
                    if k != k.lowercased() || k.contains("-") || k.contains(" ") { badKeys.append(path + "." + k) }
                    walk(v, path + "." + k)
                }
            } else if let a = value as? [Any] {
                for (i, v) in a.enumerated() { walk(v, "\(path)[\(i)]") }
            } else if let s = value as? String, s.hasPrefix("/") || s.contains(dir.path) {
                absolute.append(path)
            }
        }
        let manifest = try json(edited.appendingPathComponent("edit-manifest.json"))
        walk(manifest, "")
        #expect(badKeys.isEmpty, "\(badKeys)")
        #expect(absolute.isEmpty, "\(absolute)")
        let edits = try #require(manifest["edits"] as? [[String: Any]])
        #expect(edits.map { $0["file"] as? String } == ["Edits/scale0.yaml", "\(dir.lastPathComponent)/vocab.yaml"])
        #expect(edits.first?["sha256"] as? String == (try FileDigest.sha256(URL(fileURLWithPath: scale0))))
        let baseModel = try #require(manifest["base_model"] as? [String: Any])
        #expect(baseModel["directory"] as? String == "base")
        #expect((baseModel["weights"] as? [[String: String]])?.first?["sha256"] == (try FileDigest.sha256(base.appendingPathComponent("model.safetensors"))))

        // the model card: Hub front matter, the edit files verbatim
        let card = try String(contentsOf: edited.appendingPathComponent("README.md"), encoding: .utf8)
        let lines = card.components(separatedBy: "\n")
        #expect(lines.first == "---")
        let end = try #require(lines.dropFirst().firstIndex(of: "---"))
        let front = Array(lines[1..<end])
        #expect(front.contains("base_model: \"example/tiny-backpack\""), "\(front)")
        #expect(front.contains("license: \"apache-2.0\""), "\(front)")
        #expect(front.contains("library_name: transformers"))
        #expect(front.contains("tags:") && ["- backpack", "- backpack-edit", "- model-editing"].allSatisfy(front.contains), "\(front)")
        #expect(card.contains(try String(contentsOfFile: scale0, encoding: .utf8).trimmingCharacters(in: .newlines)))
    }

    /// The overrides the config declares are enforced by the toolkit's own loader too.
    @Test func declaredOverridesMissingOrAlteredAreRefused() throws {
        let dir = try TestPaths.temporaryDirectory("hf-overrides")
        defer { try? FileManager.default.removeItem(at: dir) }
        let edited = dir.appendingPathComponent("edited")
        #expect(try backpack(["edit", "--model", TestPaths.tinyModel.path, "--edit", scale0, "--out", edited.path]).status == 0)
        let overrides = edited.appendingPathComponent("sense_overrides.safetensors")
        var bytes = try Data(contentsOf: overrides)
        bytes[bytes.count - 1] ^= 1
        try bytes.write(to: overrides)
        let altered = try backpack(["forward", "--model", edited.path, "--ids", "73,1", "--out", dir.appendingPathComponent("a.safetensors").path])
        #expect(altered.status == 1)
        #expect(altered.err.contains("SHA-256"), "\(altered.err)")
        try FileManager.default.removeItem(at: overrides)
        let missing = try backpack(["forward", "--model", edited.path, "--ids", "73,1", "--out", dir.appendingPathComponent("m.safetensors").path])
        #expect(missing.status == 1)
        #expect(missing.err.contains("missing"), "\(missing.err)")
    }

    /// `--results FILE.h5` puts the latest run's before/after table into the model card.
    @Test func modelCardCarriesTheLatestEvaluationRun() throws {
        let dir = try TestPaths.temporaryDirectory("hf-card-results")
        defer { try? FileManager.default.removeItem(at: dir) }
        let results = dir.appendingPathComponent("results.h5")
        let edit = TestPaths.repoRoot.appendingPathComponent("Edits/remove-gender-sense.yaml").path
        for id in ["run-a", "run-b"] {
            let e = try backpack(["eval", "--suite", "pronoun-fit", "--edit", edit, "--out", results.path, "--run-id", id])
            #expect(e.status == 0, "\(e.err)")
        }
        let edited = dir.appendingPathComponent("edited")
        let r = try backpack(["edit", "--edit", edit, "--out", edited.path, "--results", results.path])
        #expect(r.status == 0, "\(r.err)")
        let card = try String(contentsOf: edited.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(card.contains("Run `run-b` (the latest) of `results.h5`"), "\(card)")
        #expect(card.contains("pronoun-fit") && card.contains("Δ remove-gender-sense"), "\(card)")
        #expect(!card.contains(dir.path))
        let noRuns = dir.appendingPathComponent("missing.h5")
        let bad = try backpack(["edit", "--edit", edit, "--out", dir.appendingPathComponent("x").path, "--results", noRuns.path])
        #expect(bad.status != 0)
        #expect(bad.err.contains("missing.h5"), "\(bad.err)")
    }
}
