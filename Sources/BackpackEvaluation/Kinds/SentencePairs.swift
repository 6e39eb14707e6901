import BackpackIO
import BackpackModel
import BackpackResults
import BackpackTokenizer
import BackpackYAML
import Foundation

/// `kind: sentence_pairs`: any benchmark of minimal pairs, declared in YAML alone
/// (docs/EVALUATION.md, "sentence_pairs"). The pairs come from a table whose columns the suite
/// names (`data_file` + `columns: {a, b, group, id}`, CSV, TSV or JSON Lines) or from two aligned
/// text files (`a_file`, `b_file`: line i with line i, optional constant `group`); `sources:`
/// lists several such sources (WinoBias: one per type). `clean` patterns are removed from every
/// sentence, in order, before scoring. A sentence's score is the sum of log p of its tokens after
/// `<|endoftext|>`, in one pass (lm-evaluation-harness's loglikelihood with an empty context), or
/// their mean (`score: mean`).
public struct SentencePairsConfig: Sendable {
    public enum Source: Sendable {
        /// A table; `group` and `id` are optional column names.
        case table(file: String, format: String?, a: String, b: String, group: String?, id: String?)
        /// Two aligned text files; every pair gets the constant `group` when one is given.
        case aligned(a: String, b: String, group: String?)
    }
    public enum Score: String, Sendable, CaseIterable { case sum, mean }
    public var sources: [Source]
    /// Pinned SHA-256 per data file (as the suite names it).
    public var sha256: [String: String]
    public var url: String?
    public var clean: [String]
    public var score: Score
    /// The bootstrap unit: `pair`, or a column of the table(s) (`group` for aligned sources).
    public var unit: String
    public var batchTokens: Int
    public var maxPairs: Int?
    let cleanPatterns: [NSRegularExpressionBox]

