import Foundation
import Testing
import TestSupport
@testable import BackpackTokenizer

/// Broken tokenizer files: each must throw a TokenizerError naming the file and the place.
@Suite struct BadInputTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let files: [String: String]   // file name -> contents
        let load: String               // file (or "" for the directory) given to load(path:)
        let expected: [String]         // substrings of the message
        var testDescription: String { name }
    }

    static let goodVocab = #"{"a": 0, "b": 1, "ab": 2, "Ġ": 3}"#
    static let goodMerges = "#version: 0.2\na b\n"
    static func tokJSON(model: String, extra: String = "") -> String {
        #"{"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}, "model": "# + model + extra + "}"
    }
    static let goodModel = #"{"type": "BPE", "dropout": null, "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}"#

    static let cases: [Case] = [
        Case(name: "empty directory", files: [:], load: "",
             expected: ["tokenizer.json", "vocab.json", "merges.txt", "encoder.json", "vocab.bpe"]),
        Case(name: "missing path", files: [:], load: "nothing-here.json", expected: ["nothing-here.json", "no such file"]),
        Case(name: "invalid JSON vocab", files: ["vocab.json": "{\"a\": 0,\n \"b\" 1}", "merges.txt": goodMerges],
             load: "vocab.json", expected: ["vocab.json:2:", "invalid JSON"]),
        Case(name: "truncated JSON", files: ["vocab.json": "{\"a\": 0, \"b\": ", "merges.txt": goodMerges],
             load: "vocab.json", expected: ["vocab.json:1:", "end of file"]),
        Case(name: "vocab not an object", files: ["vocab.json": "[1, 2]", "merges.txt": goodMerges],
             load: "vocab.json", expected: ["vocab.json", "expected an object"]),
        Case(name: "string id", files: ["vocab.json": #"{"a": 0, "b": "1"}"#, "merges.txt": goodMerges],
             load: "vocab.json", expected: ["vocab.json", #"["b"]"#, "expected an integer id", "a string"]),
        Case(name: "fractional id", files: ["vocab.json": #"{"a": 0, "b": 1.5}"#, "merges.txt": goodMerges],
             load: "vocab.json", expected: ["vocab.json", #"["b"]"#, "integer id"]),
        Case(name: "negative id", files: ["vocab.json": #"{"a": 0, "b": -1}"#, "merges.txt": goodMerges],
             load: "vocab.json", expected: ["vocab.json", #"["b"]"#, "out of range"]),
        Case(name: "duplicate ids", files: ["vocab.json": #"{"a": 0, "b": 0, "ab": 2}"#, "merges.txt": goodMerges],
             load: "vocab.json", expected: ["vocab.json", #"["b"]"#, "duplicate id 0"]),
        Case(name: "malformed merge line", files: ["vocab.json": goodVocab, "merges.txt": "#version: 0.2\na b\nab\n"],
             load: "vocab.json", expected: ["merges.txt:3:", "two pieces", "\"ab\""]),
        Case(name: "merge with three parts", files: ["vocab.json": goodVocab, "merges.txt": "a b c\n"],
             load: "merges.txt", expected: ["merges.txt:1:", "two pieces"]),
        Case(name: "blank line inside merges", files: ["vocab.json": goodVocab, "merges.txt": "#version: 0.2\n\na b\n"],
             load: "vocab.json", expected: ["merges.txt:2:"]),
        Case(name: "merge not in vocab", files: ["vocab.json": goodVocab, "merges.txt": "a b\nb a\n"],
             load: "vocab.json", expected: ["merges.txt:2:", "\"ba\" is not in the vocabulary"]),
        Case(name: "encoder.json without vocab.bpe", files: ["encoder.json": goodVocab], load: "encoder.json",
             expected: ["encoder.json", "vocab.bpe"]),
        Case(name: "tokenizer.json invalid", files: ["tokenizer.json": "{\"model\": }"], load: "",
             expected: ["tokenizer.json:1:", "invalid JSON"]),
        Case(name: "tokenizer.json model type", files: ["tokenizer.json": tokJSON(model: #"{"type": "WordPiece", "vocab": {}}"#)],
             load: "", expected: ["tokenizer.json", "model.type", "\"BPE\"", "WordPiece"]),
        Case(name: "tokenizer.json missing model", files: ["tokenizer.json": #"{"version": "1.0"}"#],
             load: "tokenizer.json", expected: ["tokenizer.json", "not a tokenizer.json"]),
        Case(name: "tokenizer.json vocab type", files: ["tokenizer.json": tokJSON(model: #"{"type": "BPE", "vocab": [], "merges": []}"#)],
             load: "", expected: ["tokenizer.json", "model.vocab", "expected an object"]),
        Case(name: "tokenizer.json merges type", files: ["tokenizer.json": tokJSON(model: #"{"type": "BPE", "vocab": {"a": 0}, "merges": "a b"}"#)],
             load: "", expected: ["tokenizer.json", "model.merges", "expected an array"]),
        Case(name: "tokenizer.json bad merge item", files: ["tokenizer.json": tokJSON(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b", ["a"]]}"#)],
             load: "", expected: ["tokenizer.json", "model.merges[1]", "pair"]),
        Case(name: "tokenizer.json merge not a string", files: ["tokenizer.json": tokJSON(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [7]}"#)],
             load: "", expected: ["tokenizer.json", "model.merges[0]", "a number"]),
        Case(name: "tokenizer.json pre-tokenizer", files: ["tokenizer.json": #"{"normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "model": "# + goodModel + "}"],
             load: "", expected: ["tokenizer.json", "pre_tokenizer.type", "ByteLevel", "Whitespace"]),
        Case(name: "tokenizer.json added token id type",
             files: ["tokenizer.json": #"{"added_tokens": [{"id": "x", "content": "<s>"}], "normalizer": null, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}, "model": "# + goodModel + "}"],
             load: "", expected: ["tokenizer.json", "added_tokens[0].id", "integer"]),
        Case(name: "tokenizer.json added token clashes",
             files: ["tokenizer.json": #"{"added_tokens": [{"id": 1, "content": "<s>"}], "normalizer": null, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}, "model": "# + goodModel + "}"],
             load: "", expected: ["tokenizer.json", "added_tokens[0]", "\"b\""]),
        Case(name: "tiktoken bad line", files: ["bad.tiktoken": "YQ== 0\nYg== 1\nnot-base64 x\n"], load: "bad.tiktoken",
             expected: ["bad.tiktoken:3:", "base64"]),
        Case(name: "not UTF-8 merges", files: ["vocab.json": goodVocab, "merges.txt": "a \u{FF}"], load: "vocab.json",
             expected: ["merges.txt"]),
    ]

    @Test(arguments: cases)
    func badInputThrowsNamingFileAndPlace(_ c: Case) throws {
        let dir = try TestPaths.temporaryDirectory("badtok")
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, text) in c.files {
            var data = Data(text.utf8)
            if c.name == "not UTF-8 merges", name == "merges.txt" { data = Data([0x61, 0x20, 0xFF, 0x0A]) }
            try data.write(to: dir.appendingPathComponent(name))
        }
        let url = c.load.isEmpty ? dir : dir.appendingPathComponent(c.load)
        let error = #expect(throws: TokenizerError.self) { try GPT2Tokenizer.load(path: url) }
        let message = error?.description ?? ""
        print("[\(c.name)] \(message)")
        for part in c.expected {
            #expect(message.contains(part), "message: \(message)")
        }
        if !c.load.isEmpty { #expect(message.contains(dir.lastPathComponent), "message names the path: \(message)") }
    }
}
