import BackpackEditing
import BackpackJSON
import BackpackYAML
import Foundation

// A request's `interventions`: a list whose items are interventions in the edit file's own
// schema (backpack-edit/1), written as JSON, or `{"edit": NAME}`, an edit file loaded at start.
// JSON is YAML, so each inline item is read by the edit-file reader itself (EditFile.parse):
// the same keys, checks and messages. Two differences: the reader refuses every path (a request
// never names a file), and an error's place (line:column in the generated text) is turned back
// into the request's field path, e.g. `interventions[2].senses[0]`.

public struct RequestInterventions: Sendable {
    enum Item: Sendable {
        /// The item as sent, and the edit it parses to.
        case inline(JSONValue, EditFile)
        case loaded(LoadedEdit)
    }
    let items: [Item]
    /// The request field holding the list.
    let field: String

    public static let none = RequestInterventions(items: [], field: "interventions")
    public static let maxItems = 256

    public var isEmpty: Bool { items.isEmpty }
    public var count: Int { items.count }

    /// The edits in the order they are applied.
    public var files: [EditFile] {
        items.map { item in
            switch item {
            case .inline(_, let file): return file
            case .loaded(let edit): return edit.file
            }
        }
    }

    /// The pseudo-path an inline item is parsed under (its errors carry it as their file).
    static func url(_ index: Int) -> URL { URL(fileURLWithPath: "/request/interventions/\(index)") }

    /// The edit-file text that wraps one inline item.
    static func wrapped(_ item: JSONValue) -> String {
        "{\"schema\": \(jsonQuote(EditFile.schema)), \"name\": \"explore\", \"interventions\": [\(JSONText.compact(item))]}\n"
    }

    public static func parse(_ value: JSONValue?, field: String = "interventions", loaded: [LoadedEdit]) throws -> RequestInterventions {
        guard let value else { return RequestInterventions(items: [], field: field) }
        guard case .array(let list) = value else {
            throw ExplorerError(field: field, "expected a list of interventions (edit-file schema, as JSON) or {\"edit\": NAME}, found \(value.typeName)")
        }
        if list.count > maxItems { throw ExplorerError(field: field, "\(list.count) interventions; expected at most \(maxItems)") }
        var items: [Item] = []
        for (i, item) in list.enumerated() {
            let here = "\(field)[\(i)]"
            guard case .object(let members) = item else {
                throw ExplorerError(field: here, "expected an intervention (a JSON object such as {\"words\": [\"nurse\"], \"senses\": [10], \"scale\": 0}) or {\"edit\": NAME}, found \(item.typeName)")
            }
            if let reference = item["edit"] {
                guard members.count == 1, case .string(let name) = reference else {
                    throw ExplorerError(field: here + ".edit", "expected {\"edit\": NAME} alone, NAME a string naming a loaded edit file")
                }
                guard let edit = loaded.first(where: { $0.name == name }) else {
                    let names = loaded.map(\.name)
                    throw ExplorerError(field: here + ".edit", "no edit file named '\(name)' is loaded; " +
                        (names.isEmpty ? "none is (start explore with --edit FILE)" : "expected one of \(names.joined(separator: ", "))"))
                }
                items.append(.loaded(edit))
                continue
            }
            let text = wrapped(item)
            do {
                items.append(.inline(item, try EditFile.parse(text, url: url(i), allowsPaths: false)))
            } catch let error as EditError {
                throw explain(error, field: field, texts: [i: text])
            }
        }
        return RequestInterventions(items: items, field: field)
    }

    /// An edit error as an API error: the field path of the place it names, its message as the reader wrote it.
    func explain(_ error: EditError) -> ExplorerError {
        var texts: [Int: String] = [:]
        for (i, item) in items.enumerated() { if case .inline(let v, _) = item { texts[i] = Self.wrapped(v) } }
        if let i = items.indices.first(where: { if case .loaded(let e) = items[$0] { return e.file.url.path == error.file }; return false }) {
            return ExplorerError(field: "\(field)[\(i)]", "\(error)")
        }
        return Self.explain(error, field: field, texts: texts)
    }

    static func explain(_ error: EditError, field: String, texts: [Int: String]) -> ExplorerError {
        guard let i = texts.keys.first(where: { url($0).path == error.file }), let text = texts[i] else {
            return ExplorerError(field: field, error.message)
        }
        var path = "\(field)[\(i)]"
        if let place = error.place, let root = try? YAMLReader.compose(text, file: error.file),
           let found = fieldPath(to: place, in: root, at: ""), found.hasPrefix(".interventions[0]") {
            path += found.dropFirst(".interventions[0]".count)
        }
        return ExplorerError(field: path, error.message)
    }

    /// The path (".key[2].other") of the deepest node or mapping key at `place`.
    static func fieldPath(to place: SourcePlace, in node: YAMLNode, at path: String) -> String? {
        func at(_ n: YAMLNode) -> Bool { n.mark.line == place.line && n.mark.column == place.column }
        switch node {
        case .mapping(let m):
            for pair in m.pairs {
                let sub = path + "." + (pair.key.string ?? "?")
                if let deeper = fieldPath(to: place, in: pair.value, at: sub) { return deeper }
                if at(pair.key) { return sub }
            }
        case .sequence(let s):
            for (i, item) in s.enumerated() {
                if let deeper = fieldPath(to: place, in: item, at: "\(path)[\(i)]") { return deeper }
            }
        case .scalar: break
        }
        return at(node) ? path : nil
    }

