import Foundation
import Yams

// The project's YAML document tree. Every YAML text the toolkit reads (edit files, suites, sweeps,
// the front matter of model cards) is composed here, once, under the limits below, into these
// plain values; no Yams type leaves this module.
//
// Why the limits: YAML aliases make a tree of 10^10 nodes out of a few hundred bytes (an "alias
// bomb"), and any code that walks or converts such a tree (Yams.load did, for model cards) runs
// until memory is exhausted. libyaml's composer shares the aliased subtrees, so composing is cheap;
// the expansion is counted here before anything walks it, and stops at `maxNodes`.

/// The size limits of every YAML text the toolkit reads.
public struct YAMLLimits: Sendable {
    /// Bytes of text (the largest shipped edit file or suite is a few kilobytes).
    public var maxBytes: Int
    /// Nesting depth of mappings and sequences.
    public var maxDepth: Int
    /// Nodes of the document with every alias expanded.
    public var maxNodes: Int
    public init(maxBytes: Int = 4 << 20, maxDepth: Int = 64, maxNodes: Int = 200_000) {
        self.maxBytes = maxBytes; self.maxDepth = maxDepth; self.maxNodes = maxNodes
    }
    public static let standard = YAMLLimits()
}

/// Where a node starts in its text (1-based, as libyaml counts: columns in Unicode scalars).
public struct YAMLMark: Sendable, Hashable {
    public let line: Int
    public let column: Int
    public init(line: Int, column: Int) { self.line = line; self.column = column }
}

/// A scalar: its text and whether it was written plain (unquoted, so `1` is a number and `"1"` is not).
public struct YAMLScalar: Sendable, Hashable {
    public let string: String
    public let isPlain: Bool
    public let mark: YAMLMark
    public init(_ string: String, isPlain: Bool = true, mark: YAMLMark) { self.string = string; self.isPlain = isPlain; self.mark = mark }
}

/// A mapping's pairs in the order written.
public struct YAMLMapping: RandomAccessCollection, Sendable, Hashable {
    public typealias Element = (key: YAMLNode, value: YAMLNode)
    public var pairs: [YAMLPair]
    public let mark: YAMLMark
    public init(_ pairs: [YAMLPair], mark: YAMLMark) { self.pairs = pairs; self.mark = mark }
    public var startIndex: Int { pairs.startIndex }
    public var endIndex: Int { pairs.endIndex }
    public subscript(position: Int) -> Element { (pairs[position].key, pairs[position].value) }
    /// The value of the first pair whose key is the plain text `key`.
    public subscript(key: String) -> YAMLNode? { pairs.first { $0.key.string == key }?.value }
    /// The keys' texts (non-scalar keys left out).
    public var keyStrings: [String] { pairs.compactMap { $0.key.string } }
}

public struct YAMLPair: Sendable, Hashable {
    public var key: YAMLNode
    public var value: YAMLNode
    public init(key: YAMLNode, value: YAMLNode) { self.key = key; self.value = value }
}

/// A sequence's items in order.
public struct YAMLSequence: RandomAccessCollection, Sendable, Hashable {
    public var items: [YAMLNode]
    public let mark: YAMLMark
    public init(_ items: [YAMLNode], mark: YAMLMark) { self.items = items; self.mark = mark }
    public var startIndex: Int { items.startIndex }
    public var endIndex: Int { items.endIndex }
    public subscript(position: Int) -> YAMLNode { items[position] }
}

/// One node of a composed document.
public indirect enum YAMLNode: Sendable, Hashable {
    case scalar(YAMLScalar)
    case mapping(YAMLMapping)
    case sequence(YAMLSequence)

    public var mark: YAMLMark {
        switch self {
        case .scalar(let s): return s.mark
        case .mapping(let m): return m.mark
        case .sequence(let s): return s.mark
        }
    }
    /// The text of a scalar; nil for a mapping or a sequence.
    public var string: String? { if case .scalar(let s) = self { return s.string }; return nil }
    public var mapping: YAMLMapping? { if case .mapping(let m) = self { return m }; return nil }
    public var sequence: YAMLSequence? { if case .sequence(let s) = self { return s }; return nil }
}

