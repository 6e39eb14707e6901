import BackpackModel
import BackpackResults
import BackpackTokenizer
import BackpackYAML
import Foundation

/// `kind: multiple_choice`: items with a context, options and the gold option's index, read from
/// a CSV, TSV or JSON Lines table whose columns the suite names (docs/EVALUATION.md,
/// "multiple_choice"). Scored as lm-evaluation-harness's `multiple_choice` output type
/// (lm_eval/api/task.py `ConfigurableTask.construct_requests` and `process_results`,
/// lm_eval/api/model.py `TemplateLM._encode_pair`):
/// - each option is a loglikelihood request (context, target_delimiter + option), delimiter " ";
/// - trailing whitespace of the context moves to the continuation; the continuation's tokens are
///   encode(context + continuation) after the first len(encode(context)); an empty context is
///   `<|endoftext|>`;
/// - an option's log-likelihood is the sum of log p over its continuation tokens;
/// - acc: argmax of the log-likelihoods is the gold index; acc_norm: argmax of log-likelihood /
///   len(option), where len is Python's `len` of the option string (Unicode code points; the
///   harness's `completion_len = np.array([float(len(i)) for i in choices])`), not its bytes;
///   ties go to the first option, as numpy's argmax.
public struct MultipleChoiceConfig: Sendable {
    /// Options from one list-valued column, or from several columns, one option each.
    public enum Options: Sendable { case list(String), columns([String]) }
    public var dataFile: ExternalData
    public var format: String?
    public var context: String
    public var options: Options
    public var gold: String
    public var group: String?
    public var id: String?
    public var targetDelimiter: String
    public var batchTokens: Int
    public var maxItems: Int?

    public init(_ doc: SuiteDocument) throws {
        dataFile = try ExternalData(doc)
        format = try doc.optionalString("format")
        guard let cols = doc.node("columns") else { throw doc.error(nil, "missing key 'columns' ({context, options, gold, group, id})") }
        guard let m = cols.mapping else { throw doc.error(cols, "'columns' must be a mapping {context, options, gold, group, id}") }
        let valid = ["context", "options", "gold", "group", "id"]
        for (k, _) in m where !valid.contains(k.string ?? "") {
            throw doc.error(k, "columns: unknown key '\(k.string ?? "?")' (valid keys: \(valid.joined(separator: ", ")))")
        }
        func text(_ key: String) throws -> String? {
            guard let n = m[key] else { return nil }
            guard let s = n.string, !s.isEmpty else { throw doc.error(n, "columns.\(key) must be a column name") }
            return s
        }
        guard let c = try text("context") else { throw doc.error(cols, "columns needs 'context'") }
        guard let g = try text("gold") else { throw doc.error(cols, "columns needs 'gold' (the 0-based index of the right option)") }
        guard let o = m["options"] else { throw doc.error(cols, "columns needs 'options': a column holding a list, or a list of columns") }
        if let s = o.string { options = .list(s) }
        else if let seq = o.sequence, seq.count >= 2 {
            options = .columns(try seq.map { item in
                guard let s = item.string, !s.isEmpty else { throw doc.error(item, "columns.options: every entry must be a column name") }
                return s
            })
        } else { throw doc.error(o, "columns.options must be a column name or a list of at least 2 column names") }
        context = c; gold = g; group = try text("group"); id = try text("id")
        targetDelimiter = try doc.optionalString("target_delimiter") ?? " "
        batchTokens = try doc.int("batch_tokens", default: 2048, minimum: 1)
        maxItems = try doc.optionalInt("max_items", minimum: 1)
    }
}

public struct MultipleChoiceItem: Sendable, Equatable {
    public var context: String
    public var options: [String]
    public var gold: Int
    public var group: String?
    public var id: String?
}

public struct MultipleChoiceSuite: PreparedSuite {
    public let suite: Suite
    public let config: MultipleChoiceConfig
    public let items: [MultipleChoiceItem]
    /// One request per option, items in order.
    let requests: [HarnessScorer.Request]
    let maxLength: Int
    public let dataSHA256: String
    public let dataFiles: [DataFileDigest]
    public var itemCount: Int { items.count }

