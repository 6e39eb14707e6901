import Foundation
import Testing
import TestSupport

/// One name per concept across commands (--text, --run, --words) with the old spellings as hidden
/// aliases, the defaults that spare flags (eval's --out, edit --check without --out), what each
/// --edit help says, and `backpack list`.
@Suite struct CommandLineTests {
    let tiny = TestPaths.tinyModel.path
    let toy = TestPaths.toyTokenizer.path

    @Test func newSpellingsAndTheirHiddenAliasesGiveTheSameOutput() throws {
        let pairs: [([String], [String])] = [
            (["tokenize", "--model", tiny, "--tokenizer", toy, "--text", "the cat"],
             ["tokenize", "--model", tiny, "--tokenizer", toy, "the cat"]),
            (["generate", "--model", tiny, "--tokenizer", toy, "--text", "the", "--max-tokens", "4", "--seed", "1"],
             ["generate", "--model", tiny, "--tokenizer", toy, "--prompt", "the", "--max-tokens", "4", "--seed", "1"]),
            (["senses", "--model", tiny, "--tokenizer", toy, "--no-space", "--words", "a", "--top", "2"],
             ["senses", "--model", tiny, "--tokenizer", toy, "--no-space", "a", "--top", "2"]),
        ]
        for (new, old) in pairs {
            let a = try backpack(new), b = try backpack(old)
            #expect(a.status == 0 && b.status == 0, "\(new[0]): \(a.err)\(b.err)")
            #expect(!a.out.isEmpty && a.out == b.out, "\(new[0]):\n\(a.out)\n---\n\(b.out)")
        }
        // Both spellings at once is an error naming the new one.
        let twice = try backpack(["generate", "--model", tiny, "--tokenizer", toy, "--text", "a", "--prompt", "b"])
        #expect(twice.status != 0 && twice.err.contains("--text"), "\(twice.err)")
        // The aliases are hidden from the help; the new names are shown.
        for (command, shown, hidden) in [("generate", "--text", "--prompt"), ("eval", "--run", "--run-id"), ("merge", "--run", "--run-id")] {
            let help = try backpack([command, "--help"])
            #expect(help.out.contains(shown + " ") && !help.out.contains(hidden), "\(command):\n\(help.out)")
        }
        let senses = try backpack(["senses", "--help"])
        #expect(senses.out.contains("--words") && !senses.out.contains("<word>"), "\(senses.out)")
    }

    @Test func sensesTakeAListOfWords() throws {
        let s = try backpack(["senses", "--model", tiny, "--tokenizer", toy, "--words", "the,was", "--top", "2"])
        #expect(s.status == 0, "\(s.err)")
        #expect(s.out.components(separatedBy: "\n").filter { $0.hasPrefix("senses of ") }.count == 2, "\(s.out)")
    }

