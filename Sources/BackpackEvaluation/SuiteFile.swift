import BackpackYAML
import Foundation
import Yams

/// An error in a suite file or its data: the YAML layer's one error type (file:line:column).
public typealias SuiteError = YAMLError

/// The top-level mapping of a suite YAML file, with lookups that report file:line:column.
public struct SuiteDocument {
    public let url: URL
    let root: Node.Mapping
    let rootMark: Mark?

    public init(url: URL) throws {
        try self.init(text: try YAMLReader.text(url, what: "suite file"), url: url)
    }

    public init(text: String, url: URL) throws {
        self.url = url
        guard let node = try YAMLReader.compose(text, file: url.path), let mapping = node.mapping else {
            throw SuiteError(file: url.path, line: 1, column: 1, reason: "a suite file must be a YAML mapping (suite, version, kind, ...)")
        }
        root = mapping; rootMark = node.mark
    }

    public func error(_ node: Node?, _ reason: String) -> SuiteError {
        let mark = node?.mark ?? rootMark
        return SuiteError(file: url.path, line: mark?.line, column: mark?.column, reason: reason)
    }

    public var keys: [String] { root.keys.compactMap { $0.string } }
    public func node(_ key: String) -> Node? { root[key] }
    public func keyNode(_ key: String) -> Node? { root.keys.first { $0.string == key } }

    public func string(_ key: String) throws -> String {
        guard let n = root[key] else { throw error(nil, "missing key '\(key)'") }
        guard let s = n.scalar?.string else { throw error(n, "'\(key)' must be a string") }
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
        guard n.scalar != nil, let v = n.int else { throw error(n, "'\(key)' must be an integer") }
        if let minimum, v < minimum { throw error(n, "'\(key)' must be at least \(minimum), found \(v)") }
        return v
    }
    public func optionalInt(_ key: String, minimum: Int? = nil) throws -> Int? {
        guard root[key] != nil else { return nil }
        return try int(key, minimum: minimum)
    }
    public func bool(_ key: String, default value: Bool) throws -> Bool {
        guard let n = root[key] else { return value }
        guard n.scalar != nil, let v = n.bool else { throw error(n, "'\(key)' must be true or false") }
        return v
    }
    public func strings(_ key: String) throws -> [String] {
        guard let n = root[key] else { throw error(nil, "missing key '\(key)'") }
        return try stringList(n, key)
    }
    func stringList(_ n: Node, _ key: String) throws -> [String] {
        guard let seq = n.sequence else { throw error(n, "'\(key)' must be a list of strings") }
        return try seq.map { item in
            guard let s = item.scalar?.string else { throw error(item, "'\(key)': every entry must be a string") }
            return s
        }
    }
    /// A list given inline, or `{file: PATH}` (relative to the suite file; one entry a line, '#' comments).
    public func listOrFile(_ key: String) throws -> (values: [String], file: URL?) {
        guard let n = root[key] else { throw error(nil, "missing key '\(key)'") }
        if n.sequence != nil { return (try stringList(n, key), nil) }
        if let m = n.mapping, let f = m["file"] {
            guard let path = f.scalar?.string else { throw error(f, "'\(key).file' must be a path") }
            let url = WordListFile.resolve(path, relativeTo: self.url)
            let place = SourcePlace(file: self.url.path, line: f.mark?.line ?? 0, column: f.mark?.column ?? 0)
            let values = try WordListFile.read(url, place: place).map(\.word)
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
            guard let i = v.int else { throw error(v, "'\(key).\(name)' must be an integer") }
            out[name] = i
        }
        return out
    }
    /// Refuses keys that no part of the suite reads (typos).
    public func checkKeys(allowed: Set<String>) throws {
        for k in root.keys {
            guard let name = k.string else { throw error(k, "keys must be strings") }
            if !allowed.contains(name) {
                throw error(k, "unknown key '\(name)' (valid keys: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
    }
}
