import Foundation
import Testing
import TestSupport
@testable import BackpackTokenizer

/// Golden files written by Tools/tokenizer-goldens/make_goldens.py (tiktoken + HF tokenizers).
struct Golden: Decodable, Sendable {
    struct Case: Decodable, Sendable { let name: String; let text: String; let ids: [Int] }
    struct DecodeCase: Decodable, Sendable { let ids: [Int]; let text: String }
    let tokenizer: String
    let versions: [String: String]
    let vocab_size: Int
    let cases: [Case]
    let decode_cases: [DecodeCase]

    static func load(_ name: String) throws -> Golden {
        let dir = try #require(Bundle.module.url(forResource: "Goldens", withExtension: nil))
        let data = try Data(contentsOf: dir.appendingPathComponent("\(name).json"))
        return try JSONDecoder().decode(Golden.self, from: data)
    }
}

/// The shared tokenizers, loaded once.
enum Fixtures {
    static let gpt2 = Result { try GPT2Tokenizer.load(from: TestPaths.gpt2Tokenizer) }
    static let toy = Result { try GPT2Tokenizer.load(from: TestPaths.toyTokenizer) }

    static func tokenizer(_ name: String) throws -> GPT2Tokenizer {
        switch name {
        case "gpt2": return try gpt2.get()
        default: return try toy.get()
        }
    }
}

@Suite struct GoldenTests {
    @Test(arguments: ["gpt2", "toy"])
    func encodeMatchesReference(name: String) throws {
        let golden = try Golden.load(name)
        let tok = try Fixtures.tokenizer(name)
        #expect(tok.count == golden.vocab_size)
        for c in golden.cases {
            let ids = tok.encode(c.text)
            #expect(ids == c.ids, "\(name)/\(c.name): \(c.text.debugDescription.prefix(120))")
        }
        print("\(name): \(golden.cases.count) golden texts checked (reference \(golden.versions.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))")
    }

    @Test(arguments: ["gpt2", "toy"])
    func decodeRoundTrips(name: String) throws {
        let golden = try Golden.load(name)
        let tok = try Fixtures.tokenizer(name)
        for c in golden.cases {
            #expect(tok.decode(c.ids) == c.text, "\(name)/\(c.name)")
            #expect(tok.decode(tok.encode(c.text)) == c.text, "\(name)/\(c.name)")
        }
    }

    @Test(arguments: ["gpt2", "toy"])
    func decodeInvalidUTF8LikePython(name: String) throws {
        let golden = try Golden.load(name)
        let tok = try Fixtures.tokenizer(name)
        for c in golden.decode_cases {
            #expect(tok.decode(c.ids) == c.text, "\(name): ids \(c.ids)")
        }
    }

    @Test func gpt2Basics() throws {
        let tok = try Fixtures.gpt2.get()
        #expect(tok.count == 50257)
        #expect(tok.endOfTextID == 50256)
        #expect(tok.encode("<|endoftext|>") == [50256])
        #expect(tok.decode([50256]) == "<|endoftext|>")
        let he = try #require(tok.id(ofPiece: "Ġhe"))
        #expect(tok.piece(he) == "Ġhe")
        #expect(tok.displayPiece(he) == " he")
        #expect(tok.encode(" he") == [he])
        #expect(tok.piece(-1) == nil && tok.piece(50257) == nil && tok.displayPiece(1 << 40) == nil)
        #expect(tok.encode("") == [])
        #expect(tok.decode([]) == "")
    }

    @Test func toyHasNoEndOfText() throws {
        let tok = try Fixtures.toy.get()
        #expect(tok.count == 512)
        #expect(tok.endOfTextID == nil)
    }
}