    public init(_ doc: SuiteDocument) throws {
        func text(_ node: YAMLNode, _ what: String) throws -> String {
            guard let s = node.string, !s.isEmpty else { throw doc.error(node, "'\(what)' must be a non-empty string") }
            return s
        }
        /// One source from a mapping (a `sources:` entry, or the document itself).
        func source(_ m: YAMLMapping, at node: YAMLNode?, prefix: String) throws -> Source {
            let hasTable = m["data_file"] != nil, hasAligned = m["a_file"] != nil || m["b_file"] != nil
            guard hasTable != hasAligned else {
                throw doc.error(node, "\(prefix)give either 'data_file' with 'columns' (a table) or 'a_file' and 'b_file' (aligned text files)")
            }
            if hasAligned {
                guard let a = m["a_file"], let b = m["b_file"] else {
                    throw doc.error(node, "\(prefix)aligned sources need both 'a_file' and 'b_file'")
                }
                if let c = m["columns"] { throw doc.error(c, "\(prefix)'columns' applies to a 'data_file' table, not to aligned files") }
                return .aligned(a: try text(a, prefix + "a_file"), b: try text(b, prefix + "b_file"),
                                group: try m["group"].map { try text($0, prefix + "group") })
            }
            guard let cols = m["columns"] else { throw doc.error(node, "\(prefix)a 'data_file' table needs 'columns: {a: COLUMN, b: COLUMN}'") }
            guard let cm = cols.mapping else { throw doc.error(cols, "\(prefix)'columns' must be a mapping {a, b, group, id}") }
            for (k, _) in cm where !["a", "b", "group", "id"].contains(k.string ?? "") {
                throw doc.error(k, "\(prefix)columns: unknown key '\(k.string ?? "?")' (valid keys: a, b, group, id)")
            }
            guard let a = cm["a"], let b = cm["b"] else { throw doc.error(cols, "\(prefix)'columns' needs 'a' and 'b'") }
            if let g = m["group"] { throw doc.error(g, "\(prefix)a table takes its groups from 'columns: {group: COLUMN}'") }
            return .table(file: try text(m["data_file"]!, prefix + "data_file"), format: try m["format"].map { try text($0, prefix + "format") },
                          a: try text(a, "columns.a"), b: try text(b, "columns.b"),
                          group: try cm["group"].map { try text($0, "columns.group") }, id: try cm["id"].map { try text($0, "columns.id") })
        }
        let sourceKeys: Set<String> = ["data_file", "format", "columns", "a_file", "b_file", "group"]
        if let list = doc.node("sources") {
            if let k = doc.keys.first(where: { sourceKeys.contains($0) }) {
                throw doc.error(doc.keyNode(k), "'\(k)' belongs inside an entry of 'sources' when 'sources' is given")
            }
            guard let seq = list.sequence, !seq.isEmpty else { throw doc.error(list, "'sources' must be a non-empty list of sources") }
            sources = try seq.enumerated().map { i, item in
                guard let m = item.mapping else { throw doc.error(item, "sources[\(i)] must be a mapping") }
                for (k, _) in m where !sourceKeys.contains(k.string ?? "") {
                    throw doc.error(k, "sources[\(i)]: unknown key '\(k.string ?? "?")' (valid keys: \(sourceKeys.sorted().joined(separator: ", ")))")
                }
                return try source(m, at: item, prefix: "sources[\(i)]: ")
            }
        } else {
            sources = [try source(doc.root, at: nil, prefix: "")]
        }
        // sha256: one digest for a single data_file, or FILE: DIGEST for several files.
        var pins: [String: String] = [:]
        if let node = doc.node("sha256") {
            func hex(_ n: YAMLNode, _ what: String) throws -> String {
                guard let s = n.string?.lowercased(), s.count == 64, s.allSatisfy(\.isHexDigit) else { throw doc.error(n, "\(what) must be 64 hex digits") }
                return s
            }
            if let m = node.mapping {
                for (k, v) in m { pins[try text(k, "sha256 key")] = try hex(v, "sha256[\(k.string ?? "")]") }
            } else {
                guard sources.count == 1, case .table(let f, _, _, _, _, _) = sources[0] else {
                    throw doc.error(node, "with several files, 'sha256' must be a mapping FILE: DIGEST")
                }
                pins[f] = try hex(node, "'sha256'")
            }
            let files = Set(sources.flatMap(Self.files))
            if let stray = pins.keys.sorted().first(where: { !files.contains($0) }) {
                throw doc.error(node, "sha256 names '\(stray)', which no source reads (files: \(files.sorted().joined(separator: ", ")))")
            }
        }
        sha256 = pins
        url = try doc.optionalString("url")
        // Patterns compile now, so that a bad one fails before any model work.
        var patterns: [String] = [], boxes: [NSRegularExpressionBox] = []
        if let node = doc.node("clean") {
            guard let seq = node.sequence else { throw doc.error(node, "'clean' must be a list of regular expressions") }
            for item in seq {
                let p = try text(item, "clean")
                do { boxes.append(NSRegularExpressionBox(try NSRegularExpression(pattern: p, options: [.anchorsMatchLines]))) } catch {
                    throw doc.error(item, "clean: '\(p)' is not a valid regular expression (ICU syntax): \(error.localizedDescription)")
                }
                patterns.append(p)
            }
        }
        clean = patterns; cleanPatterns = boxes
        let s = try doc.optionalString("score") ?? "sum"
        guard let sc = Score(rawValue: s) else {
            throw doc.error(doc.node("score"), "'score' must be one of \(Score.allCases.map(\.rawValue).joined(separator: ", ")), found '\(s)'")
        }
        score = sc
        unit = try doc.optionalString("unit") ?? "pair"
        if unit != "pair" {
            for src in sources {
                switch src {
                case .aligned where unit != "group":
                    throw doc.error(doc.node("unit"), "aligned files have no columns: 'unit' must be 'pair' or 'group', found '\(unit)'")
                case .table(_, _, _, _, let group, _) where unit == "group" && group == nil:
                    throw doc.error(doc.node("unit"), "'unit: group' needs 'columns: {group: COLUMN}'")
                default: break
                }
            }
        }
        batchTokens = try doc.int("batch_tokens", default: 2048, minimum: 1)
        maxPairs = try doc.optionalInt("max_pairs", minimum: 1)
    }

    static func files(_ s: Source) -> [String] {
        switch s {
        case .table(let f, _, _, _, _, _): return [f]
        case .aligned(let a, let b, _): return [a, b]
        }
    }

    /// A sentence with every `clean` pattern removed, in order.
    func cleaned(_ s: String) -> String {
        cleanPatterns.reduce(s) { text, p in
            p.regex.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: "")
        }
    }
}

/// NSRegularExpression is immutable and thread-safe, but not declared Sendable.
struct NSRegularExpressionBox: @unchecked Sendable {
    let regex: NSRegularExpression
    init(_ regex: NSRegularExpression) { self.regex = regex }
}

/// One pair as scored.
public struct SentencePair: Sendable, Equatable {
    public var a: String, b: String
    public var group: String?
    public var id: String?
    /// The bootstrap unit's key.
    public var unit: String
}

public struct SentencePairsSuite: PreparedSuite {
    public let suite: Suite
    public let config: SentencePairsConfig
    public let pairs: [SentencePair]
    let tokensA: [[Int]], tokensB: [[Int]]   // [eot] + sentence
    public let dataSHA256: String
    public let dataFiles: [DataFileDigest]
    public var itemCount: Int { pairs.count }

