import BackpackIO
import BackpackYAML
import Foundation

// An edit file (schema `backpack-edit/1`, YAML) decoded into typed values; each operation's
// value is read by its own type (Operations/, listed by EditOperations). Decoding checks the structure (keys, types, ranges that need no model); everything
// that needs the model (senses < k, words in the vocabulary) is checked by `Editor.plan`
// before any computation. Every error says `file:line:column: message` and the expected form.

/// An error in an edit file or in what it names (word lists, pair files, fit suites), or an edit
/// that does not fit the model: where (`file:line:column` when the place is known) and what was
/// expected. The YAML layer's errors reach callers as EditErrors too (`EditError.wrapping`);
/// both print as PlacedError says.
public struct EditError: PlacedError {
    public let place: SourcePlace?
    public let file: String
    public let message: String
    public init(_ place: SourcePlace, _ message: String) { self.place = place; file = place.file; self.message = message }
    public init(file: String, _ message: String) { place = nil; self.file = file; self.message = message }
    public init(_ error: YAMLError) { place = error.place; file = error.file; message = error.message }

    /// Runs `body`, turning the YAML layer's errors into edit errors.
    public static func wrapping<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as YAMLError { throw EditError(error) }
    }
}

/// Extra spellings of each word, opt-in.
public enum WordVariant: String, Sendable, CaseIterable {
    case capitalized, upper
    case noSpace = "no_space"
}

/// What to do with a word that is several tokens.
public enum PiecesPolicy: String, Sendable, CaseIterable {
    /// The default: an error listing the pieces.
    case error
    /// Edit every piece.
    case all
    /// Edit the first piece only.
    case first
    /// Leave the word out (recorded in the outcome); the paper's protocol for multi-token nouns.
    case skip
}

/// Which tokens an intervention edits.
public enum TokenSelection: Sendable {
    case words(WordSource, variants: [WordVariant], pieces: PiecesPolicy)
    case tokens([(Int, SourcePlace)])
    /// Every token: folded into the sense network's last layer.
    case vocabulary
    /// None given: the operation's own words (`EditOperation.hasOwnWords`; fit_scale: its suite's `nouns`).
    case operationWords(variants: [WordVariant], pieces: PiecesPolicy)
}

public enum SenseSelection: Sendable {
    case indices([(Int, SourcePlace)])
    case all
    /// The `top` senses by mean contribution to logit(a) - logit(b) over the selected words.
    case localized(a: WordRef, b: WordRef, top: Int, SourcePlace)
    /// `by: contextual`: the `top` senses by their attributed contribution at the word's position
    /// over a pronoun suite's prompts (path relative to the edit file), alpha included.
    case localizedContextual(a: WordRef, b: WordRef, top: Int, suite: String, SourcePlace)
}

/// What the operation changes.
public enum EditTarget: String, Sendable {
    /// Sense vectors (Backpack models); the default.
    case senses
    /// The input embedding rows (wte) of the words, untying the output embedding (the paper's
    /// Transformer baseline).
    case inputEmbedding = "input_embedding"
}

public struct Intervention: Sendable {
    public let name: String?
    public let place: SourcePlace
    public let selection: TokenSelection
    public let senses: SenseSelection
    /// One of `EditOperations.all`; cast to its type (`as? Scale`) to read its parameters.
    public let operation: any EditOperation
    public let target: EditTarget

    /// The keys of an intervention besides its operation's.
    public static let keys = ["name", "words", "tokens", "scope", "variants", "pieces", "senses", "target"]
}

public struct EditFile: Sendable {
    public static let schema = "backpack-edit/1"
    /// Where `{sweep: [...]}` may stand in place of a value: the operations' `sweepable`
    /// parameters, explicit sense sets and localized `top`.
    public static var sweepPlaces: String {
        let operations = EditOperations.all
        let values = operations.filter { $0.sweepable.contains($0.name) }.map { "`\($0.name)`" }
        let keys = operations.flatMap { op in op.sweepable.filter { $0 != op.name }.map { "\(op.name) `\($0)`" } }
        return "an intervention's " + listed(values + ["`senses` (explicit sense sets)", "localized `top`"] + keys, "and")
    }
    public let url: URL
    /// The file verbatim (kept for manifests); for a point of a sweep, followed by a comment line
    /// naming its grid coordinates, so that each point has its own text and SHA-256.
    public let text: String
    public let sha256: String
    public let name: String
    public let description: String?
    public let references: [String]
    public let interventions: [Intervention]
    /// Where this edit sits in the file's sweep grid (empty: the file has no sweeps).
    public let grid: [GridCoordinate]