    // MARK: - As an edit file

    /// The interventions as a `backpack-edit/1` file: inline items as sent, loaded files'
    /// interventions as written there, with the paths they name made absolute (they were
    /// relative to a file in another folder).
    public func editFile(name: String, description: String) -> String {
        var out = "schema: \(EditFile.schema)\nname: \(YAMLText.scalar(name))\ndescription: \(YAMLText.scalar(description))\ninterventions:\n"
        for item in items {
            switch item {
            case .inline(let value, _):
                out += YAMLText.listItem(YAMLText.Tree(value), indent: 2)
            case .loaded(let edit):
                out += "  # from \(edit.file.url.path) (sha256 \(edit.file.sha256))\n"
                guard let root = try? YAMLReader.compose(edit.file.text, file: edit.file.url.path),
                      let list = root.mapping?["interventions"]?.sequence else { continue }
                for node in list { out += YAMLText.listItem(YAMLText.Tree(node, absolutePathsFrom: edit.file.url), indent: 2) }
            }
        }
        return out
    }
}

/// Compact JSON text of a value (the inverse of JSONReader, order kept).
enum JSONText {
    static func compact(_ v: JSONValue) -> String {
        switch v {
        case .object(let members): return "{" + members.map { jsonQuote($0.0) + ": " + compact($0.1) }.joined(separator: ", ") + "}"
        case .array(let items): return "[" + items.map(compact).joined(separator: ", ") + "]"
        case .string(let s): return jsonQuote(s)
        case .integer(let i): return String(i)
        case .double(let d): return d.isFinite ? "\(d)" : "null"
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        }
    }
}

/// Block YAML for an edit file: mappings as blocks, lists of scalars (and of pairs) inline.
enum YAMLText {
    indirect enum Tree {
        case map([(String, Tree)])
        case list([Tree])
        /// Text and whether it must be quoted to keep its meaning.
        case scalar(String, quoted: Bool)

        init(_ v: JSONValue) {
            switch v {
            case .object(let m): self = .map(m.map { ($0.0, Tree($0.1)) })
            case .array(let a): self = .list(a.map(Tree.init))
            case .string(let s): self = .scalar(s, quoted: true)
            default: self = .scalar(JSONText.compact(v), quoted: false)
            }
        }

        /// A node of an edit file; the values of `file`, `suite` and a `pairs` path made absolute
        /// against the file they were written in.
        init(_ node: YAMLNode, absolutePathsFrom url: URL, key: String? = nil) {
            switch node {
            case .mapping(let m):
                self = .map(m.pairs.map { p in
                    let k = p.key.string ?? ""
                    return (k, Tree(p.value, absolutePathsFrom: url, key: k))
                })
            case .sequence(let s): self = .list(s.map { Tree($0, absolutePathsFrom: url) })
            case .scalar(let s):
                if let key, ["file", "suite", "pairs"].contains(key) {
                    self = .scalar(WordListFile.resolve(s.string, relativeTo: url).path, quoted: true)
                } else {
                    self = .scalar(s.string, quoted: !s.isPlain)
                }
            }
        }

        var isFlat: Bool {
            switch self {
            case .scalar: return true
            case .list(let items): return items.allSatisfy { if case .map = $0 { return false }; return $0.isFlat }
            case .map(let m): return m.isEmpty
            }
        }

        var inline: String {
            switch self {
            case .scalar(let s, let quoted): return quoted ? jsonQuote(s) : s
            case .list(let items): return "[" + items.map(\.inline).joined(separator: ", ") + "]"
            case .map(let m): return "{" + m.map { YAMLText.key($0.0) + ": " + $0.1.inline }.joined(separator: ", ") + "}"
            }
        }
    }

    static func key(_ k: String) -> String {
        k.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil ? k : jsonQuote(k)
    }

    /// A string scalar: plain when YAML reads it back as the same string, else quoted.
    static func scalar(_ s: String) -> String {
        s.range(of: #"^[A-Za-z][A-Za-z0-9 _.,()/-]*$"#, options: .regularExpression) != nil
            && !["true", "false", "null", "yes", "no", "on", "off"].contains(s.lowercased()) && !s.hasSuffix(" ") ? s : jsonQuote(s)
    }

    /// `- ` followed by the tree, at `indent` spaces.
    static func listItem(_ tree: Tree, indent: Int) -> String {
        let pad = String(repeating: " ", count: indent)
        guard case .map(let members) = tree, !members.isEmpty else { return pad + "- " + tree.inline + "\n" }
        var out = ""
        for (i, (k, v)) in members.enumerated() {
            out += pad + (i == 0 ? "- " : "  ") + block(key: k, v, indent: indent + 2)
        }
        return out
    }

    /// `key: value` with a nested block for a mapping (or a list of mappings).
    static func block(key k: String, _ v: Tree, indent: Int) -> String {
        if v.isFlat { return key(k) + ": " + v.inline + "\n" }
        let pad = String(repeating: " ", count: indent + 2)
        switch v {
        case .map(let members):
            return key(k) + ":\n" + members.map { pad + block(key: $0.0, $0.1, indent: indent + 2) }.joined()
        case .list(let items):
            return key(k) + ":\n" + items.map { listItem($0, indent: indent + 2) }.joined()
        case .scalar: return key(k) + ": " + v.inline + "\n"
        }
    }
}
