import Foundation
import Testing
import TestSupport
import BackpackEditing
import BackpackModel
import BackpackModelFolder
import BackpackPrompts
import BackpackTokenizer

/// Deep nesting, alias bombs and huge numbers in the text formats: each refused quickly with a
/// thrown error (the fuzzers cover the rest; these are the inputs they are slow to build).
/// A hang is caught by the time limit (the runner's guard, not a speed assertion: `make bench` measures speed).
@Suite(.timeLimit(.minutes(1))) struct TextParserTests {
    static let deep = String(repeating: "[", count: 100_000)
    static let aliasBomb: String = {
        var lines = ["a0: &a0 [x,x,x,x,x,x,x,x,x,x]"]
        for i in 1...9 { lines.append("a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ",") + "]") }
        return lines.joined(separator: "\n") + "\nschema: backpack-edit/1\ninterventions: *a9\n"
    }()

    func timed(_ label: String, _ body: () throws -> Void) {
        let start = Date()
        #expect(throws: (any Error).self, "\(label) was accepted") { try body() }
        print(String(format: "%@: refused in %.3f s", label, Date().timeIntervalSince(start)))
    }

    @Test func editFiles() throws {
        let url = URL(fileURLWithPath: "/nonexistent/edit.yaml")
        timed("deep YAML flow sequence") { _ = try EditFile.parse(Self.deep, url: url) }
        timed("deep YAML block mapping") {
            _ = try EditFile.parse((0..<2000).map { String(repeating: "  ", count: $0) + "a:" }.joined(separator: "\n"), url: url)
        }
        timed("YAML alias bomb (10^10 nodes if expanded)") { _ = try EditFile.parse(Self.aliasBomb, url: url) }
        timed("tokens: huge integer") {
            _ = try EditFile.parse("schema: backpack-edit/1\ninterventions:\n  - tokens: [99999999999999999999999999]\n    senses: [0]\n    scale: 0\n", url: url)
        }
        timed("not UTF-8") {
            let dir = try TestPaths.temporaryDirectory("text")
            defer { try? FileManager.default.removeItem(at: dir) }
            let f = dir.appendingPathComponent("e.yaml")
            try Data([0xff, 0xfe, 0x00, 0x41]).write(to: f)
            _ = try EditFile.load(f)
        }
    }

    @Test func suitesConfigsTokenizers() throws {
        let dir = try TestPaths.temporaryDirectory("text")
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String, _ text: String) throws -> URL {
            let u = dir.appendingPathComponent(name)
            try text.write(to: u, atomically: true, encoding: .utf8)
            return u
        }
        let deepYAML = try file("suite.yaml", Self.deep)
        timed("deep prompt suite") { _ = try PronounSuite.load(deepYAML) }
        let bomb = try file("bomb.yaml", Self.aliasBomb.replacingOccurrences(of: "interventions", with: "prompts"))
        timed("alias-bomb prompt suite") { _ = try PronounSuite.load(bomb) }
        let deepJSON = try file("config.json", Self.deep)
        timed("deep config.json") { _ = try BackpackConfig.load(deepJSON) }
        let tok = try file("tokenizer.json", Self.deep)
        timed("deep tokenizer.json") { _ = try GPT2Tokenizer(tokenizerJSON: tok) }
        let v = try file("vocab.json", "{\"a\": " + String(repeating: "9", count: 100_000) + "}")
        let m = try file("merges.txt", "#version: 0.2\n")
        timed("vocab.json with a 100000-digit id") { _ = try GPT2Tokenizer(vocabulary: v, merges: m) }
        let objs = try file("vocab2.json", String(repeating: "{\"a\":", count: 100_000))
        timed("deep vocab.json") { _ = try GPT2Tokenizer(vocabulary: objs, merges: m) }
        let cfg = try file("config2.json", #"{"n_embd":1e999,"n_layer":1,"n_head":1,"n_positions":1,"vocab_size":1}"#)
        timed("config.json with 1e999") { _ = try BackpackConfig.load(cfg) }
    }
}