    public static func load(_ url: URL) throws -> EditFile {
        try parse(try EditError.wrapping { try YAMLReader.text(url, what: "edit file (schema: \(schema))") }, url: url)
    }

    /// Every point of the file's sweep grid (one edit when the file has no sweeps).
    public static func loadGrid(_ url: URL) throws -> [EditFile] {
        try expand(try EditError.wrapping { try YAMLReader.text(url, what: "edit file (schema: \(schema))") }, url: url)
    }

    /// An edit as given on the command line: `PATH`, or `PATH[axis=value,...]`, one point of the
    /// file's sweep grid, written as `eval` names the variant (e.g.
    /// `Edits/sweep-seed-debias-localized.yaml[scale=0.4]` for the variant
    /// `sweep-seed-debias-localized[scale=0.4]`). The path and the point, if one is named.
    public static func argument(_ argument: String) -> (url: URL, point: String?) {
        // A selector is a trailing [...] after the file name; a file whose name ends so wins.
        let nameStart = argument.lastIndex(of: "/").map { argument.index(after: $0) } ?? argument.startIndex
        guard argument.hasSuffix("]"), !FileManager.default.fileExists(atPath: argument),
              let open = argument[nameStart...].firstIndex(of: "[") else {
            return (URL(fileURLWithPath: argument), nil)
        }
        let inner = argument[argument.index(after: open)..<argument.index(before: argument.endIndex)]
        return (URL(fileURLWithPath: String(argument[..<open])), String(inner))
    }

    /// The edits an argument names (`argument(_:)`): every grid point of the file, or the one named.
    public static func loadGrid(argument: String) throws -> [EditFile] {
        let (url, point) = Self.argument(argument)
        let points = try loadGrid(url)
        guard let point else { return points }
        let names = points.map { $0.grid.map(\.description).joined(separator: ",") }
        guard let i = names.firstIndex(of: point.replacingOccurrences(of: " ", with: "")) else {
            if points.count == 1 && points[0].grid.isEmpty {
                throw EditError(file: url.path, "[\(point)]: this file has no sweeps, so there is no grid point to pick; give the path alone")
            }
            throw EditError(file: url.path, "[\(point)]: no such grid point; expected one of \(names.map { "[\($0)]" }.joined(separator: ", "))")
        }
        return [points[i]]
    }

    /// One edit from an argument: the file (refused if it sweeps), or the grid point it names.
    public static func load(argument: String) throws -> EditFile {
        let (url, point) = Self.argument(argument)
        if point == nil { return try load(url) }
        return try loadGrid(argument: argument)[0]
    }

    /// One edit; a file that sweeps over more than one value is refused, since one edit is wanted.
    /// `allowsPaths` false: a text that may not name other files (an explorer request's).
    public static func parse(_ text: String, url: URL, allowsPaths: Bool = true) throws -> EditFile {
        try EditError.wrapping { try parseOne(text, url: url, allowsPaths: allowsPaths) }
    }

    static func parseOne(_ text: String, url: URL, allowsPaths: Bool = true) throws -> EditFile {
        let points = try expandPoints(text, url: url, allowsPaths: allowsPaths)
        guard points.count == 1, let only = points.first else {
            let axes = points.first?.grid.map(\.axis).joined(separator: ", ") ?? ""
            let example = url.path + "[" + (points.first?.grid.map(\.description).joined(separator: ",") ?? "") + "]"
            let message = "a sweep (over \(axes)) expands to \(points.count) variants; one edit is needed here: evaluate the grid with `backpack eval --edit`, or pick one point, e.g. --edit '\(example)'"
            // At the first sweep of the file.
            if let root = try YAMLReader.compose(text, file: url.path), let site = sweepSites(root).first,
               let node = YAMLSweep.node(root, at: site.path) {
                throw EditError(Reader(file: url.path).place(node), message)
            }
            throw EditError(file: url.path, message)
        }
        return only
    }

