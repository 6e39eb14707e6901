import BackpackJSON
import Foundation

// Tokenizer files are read the way Python's json module (used by `tokenizers`) reads them:
// duplicate keys kept, lone surrogates replaced, a BOM skipped (JSONOptions.lenient).
extension JSONValue {
    /// "an object", "a string", ... for messages.
    var describedType: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .integer, .double: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }

    /// Parses a file; a syntax error names the file, line and column.
    static func parse(contentsOf url: URL) throws -> JSONValue {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError.file(url, nil, "cannot read the file (\(error.localizedDescription))")
        }
        return try data.withUnsafeBytes { raw in
            do {
                return try JSONReader.parse(raw, options: .lenient)
            } catch let e as JSONSyntaxError {
                let (line, column) = e.lineAndColumn(in: raw)
                throw TokenizerError.file(url, "\(line):\(column)", "invalid JSON: \(e.message)")
            }
        }
    }
}

/// The string, if the bytes are valid UTF-8 (decoding with replacement changes invalid bytes).
func validUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
    let s = String(decoding: bytes, as: UTF8.self)
    return s.utf8.elementsEqual(bytes) ? s : nil
}