    /// Without --out, eval writes backpack-results.h5 in the working directory; --run names the run.
    @Test func evalWritesBackpackResultsInTheWorkingDirectoryByDefault() throws {
        let dir = try TestPaths.temporaryDirectory("cli-eval-default")
        defer { try? FileManager.default.removeItem(at: dir) }
        let suite = dir.appendingPathComponent("tiny.yaml")
        try TinySuites.pronouns.write(to: suite, atomically: true, encoding: .utf8)
        let r = try BackpackRun.run(["eval", "--model", tiny, "--tokenizer", toy, "--suite", suite.path, "--run", "r1", "--bootstrap", "0"],
                                    launcher: ["env", "-C", dir.path])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.hasPrefix("run r1"), "\(r.out)")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("backpack-results.h5").path))
        let list = try backpack(["report", dir.appendingPathComponent("backpack-results.h5").path, "--list"])
        #expect(list.out.split(separator: "\n") == ["r1"], "\(list.out)\(list.err)")
        // The old spelling still names the run.
        let old = try BackpackRun.run(["eval", "--model", tiny, "--tokenizer", toy, "--suite", suite.path, "--run-id", "r2", "--bootstrap", "0"],
                                      launcher: ["env", "-C", dir.path])
        #expect(old.status == 0 && old.out.hasPrefix("run r2"), "\(old.err)")
    }

    /// edit --check validates and writes nothing, with no --out; without --check, --out is required.
    @Test func editCheckNeedsNoOut() throws {
        let edit = TestPaths.repoRoot.appendingPathComponent("Tests/EditingTests/Edits/scale0.yaml").path
        let check = try backpack(["edit", "--model", tiny, "--tokenizer", toy, "--edit", edit, "--check"])
        #expect(check.status == 0 && check.out.hasPrefix("ok: 1 edit file(s)"), "\(check.out)\(check.err)")
        let missing = try backpack(["edit", "--model", tiny, "--tokenizer", toy, "--edit", edit])
        #expect(missing.status != 0 && missing.err.contains("--out"), "\(missing.err)")
    }

    /// Every help of --edit says whether the edits compose or become variants.
    @Test func everyEditHelpSaysComposeOrVariants() throws {
        let variants = ["eval", "attribute", "bench"], compose = ["edit", "senses", "localize", "forward", "generate"]
        for command in variants + compose {
            let help = try backpack([command, "--help"]).out.replacingOccurrences(of: "\n", with: " ")
                .split(separator: " ").joined(separator: " ")
            let says = variants.contains(command) ? "Edits become variants, they do not compose" : "the edits compose"
            #expect(help.contains(says), "\(command) --help:\n\(help)")
        }
    }

    @Test func listShowsShippedSuitesAndEdits() throws {
        let suites = try backpack(["list", "suites"])
        #expect(suites.status == 0, "\(suites.err)")
        let bias = suites.out.split(separator: "\n").first { $0.hasPrefix("pronoun-bias ") }
        #expect(bias?.contains("pronoun_bias") == true && suites.out.contains("lambada") && !suites.out.contains("invalid"), "\(suites.out)")
        let files = try FileManager.default.contentsOfDirectory(atPath: TestPaths.repoRoot.appendingPathComponent("Evaluations").path)
        #expect(suites.out.split(separator: "\n").filter { !$0.hasPrefix(" ") }.count == files.filter { $0.hasSuffix(".yaml") }.count)

        let edits = try backpack(["list", "edits"])
        #expect(edits.status == 0, "\(edits.err)")
        let remove = edits.out.split(separator: "\n").first { $0.hasPrefix("remove-gender-sense ") }
        #expect(remove?.contains("The localized he/she sense") == true, "\(edits.out)")
        #expect(edits.out.split(separator: "\n").contains { $0.hasPrefix("sweep-project-strength ") && $0.contains("sweep, ") }, "\(edits.out)")
        #expect(!edits.out.contains("invalid"), "\(edits.out)")
        for line in suites.out.split(separator: "\n") + edits.out.split(separator: "\n") { #expect(line.count <= 100, "\(line)") }
    }

    /// `list models` reads the Hugging Face cache: each repository with its revisions' commits, and
    /// whether the snapshot is complete.
    @Test func listShowsTheModelsInTheHuggingFaceCache() throws {
        let cache = try TestPaths.temporaryDirectory("cli-list-models")
        defer { try? FileManager.default.removeItem(at: cache) }
        let commit = String(repeating: "ab", count: 20)
        let repo = cache.appendingPathComponent("models--org--tiny")
        let snapshot = repo.appendingPathComponent("snapshots/\(commit)")
        try FileManager.default.createDirectory(at: repo.appendingPathComponent("refs"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        try Data(commit.utf8).write(to: repo.appendingPathComponent("refs/main"))
        for file in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: TestPaths.tinyModel.appendingPathComponent(file), to: snapshot.appendingPathComponent(file))
        }
        let partial = cache.appendingPathComponent("models--org--partial")
        try FileManager.default.createDirectory(at: partial.appendingPathComponent("refs"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: partial.appendingPathComponent("snapshots/\(commit)"), withIntermediateDirectories: true)
        try Data(commit.utf8).write(to: partial.appendingPathComponent("refs/main"))

        let r = try backpack(["list", "models"], environment: ["HF_HUB_CACHE": cache.path])
        #expect(r.status == 0, "\(r.err)")
        let lines = r.out.split(separator: "\n").map(String.init)
        #expect(lines.count == 2, "\(r.out)")
        #expect(lines.first { $0.hasPrefix("org/tiny ") }?.contains("main \(commit.prefix(12))") == true, "\(r.out)")
        #expect(lines.first { $0.hasPrefix("org/partial ") }?.contains("incomplete") == true, "\(r.out)")
        let empty = try TestPaths.temporaryDirectory("cli-list-none")
        defer { try? FileManager.default.removeItem(at: empty) }
        let none = try backpack(["list", "models"], environment: ["HF_HUB_CACHE": empty.path])
        #expect(none.status == 0 && none.out.contains("no models"), "\(none.out)\(none.err)")
    }
}
