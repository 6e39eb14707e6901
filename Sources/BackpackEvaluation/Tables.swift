import BackpackJSON
import Foundation

// Tabular data files that declarative suite kinds read by column name: CSV, TSV and JSON Lines.

/// RFC 4180 CSV (or TSV with `separator: "\t"`): quoted fields, "" escapes, newlines inside
/// quotes. Rows carry their 1-based line.
enum CSV {
    static func parse(_ text: String, file: String, separator: Unicode.Scalar = ",") throws -> [(line: Int, fields: [String])] {
        var rows: [(Int, [String])] = []
        var field = "", fields: [String] = [], inQuotes = false, line = 1, rowLine = 1
        var chars = Array(text.unicodeScalars)[...]
        if chars.first == "\u{FEFF}" { chars = chars.dropFirst() }
        var i = chars.startIndex
        func endRow() { fields.append(field); field = ""; if !(fields.count == 1 && fields[0].isEmpty) { rows.append((rowLine, fields)) }; fields = [] }
        while i < chars.endIndex {
            let c = chars[i]
            if inQuotes {
                if c == "\"" {
                    let n = chars.index(after: i)
                    if n < chars.endIndex && chars[n] == "\"" { field.unicodeScalars.append("\""); i = n } else { inQuotes = false }
                } else { if c == "\n" { line += 1 }; field.unicodeScalars.append(c) }
            } else {
                switch c {
                case "\"": inQuotes = true
                case separator: fields.append(field); field = ""
                case "\r": break
                case "\n": endRow(); line += 1; rowLine = line
                default: field.unicodeScalars.append(c)
                }
            }
            i = chars.index(after: i)
        }
        if inQuotes { throw SuiteError(file: file, line: rowLine, reason: "unterminated quoted field") }
        if !field.isEmpty || !fields.isEmpty { endRow() }
        return rows
    }
}

/// A data file as rows of named fields, each row with its 1-based line in the file, so that an
/// error names the line. Read from CSV (`.csv`), TSV (`.tsv`) or JSON Lines (`.jsonl`, one object a
/// line; a field may be a string, a number, or for `list` columns an array of strings).
struct DataTable {
    enum Format: String, CaseIterable { case csv, tsv, jsonl }
    enum Field { case text(String), list([String]) }
    var file: String
    var columns: [String]
    var rows: [(line: Int, fields: [String: Field])]

    static func format(of url: URL, declared: String?, place: (String) -> SuiteError) throws -> Format {
        let name = declared ?? url.pathExtension.lowercased()
        guard let f = Format(rawValue: name) else {
            throw place("cannot tell the format of '\(url.lastPathComponent)' from '\(name)'; expected one of \(Format.allCases.map(\.rawValue).joined(separator: ", ")) (set 'format')")
        }
        return f
    }

    static func read(_ url: URL, format: Format) throws -> DataTable {
        let text = try SuiteError.text(of: url)
        switch format {
        case .csv, .tsv:
            let rows = try CSV.parse(text, file: url.path, separator: format == .tsv ? "\t" : ",")
            guard let header = rows.first?.fields else { throw SuiteError(file: url.path, reason: "empty file: expected a header row") }
            var out: [(line: Int, fields: [String: Field])] = []
            for row in rows.dropFirst() {
                guard row.fields.count == header.count else {
                    throw SuiteError(file: url.path, line: row.line, reason: "expected \(header.count) fields (as the header), found \(row.fields.count)")
                }
                out.append((row.line, Dictionary(zip(header, row.fields.map { Field.text($0) }), uniquingKeysWith: { a, _ in a })))
            }
            return DataTable(file: url.path, columns: header, rows: out)
        case .jsonl:
            var out: [(line: Int, fields: [String: Field])] = [], seen: [String] = []
            for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                if line.allSatisfy(\.isWhitespace) { continue }
                let value: JSONValue
                do {
                    value = try Array(line.utf8).withUnsafeBytes { try JSONReader.parse($0, options: .strict) }
                } catch let e as JSONSyntaxError {
                    throw SuiteError(file: url.path, line: i + 1, reason: "invalid JSON: \(e.message)")
                }
                guard case .object(let members) = value else {
                    throw SuiteError(file: url.path, line: i + 1, reason: "expected a JSON object, found \(value.typeName)")
                }
                var fields: [String: Field] = [:]
                for (k, v) in members {
                    if !seen.contains(k) { seen.append(k) }
                    switch v {
                    case .string(let s): fields[k] = .text(s)
                    case .integer(let n): fields[k] = .text(String(n))
                    case .double(let d): fields[k] = .text(String(d))
                    case .bool(let b): fields[k] = .text(String(b))
                    case .array(let items):
                        fields[k] = .list(try items.map { item in
                            guard case .string(let s) = item else {
                                throw SuiteError(file: url.path, line: i + 1, reason: "'\(k)': expected a list of strings, found a \(item.typeName) in it")
                            }
                            return s
                        })
                    case .null, .object: continue
                    }
                }
                out.append((i + 1, fields))
            }
            return DataTable(file: url.path, columns: seen, rows: out)
        }
    }

    /// A named column must exist (error at the suite key that names it).
    func require(_ column: String, _ error: (String) -> SuiteError) throws {
        guard columns.contains(column) else {
            throw error("column '\(column)' is not in \((file as NSString).lastPathComponent) (columns: \(columns.joined(separator: ", ")))")
        }
    }

    /// The text of `column` in a row (error at the row's line when absent or a list).
    func text(_ row: (line: Int, fields: [String: Field]), _ column: String) throws -> String {
        guard let f = row.fields[column] else { throw SuiteError(file: file, line: row.line, reason: "missing field '\(column)'") }
        guard case .text(let s) = f else { throw SuiteError(file: file, line: row.line, reason: "'\(column)' must be a string, found a list") }
        return s
    }
}