    /// The edits of every grid point, each parsed and checked on its own (a value that is wrong
    /// for the place it is swept into is an error at its own line and column).
    public static func expand(_ text: String, url: URL) throws -> [EditFile] {
        try EditError.wrapping { try expandPoints(text, url: url) }
    }

    static func expandPoints(_ text: String, url: URL, allowsPaths: Bool = true) throws -> [EditFile] {
        let file = url.path
        let root = try YAMLReader.compose(text, file: file)
        guard let root else { throw EditError(file: file, "empty file; expected a mapping with `schema: \(schema)` and `interventions:`") }
        var r = Reader(file: file, sweepPlaces: sweepPlaces)
        r.allowsPaths = allowsPaths
        let points = try YAMLSweep.expand(root, sites: sweepSites(root), reader: r)
        return try points.map { point in
            var pointText = text
            if !point.coordinates.isEmpty {
                if !pointText.hasSuffix("\n") { pointText += "\n" }
                pointText += "# sweep point: " + point.coordinates.map(\.description).joined(separator: ", ") + "\n"
            }
            return try parse(point.root, text: pointText, url: url, grid: point.coordinates, reader: r)
        }
    }

    /// The sweep nodes at the places that allow one (`sweepPlaces`). A sweep anywhere else is
    /// left in the tree, where the reader refuses it with its place.
    static func sweepSites(_ root: YAMLNode) -> [SweepSite] {
        func pairs(_ n: YAMLNode?) -> [(index: Int, key: String, value: YAMLNode)] {
            guard case .mapping(let m)? = n else { return [] }
            return m.enumerated().compactMap { i, p in
                if case .scalar(let k) = p.key { return (i, k.string, p.value) } else { return nil }
            }
        }
        guard let list = pairs(root).first(where: { $0.key == "interventions" }), case .sequence(let items) = list.value else { return [] }
        let operations = EditOperations.all
        var sites: [SweepSite] = []
        for (j, item) in items.enumerated() {
            let fields = pairs(item)
            var label = "intervention\(j + 1)"
            if let n = fields.first(where: { $0.key == "name" }), case .scalar(let s) = n.value, !s.string.isEmpty { label = s.string }
            let base = [list.index, j]
            func site(_ path: [Int], _ key: String) { sites.append(SweepSite(path: base + path, key: key, qualifiedKey: "\(label).\(key)")) }
            for f in fields {
                if f.key == "senses" {
                    if YAMLSweep.isSweep(f.value) { site([f.index], f.key); continue }
                    for l in pairs(f.value) where l.key == "localized" {
                        for t in pairs(l.value) where t.key == "top" && YAMLSweep.isSweep(t.value) { site([f.index, l.index, t.index], "top") }
                    }
                    continue
                }
                guard let op = operations.first(where: { $0.name == f.key }) else { continue }
                // the value itself (scale: {sweep: ...}), or parameters of its mapping
                if op.sweepable.contains(op.name) && YAMLSweep.isSweep(f.value) { site([f.index], f.key); continue }
                for v in pairs(f.value) where v.key != op.name && op.sweepable.contains(v.key) && YAMLSweep.isSweep(v.value) {
                    site([f.index, v.index], v.key)
                }
            }
        }
        return sites
    }

    static func parse(_ root: YAMLNode, text: String, url: URL, grid: [GridCoordinate], reader r: Reader) throws -> EditFile {
        let top = try r.mapping(root, "the edit file",
                                allowed: ["schema", "name", "description", "references", "interventions"],
                                form: "a mapping with schema, name, description, references, interventions")
        guard let schemaNode = top["schema"] else {
            throw EditError(r.place(root), "missing key `schema`; expected `schema: \(schema)`")
        }
        let schemaValue = try r.string(schemaNode, "schema")
        guard schemaValue == schema else {
            throw EditError(r.place(schemaNode), "unsupported schema '\(schemaValue)'; expected `schema: \(schema)`")
        }
        let name = try top["name"].map { try r.string($0, "name") } ?? url.deletingPathExtension().lastPathComponent
        let description = try top["description"].map { try r.string($0, "description") }
        var references: [String] = []
        if let refs = top["references"] {
            references = try r.sequence(refs, "references", form: "a list of strings").map { try r.string($0, "a reference") }
        }
        guard let list = top["interventions"] else {
            throw EditError(r.place(root), "missing key `interventions`; expected an ordered list of interventions")
        }
        let items = try r.sequence(list, "interventions", form: "a list of interventions, each a mapping")
        if items.isEmpty { throw EditError(r.place(list), "`interventions` is empty; expected at least one intervention") }
        let interventions = try items.map { try r.intervention($0) }
        return EditFile(url: url, text: text, sha256: FileDigest.sha256(data: Data(text.utf8)), name: name,
                        description: description, references: references, interventions: interventions, grid: grid)
    }
}

