import Foundation
import Testing
@testable import BackpackTokenizer

func preTokenize(_ text: String) -> [String] {
    var text = text
    var out: [String] = []
    text.withUTF8 { buf in
        PreTokenizer.split(buf, from: 0, to: buf.count) { a, b in
            out.append(String(decoding: UnsafeBufferPointer(rebasing: buf[a..<b]), as: UTF8.self))
        }
    }
    return out
}

@Suite struct PreTokenizerTests {
    @Test(arguments: [
        ("a   b", ["a", "  ", " b"]),
        ("Hello world", ["Hello", " world"]),
        ("it's", ["it", "'s"]),
        ("IT'S", ["IT", "'", "S"]),
        ("they're we've I'm you'll he'd don't", ["they", "'re", " we", "'ve", " I", "'m", " you", "'ll", " he", "'d", " don", "'t"]),
        ("it’s", ["it", "’", "s"]),
        (" 's", [" '", "s"]),
        ("trailing   ", ["trailing", "   "]),
        ("\n\n\n", ["\n\n\n"]),
        (" \n ", [" \n "]),
        ("a\nb", ["a", "\n", "b"]),
        ("a \n b", ["a", " \n", " b"]),
        ("x\t\ty", ["x", "\t", "\t", "y"]),  // a tab is not the optional space
        ("123 4567", ["123", " 4567"]),
        ("a1b", ["a", "1", "b"]),
        ("Café!!", ["Café", "!!"]),
        ("日本語 テキスト", ["日本語", " テキスト"]),
        ("hi 🍕🍕", ["hi", " 🍕🍕"]),
        ("", []),
    ])
    func splits(text: String, expected: [String]) {
        #expect(preTokenize(text) == expected)
    }

    @Test func piecesCoverText() {
        let text = "Mixed  text,\twith 12 numbers\n\nand émoji 👨‍👩‍👧 'quotes' end  "
        #expect(preTokenize(text).joined() == text)
    }
}
