import Foundation
import Testing
import TestSupport
@testable import BackpackTokenizer

/// Long pieces (a run of letters without a space) use a heap-ordered merge instead of the scan;
/// both must give the same ids.
@Suite struct LongPieceTests {
    static let loaded = Result { try GPT2Tokenizer.load(from: TestPaths.gpt2Tokenizer) }

    @Test(arguments: [2, 3, 17, 129, 600, 3000])
    func heapMergeEqualsScan(length: Int) throws {
        let tokenizer = try Self.loaded.get()
        var rng = SystemRandomNumberGenerator()
        let alphabets = ["ab", "abc ", "the", "aeiou", "xyzq"]
        for alphabet in alphabets {
            let letters = Array(alphabet.utf8)
            let bytes = (0..<length).map { _ in letters[Int(rng.next() % UInt64(letters.count))] }
            let ids = bytes.map { tokenizer.byteIDs[Int($0)] }
            #expect(tokenizer.mergeWithHeap(ids) == tokenizer.mergeByScanning(ids), "\(alphabet) x \(length)")
        }
    }

    @Test func aLongWordRoundTrips() throws {
        let tokenizer = try Self.loaded.get()
        let word = String(repeating: "antidisestablishmentarianism", count: 700)  // 19,600 letters, one piece
        let ids = tokenizer.encode(word)
        #expect(tokenizer.decode(ids) == word)
        #expect(ids.count < word.count / 3)
    }
}