/// The edit-file vocabulary on top of the YAML layer's readers.
typealias Reader = YAMLReader

/// "a, b or c" ("a, b and c").
func listed(_ items: [String], _ conjunction: String) -> String {
    items.count < 2 ? items.joined() : items.dropLast().joined(separator: ", ") + " \(conjunction) " + items[items.count - 1]
}

extension YAMLReader {
    func intervention(_ node: YAMLNode) throws -> Intervention {
        let operations = EditOperations.all
        let names = operations.map { $0.name }
        let m = try mapping(node, "intervention", allowed: Intervention.keys + names,
                            form: "a mapping with words/tokens/scope, senses and one operation")
        let here = place(node)
        let name = try m["name"].map { try string($0, "name") }
        let ops = operations.filter { m[$0.name] != nil }
        guard ops.count == 1, let kind = ops.first, let opNode = m[kind.name] else {
            throw EditError(here, "intervention: expected exactly one operation (\(names.joined(separator: ", "))), found \(ops.isEmpty ? "none" : ops.map { $0.name }.joined(separator: ", "))")
        }
        let operation = try kind.init(yaml: opNode, reader: self)

        var variants: [WordVariant] = []
        if let v = m["variants"] {
            variants = try sequence(v, "variants", form: "a list of capitalized, upper, no_space").map { item in
                let s = try string(item, "variant")
                guard let variant = WordVariant(rawValue: s) else {
                    throw EditError(place(item), "variants: unknown variant '\(s)'; expected one of capitalized, upper, no_space")
                }
                return variant
            }
        }
        var pieces = PiecesPolicy.error
        if let p = m["pieces"] {
            let s = try string(p, "pieces")
            guard let policy = PiecesPolicy(rawValue: s) else {
                throw EditError(place(p), "pieces: unknown policy '\(s)'; expected one of error, all, first, skip")
            }
            pieces = policy
        }
        let chosen = ["words", "tokens", "scope"].filter { m[$0] != nil }
        if chosen.count > 1 {
            throw EditError(here, "intervention: give only one of words, tokens, scope (found \(chosen.joined(separator: ", ")))")
        }
        let selection: TokenSelection
        if let w = m["words"] {
            selection = .words(try wordSource(w), variants: variants, pieces: pieces)
        } else if let t = m["tokens"] {
            let items = try sequence(t, "tokens", form: "a list of token ids such as [73, 259]")
            if items.isEmpty { throw EditError(place(t), "tokens: expected at least one token id") }
            selection = .tokens(try items.map { (try int($0, "token id"), place($0)) })
        } else if let s = m["scope"] {
            let v = try string(s, "scope")
            guard v == "vocabulary" else { throw EditError(place(s), "scope: unknown scope '\(v)'; expected `scope: vocabulary` (or words:/tokens: for word-level edits)") }
            selection = .vocabulary
        } else if kind.hasOwnWords {
            selection = .operationWords(variants: variants, pieces: pieces)
        } else {
            throw EditError(here, "intervention: expected `words:`, `tokens:` or `scope: vocabulary`")
        }
        if (m["variants"] != nil || m["pieces"] != nil), case .tokens = selection {
            throw EditError(here, "variants/pieces apply to `words:`, not to `tokens:`")
        }

        var target = EditTarget.senses
        if let t = m["target"] {
            let s = try string(t, "target")
            guard let v = EditTarget(rawValue: s) else { throw EditError(place(t), "target: unknown target '\(s)'; expected senses or input_embedding") }
            target = v
        }

        var senses = SenseSelection.all
        if let s = m["senses"] {
            if target == .inputEmbedding { throw EditError(place(s), "senses: not used with `target: input_embedding` (an embedding row has no senses)") }
            senses = try senseSelection(s)
        } else if target == .senses {
            throw EditError(here, "intervention: missing `senses:`; expected a list of indices such as [10], `all`, or {localized: {pair: [he, she], top: 1}}")
        }
        let note = kind.scopeNote.map { " (\($0))" } ?? ""
        if target == .inputEmbedding {
            guard kind.scopes.contains(.inputEmbedding) else {
                let able = operations.filter { $0.scopes.contains(.inputEmbedding) }.map { $0.name }
                throw EditError(here, "target input_embedding: expected \(listed(able, "or")), found \(kind.name)")
            }
            if case .vocabulary = selection { throw EditError(here, "target input_embedding: expected words: or tokens:, not scope: vocabulary") }
        } else if case .vocabulary = selection {
            guard kind.scopes.contains(.vocabulary) else { throw EditError(here, "scope: vocabulary cannot be used with \(kind.name)\(note)") }
            // localized ranks senses over words: an operation with two groups of words of its own
            // (erase: its pairs) ranks over those (static ranking), the others have none at this scope
            switch senses {
            case .localized:
                guard kind.ranksSensesOverOwnWords else {
                    let able = operations.filter { $0.ranksSensesOverOwnWords }.map { $0.name }
                    throw EditError(here, "scope: vocabulary needs explicit senses (localized ranks senses over words; only \(listed(able, "and")) ranks over its pairs)")
                }
            case .localizedContextual:
                throw EditError(here, "scope: vocabulary needs explicit senses (contextual localization ranks senses over words' prompts)")
            default: break
            }
        } else if !kind.scopes.contains(.words) {
            throw EditError(here, "\(kind.name) cannot be applied to words' senses\(note); expected `scope: vocabulary`")
        }
        return Intervention(name: name, place: here, selection: selection, senses: senses, operation: operation, target: target)
    }