    init(suite: Suite, config: SentencePairsConfig, context: PreparationContext) throws {
        self.suite = suite; self.config = config
        var digests: [DataFileDigest] = [], all: [SentencePair] = []
        func open(_ file: String) throws -> URL {
            let data = ExternalData(dataFile: file, url: config.url, sha256: config.sha256[file])
            let (url, digest) = try data.resolveVerified(suiteFile: suite.file, locations: context.locations)
            digests.append(DataFileDigest(name: file, sha256: digest))
            return url
        }
        for source in config.sources {
            switch source {
            case .table(let file, let format, let a, let b, let group, let id):
                let url = try open(file)
                let table = try DataTable.read(url, format: try DataTable.format(of: url, declared: format) { SuiteError(file: suite.file.path, reason: $0) })
                for column in [a, b] + [group, id].compactMap({ $0 }) + (config.unit == "pair" || config.unit == "group" ? [] : [config.unit]) {
                    try table.require(column) { SuiteError(file: suite.file.path, reason: "\(file): \($0)") }
                }
                for row in table.rows {
                    let g = try group.map { try table.text(row, $0) }
                    let i = try id.map { try table.text(row, $0) }
                    let u = config.unit == "pair" ? "\(all.count)" : config.unit == "group" ? (g ?? "") : try table.text(row, config.unit)
                    all.append(SentencePair(a: config.cleaned(try table.text(row, a)), b: config.cleaned(try table.text(row, b)),
                                            group: g, id: i, unit: u))
                }
            case .aligned(let aFile, let bFile, let group):
                let aURL = try open(aFile), bURL = try open(bFile)
                let aLines = try Self.lines(aURL), bLines = try Self.lines(bURL)
                guard aLines.count == bLines.count else {
                    throw SuiteError(file: suite.file.path, reason: "aligned files differ in length: \(aFile) has \(aLines.count) lines, \(bFile) has \(bLines.count); line i of one is paired with line i of the other")
                }
                for (a, b) in zip(aLines, bLines) {
                    all.append(SentencePair(a: config.cleaned(a), b: config.cleaned(b), group: group, id: nil,
                                            unit: config.unit == "group" ? (group ?? "") : "\(all.count)"))
                }
            }
        }
        if let m = config.maxPairs { all = Array(all.prefix(m)) }
        guard !all.isEmpty else { throw SuiteError(file: suite.file.path, reason: "no sentence pairs in \(config.sources.flatMap(SentencePairsConfig.files).joined(separator: ", "))") }
        pairs = all
        dataFiles = digests
        dataSHA256 = FileDigest.combined(digests: digests.map(\.sha256))
        guard let eot = context.tokenizer.endOfTextID else { throw SuiteError(file: suite.file.path, reason: "sentence_pairs needs a tokenizer with <|endoftext|>") }
        let model = context.model, file = suite.file.path
        func tok(_ s: String, _ i: Int) throws -> [Int] {
            let ids = [eot] + context.tokenizer.encode(s)
            guard ids.count >= 2 else { throw SuiteError(file: file, reason: "pair \(i + 1): a sentence is empty after cleaning") }
            guard ids.count <= model.nPositions, ids.allSatisfy({ $0 < model.vocabSize }) else {
                throw SuiteError(file: file, reason: "pair \(i + 1): '\(s)' does not fit the model (\(ids.count) tokens, n_positions \(model.nPositions))")
            }
            return ids
        }
        tokensA = try all.enumerated().map { try tok($1.a, $0) }
        tokensB = try all.enumerated().map { try tok($1.b, $0) }
    }

    /// The lines of a text file: split at "\n", a trailing "\r" dropped; the empty piece after a
    /// final newline is not a line, any other empty line is an error (it would pair with nothing).
    static func lines(_ url: URL) throws -> [String] {
        let text = try SuiteError.text(of: url)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        if lines.last == "" { lines.removeLast() }
        if let i = lines.firstIndex(where: { $0.allSatisfy(\.isWhitespace) }) {
            throw SuiteError(file: url.path, line: i + 1, reason: "empty line: every line of an aligned file is one sentence")
        }
        return lines
    }

    public func evaluate(_ variants: VariantSet, progress: @Sendable (String) -> Void) throws -> [SuiteResult] {
        let sentences = zip(tokensA, tokensB).flatMap { [$0, $1] }
        let scored = try SequenceScorer.logProbs(variants, sentences.map { .init(ids: $0, from: 1) }, batchTokens: config.batchTokens) { done in
            progress("\(suite.name): \(done / 2)/\(pairs.count) pairs")
        }
        return scored.map { perSentence in
            let ll = perSentence.map { lp in config.score == .sum ? lp.reduce(0, +) : lp.reduce(0, +) / Double(lp.count) }
            return result(a: pairs.indices.map { ll[2 * $0] }, b: pairs.indices.map { ll[2 * $0 + 1] })
        }
    }

