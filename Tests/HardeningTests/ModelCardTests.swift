import BackpackModelFolder
import BackpackYAML
import Foundation
import Testing
import TestSupport

/// Model cards come from the Hub: untrusted YAML. Their front matter is read through the YAML
/// layer's limits like every other YAML text, so an alias bomb is an error, not an OOM kill
/// (it used to grow `backpack edit` to 24 GB in 10 minutes).
@Suite(.timeLimit(.minutes(2))) struct ModelCardTests {
    /// 10 levels of 9 aliases each: 9^10 (3.5e9) leaves if expanded.
    static let aliasBombCard: String = {
        var lines = ["---", "license: apache-2.0", "l0: &l0 [x, x, x, x, x, x, x, x, x]"]
        for i in 1...9 { lines.append("l\(i): &l\(i) [" + Array(repeating: "*l\(i - 1)", count: 9).joined(separator: ", ") + "]") }
        return (lines + ["bomb: *l9", "---", "", "# A model", ""]).joined(separator: "\n")
    }()

    func demoCopy(card: String) throws -> (dir: URL, model: URL) {
        let dir = try TestPaths.temporaryDirectory("card")
        let model = dir.appendingPathComponent("model")
        try FileManager.default.copyItem(at: TestPaths.demoModel, to: model)
        let readme = model.appendingPathComponent(ModelFolder.cardFile)
        try? FileManager.default.removeItem(at: readme)
        try card.write(to: readme, atomically: true, encoding: .utf8)
        return (dir, model)
    }

    @Test func aliasBombCardIsRefusedInProcess() throws {
        let (dir, model) = try demoCopy(card: Self.aliasBombCard)
        defer { try? FileManager.default.removeItem(at: dir) }
        let folder = try ModelFolder(model)
        let start = Date()
        do {
            _ = try folder.cardFrontMatter()
            Issue.record("the alias-bomb model card was accepted")
        } catch let error as ModelError {
            print(String(format: "alias-bomb card refused in %.3f s: %@", Date().timeIntervalSince(start), error.description))
            #expect(error.description.contains("README.md"))
            #expect(error.description.contains("expands to more than \(YAMLLimits.standard.maxNodes) nodes"))
        }
    }

    @Test func aliasBombCardStopsEditWithBoundedMemory() throws {
        let (dir, model) = try demoCopy(card: Self.aliasBombCard)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("edited")
        let edit = TestPaths.repoRoot.appendingPathComponent("Edits/remove-gender-sense.yaml")
        let r = try Child.backpack(["edit", "--model", model.path, "--edit", edit.path, "--out", out.path])
        print("backpack edit with an alias-bomb card: \(r)")
        #expect(r.signal == nil, "the process was killed (hang guard, or the OOM killer): \(r)")
        #expect(r.status == 1)
        #expect(r.err.contains("README.md") && r.err.contains("expands to more than"))
        #expect(!FileManager.default.fileExists(atPath: out.path), "no output for a refused input")
        // The binary's own needs plus the demo model (3.2M parameters, a few copies), far from the
        // gigabytes an expanded tree takes.
        #expect(Child.rssIsSmall(r, extraMiB: 256), "peak RSS \(r.maxRSSKiB) KiB")
    }

    @Test func ordinaryCardKeepsItsLicence() throws {
        let card = "---\nlicense: apache-2.0\nbase_model: \"stanfordnlp/backpack-gpt2\"\ntags:\n- backpack\n---\n\n# Card\n"
        let (dir, model) = try demoCopy(card: card)
        defer { try? FileManager.default.removeItem(at: dir) }
        let front = try ModelFolder(model).cardFrontMatter()
        #expect(front["license"] == "apache-2.0")
        #expect(front["base_model"] == "stanfordnlp/backpack-gpt2")
        #expect(front["tags"] == nil, "nested values are left out")
    }

    @Test func deepAndHugeFrontMatter() throws {
        let deep = "---\nx: " + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "\n---\n"
        let (dir, model) = try demoCopy(card: deep)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: ModelError.self) { _ = try ModelFolder(model).cardFrontMatter() }
        #expect(throws: YAMLError.self) { _ = try YAMLReader.compose(String(repeating: "a: b\n", count: 1_000_000), file: "big.yaml") }
    }
}
