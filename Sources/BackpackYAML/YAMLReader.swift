import Foundation

/// Reads typed values out of YAML nodes (YAMLNode), with the node's place in every error. Every
/// YAML text the project reads (edit files, suites, sweeps, model-card front matter) is composed by
/// `compose`, under `YAMLLimits`; nothing else in the project parses YAML.
public struct YAMLReader: Sendable {
    public let file: String
    /// Where this file's schema allows `{sweep: [...]}` (see YAMLSweep), for the error met at any
    /// other place; nil: the file has no sweeps.
    public var sweepPlaces: String?
    /// false: a text that may not name files (an explorer request): `path` refuses every path.
    public var allowsPaths = true
    public init(file: String, sweepPlaces: String? = nil) { self.file = file; self.sweepPlaces = sweepPlaces }

    /// A path to another file (a word list, a pair list, a suite), relative to this file; refused
    /// where paths are not allowed, so that no path ever comes from a request.
    public func path(_ node: YAMLNode, _ what: String) throws -> String {
        guard allowsPaths else {
            throw YAMLError(place(node), "\(what): a request cannot name a file; give the words or pairs inline, or load an edit file that names it (backpack explore --edit FILE)")
        }
        return try string(node, what)
    }

    /// The document's root node (nil: an empty document): a syntax error names its line and
    /// column; a text over `limits` (size, depth, nodes with aliases expanded) is refused.
    public static func compose(_ text: String, file: String, limits: YAMLLimits = .standard) throws -> YAMLNode? {
        try YAMLNode.compose(text, file: file, limits: limits)
    }

    /// The file's text (UTF-8), or an error naming it and what it was read for.
    public static func text(_ url: URL, what: String) throws -> String {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw YAMLError(file: url.path, "cannot read the \(what) (\(error.localizedDescription))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw YAMLError(file: url.path, "not UTF-8 text; expected a YAML \(what)")
        }
        return text
    }

    public func place(_ node: YAMLNode) -> SourcePlace {
        SourcePlace(file: file, line: node.mark.line, column: node.mark.column)
    }

    public func describe(_ node: YAMLNode) -> String {
        if YAMLSweep.isSweep(node) { return "a sweep, which is not supported here (\(sweepRule))" }
        switch node {
        case .scalar(let s): return "'\(s.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    var sweepRule: String {
        sweepPlaces.map { "sweeps are supported for \($0)" } ?? "this file has no sweeps"
    }

    /// A mapping whose keys are plain words from `allowed` (a typo is an error listing them), each once.
    public func mapping(_ node: YAMLNode, _ what: String, allowed: [String], form: String) throws -> [String: YAMLNode] {
        if !allowed.contains(YAMLSweep.key), YAMLSweep.isSweep(node) {
            throw YAMLError(place(node), "\(what): a sweep is not supported here (\(sweepRule)); expected \(form)")
        }
        guard case .mapping(let m) = node else {
            throw YAMLError(place(node), "\(what): expected \(form), found \(describe(node))")
        }
        var out: [String: YAMLNode] = [:]
        for (key, value) in m {
            guard case .scalar(let k) = key else { throw YAMLError(place(key), "\(what): keys must be plain words") }
            guard allowed.contains(k.string) else {
                throw YAMLError(place(key), "\(what): unknown key '\(k.string)'; expected one of \(allowed.joined(separator: ", "))")
            }
            if out[k.string] != nil { throw YAMLError(place(key), "\(what): key '\(k.string)' appears twice") }
            out[k.string] = value
        }
        return out
    }

    public func sequence(_ node: YAMLNode, _ what: String, form: String) throws -> [YAMLNode] {
        guard case .sequence(let s) = node else {
            throw YAMLError(place(node), "\(what): expected \(form), found \(describe(node))")
        }
        return Array(s)
    }

    public func string(_ node: YAMLNode, _ what: String) throws -> String {
        guard case .scalar(let s) = node else {
            throw YAMLError(place(node), "\(what): expected a string, found \(describe(node))")
        }
        return s.string
    }

    public func int(_ node: YAMLNode, _ what: String) throws -> Int {
        guard case .scalar(let s) = node, s.isPlain, let v = Int(s.string) else {
            throw YAMLError(place(node), "\(what): expected an integer, found \(describe(node))")
        }
        return v
    }

    /// A number that is finite in the Float precision it is used in (1e39 overflows Float to infinity).
    public func number(_ node: YAMLNode, _ what: String) throws -> Float {
        guard case .scalar(let s) = node, s.isPlain, let v = Double(s.string), v.isFinite else {
            throw YAMLError(place(node), "\(what): expected a finite number, found \(describe(node))")
        }
        guard Float(v).isFinite else {
            throw YAMLError(place(node), "\(what): \(s.string) does not fit in a 32-bit float (largest magnitude \(Float.greatestFiniteMagnitude)); expected a finite number")
        }
        return Float(v)
    }

    /// `true` or `false` (as YAML 1.2's core schema writes them, any case).
    public func bool(_ node: YAMLNode, _ what: String) throws -> Bool {
        guard case .scalar(let s) = node, s.isPlain, let v = ["true": true, "false": false][s.string.lowercased()] else {
            throw YAMLError(place(node), "\(what): expected true or false, found \(describe(node))")
        }
        return v
    }
}
