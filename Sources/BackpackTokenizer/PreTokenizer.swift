/// GPT-2's pre-tokenizer, matched by hand over the UTF-8 bytes of the text. Same splits as
///
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///
/// in tiktoken (fancy-regex) and HF tokenizers (Oniguruma): \p{L} is general category L*,
/// \p{N} is N*, \s is the Unicode White_Space property. "a   b" -> ["a", "  ", " b"].
enum PreTokenizer {
    enum Class: UInt8 { case other = 0, letter = 1, number = 2, space = 3 }

    static func classify(_ v: UInt32) -> Class {
        if v < 0x10000 { return Class(rawValue: bmpTable[Int(v)]) ?? .other }
        return computeClass(v)
    }

    private static func computeClass(_ v: UInt32) -> Class {
        guard let s = Unicode.Scalar(v) else { return .other }
        let p = s.properties
        if p.isWhitespace { return .space }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }

    /// Class of every scalar in the Basic Multilingual Plane (surrogates are `other`).
    private static let bmpTable: [UInt8] = (0..<0x10000).map { computeClass(UInt32($0)).rawValue }

    /// Decodes the scalar starting at `i` (the text is valid UTF-8: it comes from a Swift String).
    @inline(__always)
    static func decode(_ p: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> (UInt32, Int) {
        let b0 = UInt32(p[i])
        if b0 < 0x80 { return (b0, 1) }
        if b0 < 0xE0, i + 1 < end { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F), 2) }
        if b0 < 0xF0, i + 2 < end {
            return ((b0 & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F), 3)
        }
        if i + 3 < end {
            return ((b0 & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6
                        | UInt32(p[i + 3] & 0x3F), 4)
        }
        return (0xFFFD, 1)  // unreachable for valid UTF-8
    }

    /// Calls `body(start, end)` with the byte range of every piece of `p[start..<end]`, in order.
    @inline(__always)
    static func split(_ p: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int,
                      _ body: (Int, Int) -> Void) {
        var i = start
        while i < end {
            let j = matchEnd(p, i, end)
            body(i, j)
            i = j
        }
    }

    /// The end of the regex match starting at `i` (always > i).
    static func matchEnd(_ p: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        let c0 = p[i]
        // 's|'t|'re|'ve|'m|'ll|'d
        if c0 == 0x27, i + 1 < end {
            let c1 = p[i + 1]
            if c1 == 0x73 || c1 == 0x74 || c1 == 0x6D || c1 == 0x64 { return i + 2 }  // s t m d
            if i + 2 < end {
                let c2 = p[i + 2]
                if (c1 == 0x72 && c2 == 0x65) || (c1 == 0x76 && c2 == 0x65) || (c1 == 0x6C && c2 == 0x6C) {
                    return i + 3  // re ve ll
                }
            }
        }
        // ' ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+': an optional space, then a run of one class
        var runStart = i
        var (v, len) = decode(p, i, end)
        var cls = classify(v)
        if c0 == 0x20, i + 1 < end {
            let (v1, len1) = decode(p, i + 1, end)
            let cls1 = classify(v1)
            if cls1 != .space {
                runStart = i + 1
                v = v1; len = len1; cls = cls1
            }
        }
        if cls != .space {
            var j = runStart + len
            while j < end {
                let (v2, len2) = decode(p, j, end)
                if classify(v2) != cls { break }
                j += len2
            }
            return j
        }
        // \s+(?!\S)|\s+ : a whitespace run; unless it reaches the end, leave its last scalar
        // to start the next piece, if the run has more than one.
        var j = i + len
        var lastStart = i
        while j < end {
            let (v2, len2) = decode(p, j, end)
            if classify(v2) != .space { break }
            lastStart = j
            j += len2
        }
        if j == end || lastStart == i { return j }
        return lastStart
    }
}