    init(suite: Suite, config: MultipleChoiceConfig, context: PreparationContext) throws {
        self.suite = suite; self.config = config
        let (url, digest) = try config.dataFile.resolveVerified(suiteFile: suite.file, locations: context.locations)
        dataSHA256 = digest
        dataFiles = [DataFileDigest(name: config.dataFile.dataFile, sha256: digest)]
        let table = try DataTable.read(url, format: try DataTable.format(of: url, declared: config.format) { SuiteError(file: suite.file.path, reason: $0) })
        let named: [String]
        switch config.options { case .list(let c): named = [c]; case .columns(let cs): named = cs }
        for column in [config.context, config.gold] + named + [config.group, config.id].compactMap({ $0 }) {
            try table.require(column) { SuiteError(file: suite.file.path, reason: "\(config.dataFile.dataFile): \($0)") }
        }
        var all: [MultipleChoiceItem] = []
        for row in table.rows {
            let options: [String]
            switch config.options {
            case .list(let c):
                guard case .list(let l)? = row.fields[c] else {
                    throw SuiteError(file: url.path, line: row.line, reason: "'\(c)' must be a list of option strings")
                }
                options = l
            case .columns(let cs): options = try cs.map { try table.text(row, $0) }
            }
            guard options.count >= 2 else { throw SuiteError(file: url.path, line: row.line, reason: "an item needs at least 2 options, found \(options.count)") }
            let g = try table.text(row, config.gold)
            guard let gold = Int(g), options.indices.contains(gold) else {
                throw SuiteError(file: url.path, line: row.line, reason: "'\(config.gold)' must be a 0-based option index in 0..<\(options.count), found '\(g)'")
            }
            all.append(MultipleChoiceItem(context: try table.text(row, config.context), options: options, gold: gold,
                                          group: try config.group.map { try table.text(row, $0) }, id: try config.id.map { try table.text(row, $0) }))
            if let m = config.maxItems, all.count == m { break }
        }
        guard !all.isEmpty else { throw SuiteError(file: url.path, reason: "no items") }
        items = all
        guard let eot = context.tokenizer.endOfTextID else { throw SuiteError(file: suite.file.path, reason: "multiple_choice needs a tokenizer with <|endoftext|>") }
        maxLength = context.model.nPositions
        let tokenizer = context.tokenizer, model = context.model
        var reqs: [HarnessScorer.Request] = []
        for (i, item) in all.enumerated() {
            for option in item.options {
                let r = Self.encodePair(item.context, config.targetDelimiter + option, tokenizer: tokenizer, eot: eot)
                guard !r.continuation.isEmpty else {
                    throw SuiteError(file: url.path, reason: "item \(i + 1): option '\(option)' has no tokens after its context")
                }
                if let bad = (r.context + r.continuation).first(where: { $0 >= model.vocabSize }) {
                    throw SuiteError(file: url.path, reason: "item \(i + 1): token id \(bad) is beyond the model's vocabulary (\(model.vocabSize))")
                }
                reqs.append(r)
            }
        }
        requests = reqs
    }

    /// lm-evaluation-harness's `_encode_pair` (and its empty-context rule in `loglikelihood`).
    static func encodePair(_ context: String, _ continuation: String, tokenizer: GPT2Tokenizer, eot: Int) -> HarnessScorer.Request {
        if context.isEmpty { return .init(context: [eot], continuation: tokenizer.encode(continuation)) }
        // Python's rstrip() strips Unicode whitespace; moving it keeps the text identical.
        var ctx = Substring(context), cont = continuation
        while let last = ctx.last, last.isWhitespace { ctx.removeLast(); cont = String(last) + cont }
        let whole = tokenizer.encode(String(ctx) + cont), contextIDs = tokenizer.encode(String(ctx))
        // A context that was only whitespace leaves nothing to condition on: <|endoftext|>, as above.
        return .init(context: contextIDs.isEmpty ? [eot] : contextIDs, continuation: Array(whole.dropFirst(contextIDs.count)))
    }

    public func evaluate(_ variants: VariantSet, progress: @Sendable (String) -> Void) throws -> [SuiteResult] {
        let scored = try HarnessScorer.score(variants, requests, maxLength: maxLength, batchTokens: config.batchTokens) { done in
            progress("\(suite.name): \(done)/\(requests.count) options")
        }
        return scored.map { result($0.map(\.logLikelihood)) }
    }

