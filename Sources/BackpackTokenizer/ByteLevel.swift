/// GPT-2's reversible mapping between bytes and printable Unicode characters
/// (`bytes_to_unicode` in openai/gpt-2 `encoder.py`): the vocabulary spells every byte as one
/// of these characters, e.g. the space byte 0x20 as "Ġ" (U+0120).
enum ByteLevel {
    /// byte -> character
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var extra: UInt32 = 0
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = scalar(256 + extra)
                extra += 1
            }
        }
        return table
    }()

    private static func scalar(_ v: UInt32) -> Unicode.Scalar {
        Unicode.Scalar(v) ?? "?"  // 256..<324 are all valid scalars
    }

    /// character (scalar value < 324) -> byte, or -1
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (b, s) in byteToScalar.enumerated() { table[Int(s.value)] = Int16(b) }
        return table
    }()

    /// The bytes a vocabulary piece stands for, or nil if a character is outside the table.
    static func bytes(ofPiece piece: String) -> [UInt8]? {
        var out = [UInt8]()
        out.reserveCapacity(piece.utf8.count)
        for s in piece.unicodeScalars {
            guard s.value < 324 else { return nil }
            let b = scalarToByte[Int(s.value)]
            guard b >= 0 else { return nil }
            out.append(UInt8(b))
        }
        return out
    }

    /// The vocabulary spelling of a byte string.
    static func piece(ofBytes bytes: some Sequence<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(byteToScalar[Int(b)]) }
        return String(s)
    }
}