    func senseSelection(_ node: YAMLNode) throws -> SenseSelection {
        switch node {
        case .scalar(let s):
            guard s.string == "all" else {
                throw EditError(place(node), "senses: expected a list of indices such as [10], `all`, or {localized: {pair: [he, she], top: 1}}, found '\(s.string)'")
            }
            return .all
        case .sequence(let items):
            if items.isEmpty { throw EditError(place(node), "senses: expected at least one sense index") }
            return .indices(try items.map { item in
                let v = try int(item, "sense index")
                if v < 0 { throw EditError(place(item), "sense index \(v): expected 0 or more (senses are 0-based)") }
                return (v, place(item))
            })
        default:
            let m = try mapping(node, "senses", allowed: ["localized"], form: "{localized: {pair: [he, she], top: 1}}")
            guard let l = m["localized"] else { throw EditError(place(node), "senses: expected {localized: {pair: [he, she], top: 1}}") }
            let lm = try mapping(l, "localized", allowed: ["pair", "top", "by", "suite"],
                                 form: "{pair: [he, she], top: 1} (optionally by: contextual, suite: PRONOUN_SUITE.yaml)")
            guard let p = lm["pair"] else { throw EditError(place(l), "localized: missing `pair: [he, she]`") }
            let (a, b) = try pair(p, "localized pair")
            let top = try lm["top"].map { try int($0, "top") } ?? 1
            if top < 1 { throw EditError(place(lm["top"] ?? l), "top: expected 1 or more, found \(top)") }
            let by = try lm["by"].map { try string($0, "by") } ?? "static"
            switch by {
            case "static":
                if let s = lm["suite"] { throw EditError(place(s), "suite: only used with `by: contextual` (the static ranking reads no prompts)") }
                return .localized(a: a, b: b, top: top, place(l))
            case "contextual":
                guard let s = lm["suite"] else {
                    throw EditError(place(l), "localized by contextual: missing `suite:` (a pronoun suite YAML with prompts, placeholder; e.g. ../Evaluations/pronoun-bias.yaml)")
                }
                return .localizedContextual(a: a, b: b, top: top, suite: try path(s, "suite"), place(l))
            default:
                throw EditError(place(lm["by"] ?? l), "by: unknown ranking '\(by)'; expected static or contextual")
            }
        }
    }
}