    /// The first index of the maximum (numpy's argmax).
    static func argmax(_ x: [Double]) -> Int {
        var best = 0
        for i in x.indices.dropFirst() where x[i] > x[best] { best = i }
        return best
    }

    func result(_ ll: [Double]) -> SuiteResult {
        var r = SuiteResult(suiteName: suite.name, suiteVersion: suite.version, dataSHA256: dataSHA256)
        var pred: [Int] = [], predNorm: [Int] = [], optionItem: [Int] = [], optionLength: [Int] = [], start = 0
        for (i, item) in items.enumerated() {
            let lls = Array(ll[start..<(start + item.options.count)])
            let lengths = item.options.map { $0.unicodeScalars.count }
            pred.append(Self.argmax(lls))
            predNorm.append(Self.argmax(zip(lls, lengths).map { $0 / Double($1) }))
            optionItem += Array(repeating: i, count: item.options.count); optionLength += lengths
            start += item.options.count
        }
        let correct = items.indices.map { pred[$0] == items[$0].gold ? 1.0 : 0.0 }
        let correctNorm = items.indices.map { predNorm[$0] == items[$0].gold ? 1.0 : 0.0 }
        let overall = Self.aggregates(correct, correctNorm, Array(items.indices))
        r.set("acc", overall[0], headline: true)
        r.set("acc_norm", overall[1], headline: true)
        r.set("n_items", items.count)
        let groups = Array(Set(items.compactMap(\.group))).sorted()
        for g in groups {
            let idx = items.indices.filter { items[$0].group == g }
            let v = Self.aggregates(correct, correctNorm, idx)
            r.set("\(g).acc", v[0]); r.set("\(g).acc_norm", v[1]); r.set("\(g).n_items", idx.count)
        }
        if !groups.isEmpty { r.set("groups", groups.joined(separator: ",")) }
        r.add("context", strings: items.map(\.context))
        r.add("gold", ints: items.map(\.gold))
        r.add("pred", ints: pred)
        r.add("pred_norm", ints: predNorm)
        r.add("correct", ints: correct.map { Int($0) })
        r.add("correct_norm", ints: correctNorm.map { Int($0) })
        r.add("option_item", ints: optionItem)
        r.add("option_text", strings: items.flatMap(\.options))
        r.add("option_length", ints: optionLength)
        r.add("option_loglikelihood", ll)
        if !groups.isEmpty { r.add("group", strings: items.map { $0.group ?? "" }) }
        if items.contains(where: { $0.id != nil }) { r.add("id", strings: items.map { $0.id ?? "" }) }
        return r
    }

    /// acc and acc_norm over some items.
    static func aggregates(_ correct: [Double], _ correctNorm: [Double], _ idx: [Int]) -> [Double] {
        var a = 0.0, b = 0.0
        for i in idx { a += correct[i]; b += correctNorm[i] }
        return [a / Double(idx.count), b / Double(idx.count)]
    }
}

// MARK: - The kind

extension MultipleChoiceConfig: SuiteKind {
    public static let name = "multiple_choice"
    public static let keys = externalDataKeys.union(["format", "columns", "target_delimiter", "batch_tokens", "max_items"])
    public static let schema = ResultSchema(
        metrics: [MetricInfo("acc", "share of items whose likeliest option is the gold one",
                             unit: "fraction", ideal: 1, better: .higher),
                  MetricInfo("acc_norm", "as acc, log-likelihood divided by length in characters",
                             unit: "fraction", ideal: 1, better: .higher)],
        datasets: ["context", "gold", "pred", "pred_norm", "option_item", "option_text", "option_loglikelihood"])
    public func prepare(_ suite: Suite, _ c: PreparationContext) throws -> PreparedSuite {
        try MultipleChoiceSuite(suite: suite, config: self, context: c)
    }
    /// Unit: item.
    public static func resamplingPlan(_ r: SuiteResult) -> ResamplingPlan? {
        guard let c = r.integers("correct"), let cn = r.integers("correct_norm"), c.count == cn.count, !c.isEmpty else { return nil }
        let a = c.map(Double.init), b = cn.map(Double.init)
        return ResamplingPlan(unit: "item", unitCount: c.count, metrics: ["acc", "acc_norm"], unitSums: ["acc": a, "acc_norm": b]) {
            MultipleChoiceSuite.aggregates(a, b, $0)
        }
    }
}
