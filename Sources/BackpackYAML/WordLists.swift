import BackpackJSON
import Foundation

/// The word-list and pair-list files that edit files and suites name. One parser each.
public enum WordListFile {
    /// A path as written in a YAML file: absolute, or relative to the folder of the file naming it.
    public static func resolve(_ path: String, relativeTo file: URL) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path)
            : file.deletingLastPathComponent().appendingPathComponent(path).standardizedFileURL
    }

    /// One word per line; '#' starts a comment; blank lines are ignored. Each word with its
    /// place (line, column 1). An unreadable or empty list is an error naming `place`.
    public static func read(_ url: URL, place: SourcePlace?) throws -> [(word: String, place: SourcePlace)] {
        func fail(_ message: String) -> YAMLError { place.map { YAMLError($0, message) } ?? YAMLError(file: url.path, message) }
        guard let data = try? Data(contentsOf: url), let text = String(data: data, encoding: .utf8) else {
            throw fail("cannot read the word list \(url.path) (paths are relative to the file that names them)")
        }
        var words: [(String, SourcePlace)] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let word = stripComment(raw)
            if !word.isEmpty { words.append((word, SourcePlace(file: url.path, line: i + 1, column: 1))) }
        }
        if words.isEmpty { throw fail("the word list \(url.path) has no words") }
        return words
    }

    /// A line without its '#' comment and surrounding spaces.
    public static func stripComment(_ line: Substring) -> String {
        let body = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return body.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Word pairs in a file: `.json` (a list of pairs, or an object holding `definitional_pairs`
/// anywhere), else one pair per line, two words separated by spaces, a comma or a tab.
public enum PairListFile {
    public static func read(_ url: URL, place: SourcePlace) throws -> [(String, String)] {
        guard let data = try? Data(contentsOf: url) else { throw YAMLError(place, "cannot read the pairs file \(url.path)") }
        var words: [(String, String)] = []
        if url.pathExtension.lowercased() == "json" {
            let json: JSONValue
            do { json = try data.withUnsafeBytes { try JSONReader.parse($0, options: .lenient) } } catch let e as JSONSyntaxError {
                throw YAMLError(place, "pairs file \(url.path): not valid JSON (byte \(e.offset): \(e.message))")
            }
            // A list of lists of words, or nil.
            func pairs(_ v: JSONValue) -> [[String]]? {
                guard case .array(let items) = v else { return nil }
                var lists: [[String]] = []
                for item in items {
                    guard case .array(let words) = item else { return nil }
                    var list: [String] = []
                    for w in words { guard case .string(let word) = w else { return nil }; list.append(word) }
                    lists.append(list)
                }
                return lists
            }
            func find(_ v: JSONValue) -> [[String]]? {
                if let list = pairs(v) { return list }
                guard case .object(let members) = v else { return nil }
                if let d = v["definitional_pairs"].flatMap(pairs) { return d }
                for key in Set(members.map(\.0)).sorted() { if let f = v[key].flatMap(find) { return f } }
                return nil
            }
            guard let list = find(json) else {
                throw YAMLError(place, "pairs file \(url.path): expected a JSON list of pairs, or an object holding `definitional_pairs`")
            }
            for p in list {
                guard p.count == 2 else { throw YAMLError(place, "pairs file \(url.path): expected pairs of two words, found \(p)") }
                words.append((p[0], p[1]))
            }
        } else {
            let text = String(decoding: data, as: UTF8.self)
            for line in text.split(separator: "\n") {
                let parts = WordListFile.stripComment(line).split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" })
                if parts.isEmpty { continue }
                guard parts.count == 2 else { throw YAMLError(place, "pairs file \(url.path): expected two words per line, found '\(line)'") }
                words.append((String(parts[0]), String(parts[1])))
            }
        }
        if words.isEmpty { throw YAMLError(place, "pairs file \(url.path): no pairs") }
        return words
    }
}
