import BackpackJSON
import Foundation

// Request bodies are read with the project's JSON reader (strict: duplicate keys and depth over
// 64 refused, order kept), and each field by a typed accessor whose error names the field.

struct RequestBody {
    let members: [(String, JSONValue)]

    /// A JSON object (an empty body reads as {}); unknown keys are refused.
    init(_ bytes: [UInt8], allowed: [String]) throws {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { members = []; return }
        let value: JSONValue
        do {
            value = try bytes.withUnsafeBytes { try JSONReader.parse($0, options: .strict) }
        } catch let e as JSONSyntaxError {
            let (line, column) = bytes.withUnsafeBytes { e.lineAndColumn(in: $0) }
            throw ExplorerError(field: "body", "not valid JSON at line \(line), column \(column): \(e.message)")
        }
        guard case .object(let m) = value else { throw ExplorerError(field: "body", "expected a JSON object, found \(value.typeName)") }
        for (key, _) in m where !allowed.contains(key) {
            throw ExplorerError(field: key, "unknown field; expected \(allowed.joined(separator: ", "))")
        }
        members = m
    }

    subscript(key: String) -> JSONValue? { members.last { $0.0 == key }?.1 }

    /// Lengths count Unicode code points, as JSON Schema's maxLength does.
    func string(_ key: String, default value: String? = nil, maxLength: Int = 20_000) throws -> String {
        guard let v = self[key] else {
            if let value { return value }
            throw ExplorerError(field: key, "missing; expected a string")
        }
        guard case .string(let s) = v else { throw ExplorerError(field: key, "expected a string, found \(v.typeName)") }
        if s.unicodeScalars.count > maxLength { throw ExplorerError(field: key, "\(s.unicodeScalars.count) characters; expected at most \(maxLength)") }
        return s
    }

    func int(_ key: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let v = self[key] else { return value }
        guard case .integer(let i) = v else { throw ExplorerError(field: key, "expected an integer, found \(v.typeName)") }
        guard range.contains(i) else { throw ExplorerError(field: key, "expected \(range.lowerBound) to \(range.upperBound), found \(i)") }
        return i
    }

    func bool(_ key: String, default value: Bool) throws -> Bool {
        guard let v = self[key] else { return value }
        guard case .bool(let b) = v else { throw ExplorerError(field: key, "expected true or false, found \(v.typeName)") }
        return b
    }

    func strings(_ key: String, default value: [String], count: ClosedRange<Int>) throws -> [String] {
        guard let v = self[key] else { return value }
        guard case .array(let items) = v else { throw ExplorerError(field: key, "expected a list of strings, found \(v.typeName)") }
        guard count.contains(items.count) else {
            throw ExplorerError(field: key, count.lowerBound == count.upperBound ? "expected \(count.lowerBound) strings, found \(items.count)"
                                : "expected \(count.lowerBound) to \(count.upperBound) strings, found \(items.count)")
        }
        return try items.enumerated().map { i, item in
            guard case .string(let s) = item else { throw ExplorerError(field: "\(key)[\(i)]", "expected a string, found \(item.typeName)") }
            if s.unicodeScalars.count > 1000 { throw ExplorerError(field: "\(key)[\(i)]", "\(s.unicodeScalars.count) characters; expected at most 1000") }
            return s
        }
    }
}

/// A name for a saved edit file: letters, digits, '-' and '_' (others become '-'), at most 64.
func sanitizedName(_ name: String) -> String {
    var out = ""
    for c in name.unicodeScalars.prefix(64) {
        let keep = ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "-" || c == "_"
        out.unicodeScalars.append(keep ? c : "-")
    }
    while out.hasPrefix("-") || out.hasPrefix("_") { out.removeFirst() }
    while out.hasSuffix("-") { out.removeLast() }
    return out.isEmpty ? "explore-edit" : out
}
