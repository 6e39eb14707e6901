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

    /// `edit --check` with an erase fits the erasers and prints each sense's rank and the share of
    /// variance removed (the numbers of Tools/leace's golden for this file), writing nothing.
    @Test func checkPrintsTheFittedErasers() throws {
        let dir = try TestPaths.temporaryDirectory("cli-erase-check")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("never-written")
        let edit = TestPaths.repoRoot.appendingPathComponent("Edits/leace-gender.yaml").path
        let r = try backpack(["edit", "--edit", edit, "--check", "--out", out.path])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("leace-gender.yaml #0 (erase-gender-localized-sense): erase, vocabulary scope"), "\(r.out)")
        #expect(r.out.contains("  sense 3: leace rank 1 on 35 vectors, 9.11% of their variance removed"), "\(r.out)")
        #expect(r.out.contains("skipped erase pair word \" spokeswoman\""), "\(r.out)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    /// A vocabulary-wide erase is folded into final_mlp.c_proj: the folder has no sense overrides,
    /// and `forward` on it gives the logits of the edit applied on the fly.
    @Test func vocabularyEraseFoldsIntoTheCheckpoint() throws {
        let dir = try TestPaths.temporaryDirectory("cli-erase-fold")
        defer { try? FileManager.default.removeItem(at: dir) }
        let edit = TestPaths.repoRoot.appendingPathComponent("Tests/Fixtures/leace/tiny-leace-vocabulary.yaml").path
        let edited = dir.appendingPathComponent("edited")
        let e = try backpack(["edit", "--model", tiny, "--edit", edit, "--out", edited.path])
        #expect(e.status == 0, "\(e.err)")
        #expect(e.out.contains("erase of sense(s) [1, 3] for every token, folded into final_mlp.c_proj"), "\(e.out)")
        #expect(!FileManager.default.fileExists(atPath: edited.appendingPathComponent("sense_overrides.safetensors").path))
        let ids = "383,17,73,259,421,239,5,11"
        let saved = dir.appendingPathComponent("saved.safetensors"), live = dir.appendingPathComponent("live.safetensors")
        let base = dir.appendingPathComponent("base.safetensors")
        #expect(try backpack(["forward", "--model", edited.path, "--ids", ids, "--out", saved.path]).status == 0)
        #expect(try backpack(["forward", "--model", tiny, "--edit", edit, "--ids", ids, "--out", live.path]).status == 0)
        #expect(try backpack(["forward", "--model", tiny, "--ids", ids, "--out", base.path]).status == 0)
        let a = try SafetensorsFile(url: saved).floats("logits"), b = try SafetensorsFile(url: live).floats("logits")
        let plain = try SafetensorsFile(url: base).floats("logits")
        #expect(a == b)
        #expect(zip(a, plain).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) } > 0.1)
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: edited.appendingPathComponent("edit-manifest.json"))) as? [String: Any]
        let record = (manifest?["interventions"] as? [[String: Any]])?.first
        #expect((record?["erasure"] as? [[String: Any]])?.map { $0["sense"] as? Int } == [1, 3])
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
