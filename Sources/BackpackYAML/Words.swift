import Foundation

// Words as the project's YAML files write them: a word, or a raw token id `{token: 383}`, with
// its place. Edit files and suites both name words this way.

/// A word as written in a YAML file, or a raw token id (`{token: 383}`).
public enum WordRef: Sendable, Equatable {
    case word(String, SourcePlace)
    case token(Int, SourcePlace)
    public var place: SourcePlace {
        switch self { case .word(_, let p), .token(_, let p): return p }
    }
    public var label: String {
        switch self { case .word(let w, _): return w; case .token(let t, _): return "#\(t)" }
    }
}

/// Where a list of words comes from.
public enum WordSource: Sendable {
    case inline([WordRef])
    /// One word per line, '#' comments; the path is relative to the YAML file.
    case file(String, SourcePlace)
}

extension YAMLReader {
    /// `word` or `{token: ID}`.
    public func word(_ node: YAMLNode, _ what: String) throws -> WordRef {
        if case .mapping = node {
            let m = try mapping(node, what, allowed: ["token"], form: "a word or {token: ID}")
            guard let t = m["token"] else { throw YAMLError(place(node), "\(what): expected {token: ID}") }
            return .token(try int(t, "\(what) token"), place(t))
        }
        guard case .scalar(let s) = node else {
            throw YAMLError(place(node), "\(what): expected a word (string) or {token: ID}, found \(describe(node))")
        }
        if s.string.isEmpty { throw YAMLError(place(node), "\(what): empty word") }
        return .word(s.string, place(node))
    }

    public func pair(_ node: YAMLNode, _ what: String) throws -> (WordRef, WordRef) {
        let items = try sequence(node, what, form: "a pair [a, b]")
        guard items.count == 2 else { throw YAMLError(place(node), "\(what): expected a pair [a, b], found \(items.count) items") }
        return (try word(items[0], what), try word(items[1], what))
    }

    public func pairs(_ node: YAMLNode, _ what: String) throws -> [(WordRef, WordRef)] {
        let items = try sequence(node, what, form: "a list of pairs [[a, b], ...]")
        if items.isEmpty { throw YAMLError(place(node), "\(what): expected at least one pair") }
        return try items.map { try pair($0, what) }
    }

    /// A list of words, or `{file: lists/x.txt}`.
    public func wordSource(_ node: YAMLNode, _ what: String = "words") throws -> WordSource {
        if case .mapping = node {
            let m = try mapping(node, what, allowed: ["file"], form: "a list of words or {file: lists/x.txt}")
            guard let f = m["file"] else { throw YAMLError(place(node), "\(what): expected {file: PATH}") }
            return .file(try path(f, "\(what) file"), place(f))
        }
        let items = try sequence(node, what, form: "a list of words or {file: lists/x.txt}")
        if items.isEmpty { throw YAMLError(place(node), "\(what): expected at least one word") }
        return .inline(try items.map { try word($0, "word") })
    }
}

extension WordSource {
    /// The words, reading a file relative to `base` (the YAML file naming it).
    public func words(relativeTo base: URL) throws -> [WordRef] {
        switch self {
        case .inline(let words): return words
        case .file(let path, let place):
            return try WordListFile.read(WordListFile.resolve(path, relativeTo: base), place: place).map { .word($0.word, $0.place) }
        }
    }
}
