@testable import BackpackEditing
import BackpackModel
import BackpackModelFolder
import Foundation
import Testing
import TestSupport

/// The write-time check of `EditedCheckpoint`: a folder that a loader could read while dropping
/// the edit is refused. Each case breaks one guarantee in a copy of a correctly written folder.
@Suite struct EditedCheckpointTests {
    func writeEdited(_ dir: URL) throws -> URL {
        let out = dir.appendingPathComponent("edited")
        let file = try Fixture.edit("scale0")
        let outcome = try Editor.apply([file], to: try Fixture.model(), tokenizer: nil)
        try EditedCheckpoint.write(outcome, files: [file], base: try ModelDirectory(TestPaths.tinyModel), to: out, toolVersion: "test")
        return out
    }

    func verify(_ dir: URL) throws {
        try EditedCheckpoint.verify(dir, expectedOverrides: 3, isBackpack: true, code: try HuggingFaceCode.files())
    }

    /// Rewrites config.json with `change` applied to its top-level object.
    func editConfig(_ dir: URL, _ change: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("config.json")
        guard var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] else {
            throw ModelError(file: url.path, reason: "not a JSON object")
        }
        change(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }

    @Test func writtenFolderPassesAndEachBrokenGuaranteeIsRefused() throws {
        let dir = try TestPaths.temporaryDirectory("edited-verify")
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try writeEdited(dir)
        try verify(good)

        var n = 0
        func broken(_ reason: String, _ breakIt: (URL) throws -> Void) throws {
            n += 1
            let copy = dir.appendingPathComponent("broken-\(n)")
            try FileManager.default.copyItem(at: good, to: copy)
            try breakIt(copy)
            #expect(throws: ModelError.self, "\(reason)") { try verify(copy) }
        }
        try broken("model_type a stock transformers type") { d in try editConfig(d) { $0["model_type"] = "gpt2" } }
        try broken("auto_map missing") { d in try editConfig(d) { $0["auto_map"] = nil } }
        try broken("auto_map pointing at the base's Hub code") { d in
            try editConfig(d) { $0["auto_map"] = ["AutoConfig": "configuration_backpack_gpt2.BackpackGPT2Config",
                                                  "AutoModelForCausalLM": "stanfordnlp/backpack-gpt2--modeling_backpack_gpt2.BackpackGPT2LMHeadModel"] }
        }
        try broken("modeling code not the shipped one") { d in
            try Data("# not the shipped code\n".utf8).write(to: d.appendingPathComponent("modeling_backpack_gpt2.py"))
        }
        try broken("overrides not declared") { d in try editConfig(d) { $0["backpack_edit"] = ["tool": "backpack-edit"] } }
        try broken("declared SHA-256 not the file's") { d in
            try editConfig(d) { c in
                var e = c["backpack_edit"] as? [String: Any] ?? [:]
                e["sense_overrides_sha256"] = String(repeating: "0", count: 64)
                c["backpack_edit"] = e
            }
        }
        try broken("overrides file missing") { d in try FileManager.default.removeItem(at: d.appendingPathComponent("sense_overrides.safetensors")) }
    }

    /// The base's members keep their order and values; numbers print as they read back.
    @Test func configTextKeepsTheBaseMembersInOrder() throws {
        let base = try EditedCheckpoint.readJSONObject(TestPaths.tinyModel.appendingPathComponent("config.json"))
        let text = EditedCheckpoint.configText(base: base, edit: .object([("tool", .string("backpack-edit"))]), isBackpack: true)
        #expect(try JSONSerialization.jsonObject(with: Data(text.utf8)) is [String: Any])
        // top-level keys are the lines indented by exactly two spaces
        let keys = text.split(separator: "\n").filter { $0.hasPrefix("  \"") }.map { String($0.dropFirst(3).prefix { $0 != "\"" }) }
        #expect(keys == base.map(\.0) + ["backpack_edit"])
        #expect(text.contains("\"layer_norm_epsilon\": 1e-05"), "\(text)")
        #expect(text.contains("\"n_inner\": null"))
    }

    @Test func namesWithoutAbsolutePaths() {
        #expect(EditedCheckpoint.relativeName("/work/x/Edits/remove-gender-sense.yaml") == "Edits/remove-gender-sense.yaml")
        #expect(EditedCheckpoint.inferredModelID(URL(fileURLWithPath: "/root/.cache/huggingface/hub/models--stanfordnlp--backpack-gpt2/snapshots/abc")) == "stanfordnlp/backpack-gpt2")
        #expect(EditedCheckpoint.inferredModelID(URL(fileURLWithPath: "/tmp/some/model")) == nil)
    }
}