extension YAMLNode {
    /// The text composed into a tree, or nil for an empty document. Errors name the file and,
    /// for syntax errors, the line and column; a text over the limits is refused before (size)
    /// or instead of (depth, expanded nodes) being walked.
    static func compose(_ text: String, file: String, limits: YAMLLimits) throws -> YAMLNode? {
        let bytes = text.utf8.count
        if bytes > limits.maxBytes {
            throw YAMLError(file: file, "YAML text of \(bytes) bytes; expected at most \(limits.maxBytes) bytes")
        }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch let error as YamlError {
            switch error {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
                throw YAMLError(SourcePlace(file: file, line: mark.line, column: mark.column), "invalid YAML syntax: \(problem)")
            default:
                throw YAMLError(file: file, "invalid YAML (\(error))")
            }
        } catch {
            throw YAMLError(file: file, "invalid YAML (\(error))")
        }
        guard let root else { return nil }
        var budget = limits.maxNodes
        try count(root, depth: 0, budget: &budget, limits: limits, file: file)
        return convert(root)
    }

    /// Counts the nodes of the tree as if every alias were expanded, stopping as soon as the budget
    /// or the depth limit is exceeded (so an alias bomb costs at most `maxNodes` steps).
    private static func count(_ node: Node, depth: Int, budget: inout Int, limits: YAMLLimits, file: String) throws {
        budget -= 1
        func place() -> SourcePlace { SourcePlace(file: file, line: node.mark?.line ?? 0, column: node.mark?.column ?? 0) }
        if budget < 0 {
            throw YAMLError(place(), "the YAML document expands to more than \(limits.maxNodes) nodes (aliases repeat their anchor's whole subtree); expected a smaller document")
        }
        if depth > limits.maxDepth {
            throw YAMLError(place(), "YAML nesting deeper than \(limits.maxDepth) levels; expected a shallower document")
        }
        switch node {
        case .scalar, .alias: break
        case .mapping(let m):
            for (k, v) in m {
                try count(k, depth: depth + 1, budget: &budget, limits: limits, file: file)
                try count(v, depth: depth + 1, budget: &budget, limits: limits, file: file)
            }
        case .sequence(let s):
            for item in s { try count(item, depth: depth + 1, budget: &budget, limits: limits, file: file) }
        }
    }

    private static func convert(_ node: Node) -> YAMLNode {
        let mark = YAMLMark(line: node.mark?.line ?? 0, column: node.mark?.column ?? 0)
        switch node {
        case .scalar(let s): return .scalar(YAMLScalar(s.string, isPlain: s.style == .plain, mark: mark))
        case .mapping(let m): return .mapping(YAMLMapping(m.map { YAMLPair(key: convert($0.key), value: convert($0.value)) }, mark: mark))
        case .sequence(let s): return .sequence(YAMLSequence(s.map(convert), mark: mark))
        // libyaml's composer resolves aliases to their anchor's node; one left unresolved is kept as text.
        case .alias(let a): return .scalar(YAMLScalar("*\(a)", isPlain: false, mark: mark))
        }
    }
}

/// The YAML front matter of a Markdown file (a model card's `---` block).
public enum YAMLFrontMatter {
    /// The front matter's top-level scalar values (nested values are left out), read through the
    /// YAML layer and its limits; [:] when the text has no front matter or it is not a mapping.
    /// A front matter that is not valid YAML, or over the limits, is an error naming the file.
    public static func scalars(markdown text: String, file: String) throws -> [String: String] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        guard lines.first == "---", let end = lines.dropFirst().firstIndex(of: "---") else { return [:] }
        // Line numbers of errors count from the file's first line (the `---`).
        let yaml = "\n" + lines[1..<end].joined(separator: "\n")
        guard let root = try YAMLReader.compose(yaml, file: file) else { return [:] }
        guard case .mapping(let m) = root else { return [:] }
        var out: [String: String] = [:]
        for (k, v) in m {
            if let key = k.string, let value = v.string, out[key] == nil { out[key] = value }
        }
        return out
    }
}
