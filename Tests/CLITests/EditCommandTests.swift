import BackpackCheckpoint
import BackpackIO
import Foundation
import Testing
import TestSupport

/// `backpack edit` end to end on the tiny fixture: the saved checkpoint reproduces the edit
/// applied on the fly, both match the reference's edited logits, and the input is untouched.
@Suite struct EditCommandTests {
    let tiny = TestPaths.tinyModel.path
    let scale0 = TestPaths.repoRoot.appendingPathComponent("Tests/EditingTests/Edits/scale0.yaml").path

    func hashes(_ dir: URL) throws -> [String: String] {
        var out: [String: String] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
            out[name] = try FileDigest.sha256(dir.appendingPathComponent(name))
        }
        return out
    }

    @Test func savedEditEqualsOnTheFlyEditAndTheReference() throws {
        let expected = try SafetensorsFile(url: TestPaths.tinyModel.appendingPathComponent("expected.safetensors"))
        let ids = try expected.ints("seq2_input_ids").map(String.init).joined(separator: ",")
        let dir = try TestPaths.temporaryDirectory("cli-edit")
        defer { try? FileManager.default.removeItem(at: dir) }
        let before = try hashes(TestPaths.tinyModel)
        let edited = dir.appendingPathComponent("edited")
        let e = try backpack(["edit", "--model", tiny, "--edit", scale0, "--out", edited.path])
        #expect(e.status == 0, "\(e.err)")
        for name in ["config.json", "model.safetensors", "sense_overrides.safetensors", "edit-manifest.json"] {
            #expect(FileManager.default.fileExists(atPath: edited.appendingPathComponent(name).path), "\(name)")
        }
        let saved = dir.appendingPathComponent("saved.safetensors"), live = dir.appendingPathComponent("live.safetensors")
        #expect(try backpack(["forward", "--model", edited.path, "--ids", ids, "--out", saved.path]).status == 0)
        #expect(try backpack(["forward", "--model", tiny, "--edit", scale0, "--ids", ids, "--out", live.path]).status == 0)
        let a = try SafetensorsFile(url: saved).floats("logits"), b = try SafetensorsFile(url: live).floats("logits")
        #expect(a == b)
        let reference = try expected.floats("scale0_seq2_logits")
        let diff = zip(a, reference).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
        print("backpack edit (scale0) saved checkpoint vs reference: max|d| logits \(diff) (tol 1e-4)")
        #expect(diff <= 1e-4)
        #expect(try hashes(TestPaths.tinyModel) == before)
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: edited.appendingPathComponent("edit-manifest.json"))) as? [String: Any]
        #expect(manifest?["edits"] != nil)
    }

    @Test func refusesToWriteIntoTheInput() throws {
        // A copy of the model, reached through a symbolic link: were the check to fail, only the
        // copy would be written to, never the repository's fixtures.
        let dir = try TestPaths.temporaryDirectory("cli-into-input")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("model"), link = dir.appendingPathComponent("link")
        try FileManager.default.copyItem(at: TestPaths.tinyModel, to: model)
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: model)
        let r = try backpack(["edit", "--model", model.path, "--edit", scale0, "--out", link.appendingPathComponent("edited").path])
        #expect(r.status == 1)
        #expect(r.err.contains("input"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: model.appendingPathComponent("edited").path))
    }

    @Test func badEditFileNamesLineAndColumn() throws {
        let dir = try TestPaths.temporaryDirectory("cli-bad-edit")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("bad.yaml")
        try Data("schema: backpack-edit/1\nname: bad\ninterventions:\n  - tokens: [73]\n    senses: [9]\n    scale: 0\n".utf8).write(to: file)
        let r = try backpack(["forward", "--model", tiny, "--edit", file.path, "--ids", "1,2", "--out", dir.appendingPathComponent("x.safetensors").path])
        #expect(r.status == 1)
        #expect(r.err.contains("bad.yaml:5:"), "\(r.err)")
        #expect(r.err.contains("sense 9"), "\(r.err)")
    }

    @Test func localizeRanksSensesOfTheDemoModel() throws {
        let r = try backpack(["localize", "--words", "nurse,teacher,mechanic", "--pair", "he,she", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let json = try JSONSerialization.jsonObject(with: Data(r.out.utf8))
        #expect(json is [String: Any])
    }
}

@Suite struct SensesEditTests {
    /// `senses --edit` shows each edited sense before and after; a removed sense says so.
    @Test func showsEditedSensesBeforeAndAfter() throws {
        let r = try backpack(["senses", "--edit", TestPaths.repoRoot.appendingPathComponent("Edits/remove-gender-sense.yaml").path,
                              "nurse", "--top", "3"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("' nurse' sense"))
        #expect(r.out.contains("before +"))
        #expect(r.out.contains("zero vector"))
    }
}
