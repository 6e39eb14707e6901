import Foundation
import Testing
import TestSupport
@testable import BackpackTokenizer

@Suite struct LoadingTests {
    static let toyDir = TestPaths.toyTokenizer

    @Test func threeToyFormatsAgree() throws {
        let json = try GPT2Tokenizer(tokenizerJSON: Self.toyDir.appendingPathComponent("tokenizer.json"))
        let pair = try GPT2Tokenizer(vocabulary: Self.toyDir.appendingPathComponent("vocab.json"),
                                     merges: Self.toyDir.appendingPathComponent("merges.txt"))
        let tiktoken = try GPT2Tokenizer(tiktoken: Self.toyDir.appendingPathComponent("toy.tiktoken"))
        #expect(json.count == 512 && pair.count == 512 && tiktoken.count == 512)
        for id in 0..<json.count {
            #expect(json.piece(id) == pair.piece(id) && json.piece(id) == tiktoken.piece(id), "id \(id)")
        }
        for c in try Golden.load("toy").cases {
            let ids = json.encode(c.text)
            #expect(pair.encode(c.text) == ids, "\(c.name)")
            #expect(tiktoken.encode(c.text) == ids, "\(c.name)")
        }
    }

    @Test(arguments: ["", "tokenizer.json", "vocab.json", "merges.txt", "toy.tiktoken"])
    func loadPathAcceptsDirectoryOrFile(name: String) throws {
        let url = name.isEmpty ? Self.toyDir : Self.toyDir.appendingPathComponent(name)
        let tok = try GPT2Tokenizer.load(path: url)
        #expect(tok.count == 512)
        #expect(tok.decode(tok.encode("Hello there, world!")) == "Hello there, world!")
    }

    @Test(arguments: ["", "encoder.json", "vocab.bpe"])
    func loadPathGPT2(name: String) throws {
        let url = name.isEmpty ? TestPaths.gpt2Tokenizer : TestPaths.gpt2Tokenizer.appendingPathComponent(name)
        let tok = try GPT2Tokenizer.load(path: url)
        #expect(tok.count == 50257)
        #expect(tok.encode("Hello world") == [15496, 995])
    }

    /// tiktoken's own gpt2 construction: ranks from encoder.json bytes plus <|endoftext|> as special.
    @Test func gpt2FromTiktokenRanksMatchesGoldens() throws {
        let dir = try TestPaths.temporaryDirectory("tiktoken")
        defer { try? FileManager.default.removeItem(at: dir) }
        let gpt2 = try Fixtures.gpt2.get()
        var lines = ""
        for id in 0..<50256 {
            let bytes = Data(try #require(gpt2.piece(id)).unicodeScalars.map { UInt8(ByteLevel.scalarToByte[Int($0.value)]) })
            lines += "\(bytes.base64EncodedString()) \(id)\n"
        }
        let file = dir.appendingPathComponent("gpt2.tiktoken")
        try lines.write(to: file, atomically: true, encoding: .utf8)
        let tok = try GPT2Tokenizer(tiktoken: file, specialTokens: ["<|endoftext|>": 50256])
        #expect(tok.count == 50257)
        for c in try Golden.load("gpt2").cases {
            #expect(tok.encode(c.text) == c.ids, "\(c.name)")
        }
    }

    @Test func mergesAsPairsInTokenizerJSON() throws {
        // Newer tokenizers versions write merges as ["a", "b"]; the toy file does, check both spellings.
        let dir = try TestPaths.temporaryDirectory("merges")
        defer { try? FileManager.default.removeItem(at: dir) }
        var text = try String(contentsOf: Self.toyDir.appendingPathComponent("tokenizer.json"), encoding: .utf8)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let model = try #require(json["model"] as? [String: Any])
        let merges = try #require(model["merges"] as? [Any])
        let asStrings = merges.map { m -> String in
            if let s = m as? String { return s }
            return ((m as? [String]) ?? []).joined(separator: " ")
        }
        var newModel = model
        newModel["merges"] = asStrings
        var newJSON = json
        newJSON["model"] = newModel
        text = String(decoding: try JSONSerialization.data(withJSONObject: newJSON), as: UTF8.self)
        let file = dir.appendingPathComponent("tokenizer.json")
        try text.write(to: file, atomically: true, encoding: .utf8)
        let a = try GPT2Tokenizer(tokenizerJSON: file)
        let b = try GPT2Tokenizer(tokenizerJSON: Self.toyDir.appendingPathComponent("tokenizer.json"))
        let sample = "The quick brown fox jumps over the lazy dog; naïve café 12345."
        #expect(a.encode(sample) == b.encode(sample))
    }

    @Test func addedTokensInTokenizerJSON() throws {
        let dir = try TestPaths.temporaryDirectory("added")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = try Data(contentsOf: Self.toyDir.appendingPathComponent("tokenizer.json"))
        var json = try #require(try JSONSerialization.jsonObject(with: src) as? [String: Any])
        json["added_tokens"] = [
            ["id": 512, "content": "<|endoftext|>", "special": true, "lstrip": false, "rstrip": false,
             "single_word": false, "normalized": false],
            ["id": 513, "content": "<pad>", "special": true, "lstrip": true, "rstrip": true,
             "single_word": false, "normalized": false],
        ]
        let file = dir.appendingPathComponent("tokenizer.json")
        try JSONSerialization.data(withJSONObject: json).write(to: file)
        let tok = try GPT2Tokenizer(tokenizerJSON: file)
        let plain = try Fixtures.toy.get()
        #expect(tok.count == 514)
        #expect(tok.endOfTextID == 512)
        #expect(tok.encode("hi<|endoftext|>there") == plain.encode("hi") + [512] + plain.encode("there"))
        #expect(tok.encode("hi  <pad>  there") == plain.encode("hi") + [513] + plain.encode("there"))
        #expect(tok.decode([512]) == "<|endoftext|>")
    }
}
