import Foundation
import Testing
import TestSupport

/// The `backpack` binary: eval into a temporary .h5 twice (runs accumulate), read back with
/// `backpack report` (the toolkit's reader), HTML written; data fetch fails clearly offline.
@Suite struct EndToEndTests {
    func backpack(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let r = try BackpackRun.run(args)
        #expect(!r.signaled, "backpack \(args) ended by a signal")
        return (r.status, r.out, r.err)
    }

    @Test func evalTwiceThenReport() throws {
        guard FileManager.default.isExecutableFile(atPath: TestPaths.backpackBinary.path) else {
            Issue.record("backpack binary not built at \(TestPaths.backpackBinary.path)"); return
        }
        let tmp = try TestPaths.temporaryDirectory("e2e")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let suite = tmp.appendingPathComponent("tiny.yaml")
        try ModelEvalTests.tinySuite.write(to: suite, atomically: true, encoding: .utf8)
        let ppl = tmp.appendingPathComponent("ppl.yaml")
        try "suite: tiny-ppl\nversion: 1\nkind: perplexity\ntext: \"the man was with the car. When he said that\"\nmax_length: 8\nstride: 4\nprepend_eos: false\n"
            .write(to: ppl, atomically: true, encoding: .utf8)
        let h5 = tmp.appendingPathComponent("results.h5")
        let common = ["eval", "--model", TestPaths.tinyModel.path, "--tokenizer", TestPaths.toyTokenizer.path,
                      "--suite", suite.path, "--suite", ppl.path, "--out", h5.path]
        let first = try backpack(common)
        #expect(first.status == 0, "\(first.err)")
        #expect(first.out.contains("tiny-pronouns") && first.out.contains("bias") && first.out.contains("token_perplexity"), "\(first.out)")
        let second = try backpack(common + ["--json"])
        #expect(second.status == 0, "\(second.err)")
        let json = try JSONSerialization.jsonObject(with: Data(second.out.utf8)) as? [String: Any]
        #expect(json?["run_id"] is String)
        let html = tmp.appendingPathComponent("report.html")
        let report = try backpack(["report", h5.path, "--json", "--html", html.path])
        #expect(report.status == 0, "\(report.err)")
        let r = try JSONSerialization.jsonObject(with: Data(report.out.utf8)) as? [String: Any]
        #expect((r?["runs"] as? [String])?.count == 2)
        let page = try String(contentsOf: html, encoding: .utf8)
        #expect(page.contains("<svg") && page.contains("Per-noun bias"))
        let text = try backpack(["report", h5.path])
        #expect(text.status == 0 && text.out.contains("2 run(s)"), "\(text.out)\(text.err)")
        print(text.out)
        let bad = try backpack(["eval", "--model", TestPaths.tinyModel.path, "--tokenizer", TestPaths.toyTokenizer.path,
                                "--suite", tmp.appendingPathComponent("missing.yaml").path, "--out", h5.path])
        #expect(bad.status != 0 && bad.err.contains("missing.yaml"), "\(bad.err)")
    }

    @Test func fetchFailsClearlyWhenUnreachable() throws {
        let tmp = try TestPaths.temporaryDirectory("fetch")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let r = try backpack(["data", "fetch", "crows-pairs", "--url", "http://127.0.0.1:9/crows.csv", "--cache-dir", tmp.path, "--timeout", "5"])
        #expect(r.status != 0)
        #expect(r.err.contains("download of crows-pairs") && r.err.contains("offline"), "\(r.err)")
        print("offline fetch message: \(r.err)")
        #expect(!FileManager.default.fileExists(atPath: tmp.appendingPathComponent("crows_pairs/crows_pairs_anonymized.csv").path))
        for (name, file) in [("lambada", "lambada/lambada_test.jsonl"), ("wikitext", "wikitext/wiki.test.raw")] {
            let f = try backpack(["data", "fetch", name, "--url", "http://127.0.0.1:9/x", "--cache-dir", tmp.path, "--timeout", "5"])
            #expect(f.status != 0 && f.err.contains("download of \(name)") && f.err.contains("offline"), "\(f.err)")
            #expect(!FileManager.default.fileExists(atPath: tmp.appendingPathComponent(file).path))
        }
    }
}
