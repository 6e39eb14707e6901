import BackpackYAML
import Foundation

/// An error in a suite file or in the data it names (a CSV row, a JSON line, a token beyond the
/// vocabulary): where (`file:line:column` when known) and what was expected. The YAML layer's
/// errors reach callers as SuiteErrors too (`SuiteError.wrapping`).
public struct SuiteError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let line: Int?
    public let column: Int?
    public let reason: String
    public init(file: String, line: Int? = nil, column: Int? = nil, reason: String) {
        self.file = file; self.line = line; self.column = column; self.reason = reason
    }
    public init(_ place: SourcePlace, _ reason: String) { self.init(file: place.file, line: place.line, column: place.column, reason: reason) }
    public init(_ error: YAMLError) { self.init(file: error.file, line: error.line, column: error.column, reason: error.message) }
    public var message: String { reason }
    public var description: String {
        var place = file
        if let line { place += ":\(line)"; if let column { place += ":\(column)" } }
        return "\(place): \(reason)"
    }

    /// A data file's text (UTF-8); an error naming the file when it cannot be read as such.
    public static func text(of url: URL) throws -> String {
        do { return try String(contentsOf: url, encoding: .utf8) } catch {
            throw SuiteError(file: url.path, reason: "cannot read as UTF-8 text: \(error.localizedDescription)")
        }
    }

    /// Runs `body`, turning the YAML layer's errors into suite errors.
    public static func wrapping<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as YAMLError { throw SuiteError(error) }
    }
}

/// The top-level mapping of a suite YAML file, composed once by the YAML layer, with lookups that
/// report file:line:column.
public struct SuiteDocument: Sendable {
    public let url: URL
    public let root: YAMLMapping
    public let reader: YAMLReader

    public init(url: URL) throws {
        try self.init(text: try SuiteError.wrapping { try YAMLReader.text(url, what: "suite file") }, url: url)
    }

    public init(text: String, url: URL) throws {
        self.url = url
        reader = YAMLReader(file: url.path)
        guard let node = try SuiteError.wrapping({ try YAMLReader.compose(text, file: url.path) }), case .mapping(let m) = node else {
            throw SuiteError(file: url.path, line: 1, column: 1, reason: "a suite file must be a YAML mapping (suite, version, kind, ...)")
        }
        root = m
    }

    /// An error at `node` (at the top of the file when nil).
    public func error(_ node: YAMLNode?, _ reason: String) -> SuiteError {
        SuiteError(reader.place(node ?? .mapping(root)), reason)
    }

    public var keys: [String] { root.keyStrings }
    public func node(_ key: String) -> YAMLNode? { root[key] }
    public func keyNode(_ key: String) -> YAMLNode? { root.first { $0.key.string == key }?.key }

    public func string(_ key: String) throws -> String {
        guard let n = root[key] else { throw error(nil, "missing key '\(key)'") }
        guard let s = n.string else { throw error(n, "'\(key)' must be a string") }
        return s
    }
    public func optionalString(_ key: String) throws -> String? {
        guard root[key] != nil else { return nil }
        return try string(key)
    }
    public func int(_ key: String, default value: Int? = nil, minimum: Int? = nil) throws -> Int {
        guard let n = root[key] else {
            if let value { return value }
            throw error(nil, "missing key '\(key)'")
        }
        guard let v = try? reader.int(n, key) else { throw error(n, "'\(key)' must be an integer") }
        if let minimum, v < minimum { throw error(n, "'\(key)' must be at least \(minimum), found \(v)") }
        return v
    }
    public func optionalInt(_ key: String, minimum: Int? = nil) throws -> Int? {
        guard root[key] != nil else { return nil }
        return try int(key, minimum: minimum)
    }
    public func bool(_ key: String, default value: Bool) throws -> Bool {
        guard let n = root[key] else { return value }
        guard let v = try? reader.bool(n, key) else { throw error(n, "'\(key)' must be true or false") }
        return v
    }
    public func strings(_ key: String) throws -> [String] {
        guard let n = root[key] else { throw error(nil, "missing key '\(key)'") }
        return try stringList(n, key)
    }
    func stringList(_ n: YAMLNode, _ key: String) throws -> [String] {
        guard let seq = n.sequence else { throw error(n, "'\(key)' must be a list of strings") }
        return try seq.map { item in
            guard let s = item.string else { throw error(item, "'\(key)': every entry must be a string") }
            return s
        }
    }
    /// A list given inline, or `{file: PATH}` (relative to the suite file; one entry a line, '#' comments).
    public func listOrFile(_ key: String) throws -> (values: [String], file: URL?) {
        guard let n = root[key] else { throw error(nil, "missing key '\(key)'") }
        if n.sequence != nil { return (try stringList(n, key), nil) }
        if let m = n.mapping, let f = m["file"] {
            guard let path = f.string else { throw error(f, "'\(key).file' must be a path") }
            let url = WordListFile.resolve(path, relativeTo: self.url)
            let values = try SuiteError.wrapping { try WordListFile.read(url, place: reader.place(f)).map(\.word) }
            return (values, url)
        }
        throw error(n, "'\(key)' must be a list or {file: PATH}")
    }
    /// A nested flat mapping of integers, e.g. `select: {every: 20, offset: 19}`.
    public func intMapping(_ key: String) throws -> [String: Int]? {
        guard let n = root[key] else { return nil }
        guard let m = n.mapping else { throw error(n, "'\(key)' must be a mapping") }
        var out: [String: Int] = [:]
        for (k, v) in m {
            guard let name = k.string else { throw error(k, "'\(key)': keys must be strings") }
            guard let i = try? reader.int(v, name) else { throw error(v, "'\(key).\(name)' must be an integer") }
            out[name] = i
        }
        return out
    }
    /// Refuses keys that no part of the suite reads (typos).
    public func checkKeys(allowed: Set<String>) throws {
        for (k, _) in root {
            guard let name = k.string else { throw error(k, "keys must be strings") }
            if !allowed.contains(name) {
                throw error(k, "unknown key '\(name)' (valid keys: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
    }
}