    /// pct_prefers_a and mean_gap over some pairs (the stored value and every bootstrap resample).
    static func aggregates(_ a: [Double], _ b: [Double], _ idx: [Int]) -> [Double] {
        var prefers = 0, gap = 0.0
        for i in idx { if a[i] > b[i] { prefers += 1 }; gap += a[i] - b[i] }
        let n = Double(idx.count)
        return [Double(prefers) / n * 100, gap / n]
    }

    func result(a: [Double], b: [Double]) -> SuiteResult {
        var r = SuiteResult(suiteName: suite.name, suiteVersion: suite.version, dataSHA256: dataSHA256)
        let overall = Self.aggregates(a, b, Array(pairs.indices))
        r.set("pct_prefers_a", overall[0], headline: true)
        r.set("mean_gap", overall[1], headline: true)
        r.set("n_pairs", pairs.count)
        r.set("score", config.score.rawValue)
        r.set("unit", config.unit)
        let groups = Array(Set(pairs.compactMap(\.group))).sorted()
        for g in groups {
            let idx = pairs.indices.filter { pairs[$0].group == g }
            let v = Self.aggregates(a, b, idx)
            r.set("\(g).pct_prefers_a", v[0]); r.set("\(g).mean_gap", v[1]); r.set("\(g).n_pairs", idx.count)
        }
        if !groups.isEmpty { r.set("groups", groups.joined(separator: ",")) }
        r.add("sentence_a", strings: pairs.map(\.a))
        r.add("sentence_b", strings: pairs.map(\.b))
        r.add("log_likelihood_a", a)
        r.add("log_likelihood_b", b)
        if !groups.isEmpty { r.add("group", strings: pairs.map { $0.group ?? "" }) }
        if pairs.contains(where: { $0.id != nil }) { r.add("id", strings: pairs.map { $0.id ?? "" }) }
        if config.unit != "pair" { r.add("unit_key", strings: pairs.map(\.unit)) }
        return r
    }
}

// MARK: - The kind

extension SentencePairsConfig: SuiteKind {
    public static let name = "sentence_pairs"
    public static let keys: Set<String> = ["sources", "data_file", "format", "columns", "a_file", "b_file", "group", "url", "sha256",
                                           "clean", "score", "unit", "batch_tokens", "max_pairs"]
    public static let schema = ResultSchema(
        metrics: [MetricInfo("pct_prefers_a", "% of pairs where sentence a is likelier than b",
                             unit: "%", ideal: 50, better: .closerToIdeal),
                  MetricInfo("mean_gap", "mean log p(a) - log p(b) over pairs", unit: "nats", ideal: 0, better: .closerToIdeal)],
        datasets: ["sentence_a", "sentence_b", "log_likelihood_a", "log_likelihood_b"])
    public func prepare(_ suite: Suite, _ c: PreparationContext) throws -> PreparedSuite {
        try SentencePairsSuite(suite: suite, config: self, context: c)
    }
    /// Unit: the pair, or the suite's `unit` column (`unit_key`); the aggregates over the
    /// resample's pairs.
    public static func resamplingPlan(_ r: SuiteResult) -> ResamplingPlan? {
        guard let a = r.doubles("log_likelihood_a"), let b = r.doubles("log_likelihood_b"), a.count == b.count, !a.isEmpty else { return nil }
        let keys = r.texts("unit_key") ?? a.indices.map { "\($0)" }
        guard keys.count == a.count else { return nil }
        var members: [String: [Int]] = [:], order: [String] = []
        for (i, k) in keys.enumerated() { if members[k] == nil { order.append(k) }; members[k, default: []].append(i) }
        let units = order.map { members[$0]! }
        let name: String = { if case .string(let u)? = r["unit"] { return u }; return "pair" }()
        let sums = ["pct_prefers_a": units.map { $0.reduce(0.0) { $0 + (a[$1] > b[$1] ? 100 : 0) } },
                    "mean_gap": units.map { $0.reduce(0.0) { $0 + a[$1] - b[$1] } }]
        return ResamplingPlan(unit: name, unitCount: units.count, metrics: ["pct_prefers_a", "mean_gap"], unitSums: sums) { draw in
            SentencePairsSuite.aggregates(a, b, draw.flatMap { units[$0] })
        }
    }
}
