import Foundation
import Testing
import TestSupport
@testable import BackpackTokenizer

/// Long pieces (a run of letters without a space) use a heap-ordered merge instead of the scan;
/// both must give the same ids.
@Suite struct LongPieceTests {
    static let tokenizer: GPT2Tokenizer = {
        try! GPT2Tokenizer.load(from: TestPaths.gpt2Tokenizer)
    }()

    @Test(arguments: [2, 3, 17, 129, 600, 3000])
    func heapMergeEqualsScan(length: Int) throws {
        var rng = SystemRandomNumberGenerator()
        let alphabets = ["ab", "abc ", "the", "aeiou", "xyzq"]
        for alphabet in alphabets {
            let letters = Array(alphabet.utf8)
            let bytes = (0..<length).map { _ in letters[Int(rng.next() % UInt64(letters.count))] }
            let ids = bytes.map { Self.tokenizer.byteIDs[Int($0)] }
            #expect(Self.tokenizer.mergeWithHeap(ids) == Self.tokenizer.mergeByScanning(ids), "\(alphabet) x \(length)")
        }
    }

    @Test func aLongWordRoundTrips() {
        let word = String(repeating: "antidisestablishmentarianism", count: 700)  // 19,600 letters, one piece
        let ids = Self.tokenizer.encode(word)
        #expect(Self.tokenizer.decode(ids) == word)
        #expect(ids.count < word.count / 3)
    }
}
