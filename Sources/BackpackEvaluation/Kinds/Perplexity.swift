import BackpackIO
import BackpackModel
import BackpackModelFolder
import BackpackTokenizer
import BackpackResults
import Foundation

public struct PerplexityConfig: Sendable {
    public enum Source: Sendable { case inline(String), path(URL), external(ExternalData) }
    public enum Split: String, Sendable { case file, blankLines = "blank_lines" }
    public var source: Source
    public var split: Split
    public var every: Int, offset: Int
    public var maxDocuments: Int?
    public var maxLength: Int?
    public var stride: Int?
    public var prependEOS: Bool
    public var batchTokens: Int

    public init(_ doc: SuiteDocument) throws {
        let given = ["text", "path", "data_file"].filter { doc.node($0) != nil }
        guard given.count == 1 else { throw doc.error(nil, "a perplexity suite needs exactly one of 'text', 'path', 'data_file' (found \(given))") }
        if let t = try doc.optionalString("text") { source = .inline(t) }
        else if let p = try doc.optionalString("path") {
            source = .path(URL(fileURLWithPath: p, relativeTo: doc.url.deletingLastPathComponent()).standardizedFileURL)
        } else { source = .external(try ExternalData(doc)) }
        let s = try doc.optionalString("split") ?? "file"
        guard let sp = Split(rawValue: s) else { throw doc.error(doc.node("split"), "'split' must be 'file' or 'blank_lines'") }
        split = sp
        let sel = try doc.intMapping("select") ?? [:]
        if let bad = sel.keys.first(where: { $0 != "every" && $0 != "offset" }) { throw doc.error(doc.node("select"), "select: unknown key '\(bad)' (every, offset)") }
        every = sel["every"] ?? 1; offset = sel["offset"] ?? 0
        guard every >= 1, offset >= 0, offset < every else { throw doc.error(doc.node("select"), "select needs every >= 1 and 0 <= offset < every") }
        maxDocuments = try doc.optionalInt("max_documents", minimum: 1)
        maxLength = try doc.optionalInt("max_length", minimum: 2)
        stride = try doc.optionalInt("stride", minimum: 1)
        prependEOS = try doc.bool("prepend_eos", default: true)
        batchTokens = try doc.int("batch_tokens", default: 2048, minimum: 1)
    }
}

/// Sliding-window perplexity (as in Hugging Face's guide): windows of max_length tokens start
/// every `stride` tokens; each token is scored once, in the first window that reaches it, with
/// the window's earlier tokens as context.
public struct PerplexitySuite: PreparedSuite {
    public let suite: Suite
    public let config: PerplexityConfig
    public let documents: [String]
    public let documentNames: [String]
    let windows: [(doc: Int, item: SequenceScorer.Item)]
    let words: [Int], bytes: [Int]
    public let maxLength: Int, stride: Int
    public let dataSHA256: String
    public let dataFiles: [DataFileDigest]
    public var itemCount: Int { documents.count }

    /// Passages: the text split on blank lines ("\n\n"), stripped, empty ones dropped.
    /// The demo model's rule (Models/backpack-demo/MODEL_CARD.md): a line is blank when it is
    /// empty after stripping whitespace; a passage is a maximal run of non-blank lines, joined
    /// with "\n" and stripped.
    public static func passages(_ text: String) -> [String] {
        var out: [String] = [], current: [Substring] = []
        func flush() {
            if !current.isEmpty {
                let p = current.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
                if !p.isEmpty { out.append(p) }
                current.removeAll(keepingCapacity: true)
            }
        }
        // "\r\n" is one Character in Swift, so it is matched as a separator of its own.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            if line.allSatisfy(\.isWhitespace) { flush() } else { current.append(line) }
        }
        flush()
        return out
    }

    /// Token windows for a sequence of n tokens: (begin, end, first scored index within the window).
    public static func windows(count n: Int, maxLength: Int, stride: Int) -> [(begin: Int, end: Int, from: Int)] {
        var out: [(Int, Int, Int)] = [], prevEnd = 0, begin = 0
        while begin < n {
            let end = min(begin + maxLength, n)
            let from = max(prevEnd - begin, 1)
            if from < end - begin { out.append((begin, end, from)) }
            prevEnd = end
            if end == n { break }
            begin += stride
        }
        return out
    }

    init(suite: Suite, config: PerplexityConfig, tokenizer: GPT2Tokenizer, model: BackpackConfig, locations: DataLocations) throws {
        self.suite = suite; self.config = config
        var docs: [(name: String, text: String)] = []
        var files: [URL] = []
        func read(_ url: URL) throws -> String {
            try SuiteError.text(of: url)
        }
        func add(_ name: String, _ text: String) {
            if config.split == .blankLines {
                for (i, p) in Self.passages(text).enumerated() { docs.append(("\(name)#\(i)", p)) }
            } else { docs.append((name, text)) }
        }
        switch config.source {
        case .inline(let t): add("inline", t); files = [suite.file]
        case .external(let e):
            let url = try e.resolve(suiteFile: suite.file, locations: locations)
            files = [url]; add(url.lastPathComponent, try read(url))
        case .path(let url):
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
                throw SuiteError(file: suite.file.path, reason: "path '\(url.path)' does not exist")
            }
            if isDir.boolValue {
                let names = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
                for n in names { let f = url.appendingPathComponent(n); files.append(f); add(n, try read(f)) }
            } else { files = [url]; add(url.lastPathComponent, try read(url)) }
        }
        let digests = try files.map { try FileDigest.sha256($0) }
        dataSHA256 = FileDigest.combined(digests: digests)
        let external: String? = { if case .external(let e) = config.source { return e.dataFile }; return nil }()
        dataFiles = zip(files, digests).filter { !DataFileDigest.isSuiteFile($0.0, suite) }
            .map { DataFileDigest(name: external ?? $0.0.lastPathComponent, sha256: $0.1) }
        if case .external(let e) = config.source, let want = e.sha256, want != dataSHA256 {
            throw SuiteError(file: suite.file.path, reason: "data SHA-256 \(dataSHA256) differs from the pinned \(want)")
        }
        var selected = docs.enumerated().filter { $0.offset % config.every == config.offset }.map(\.element)
        if let m = config.maxDocuments { selected = Array(selected.prefix(m)) }
        selected = selected.filter { !$0.text.isEmpty }
        guard !selected.isEmpty else { throw SuiteError(file: suite.file.path, reason: "no documents selected") }
        documents = selected.map(\.text); documentNames = selected.map(\.name)
        maxLength = min(config.maxLength ?? model.nPositions, model.nPositions)
        stride = min(config.stride ?? maxLength, maxLength)
        var ws: [(Int, SequenceScorer.Item)] = []
        var eot: Int? = nil
        if config.prependEOS {
            guard let e = tokenizer.endOfTextID else { throw SuiteError(file: suite.file.path, reason: "prepend_eos needs a tokenizer with <|endoftext|>") }
            eot = e
        }
        for (d, text) in documents.enumerated() {
            let ids = (eot.map { [$0] } ?? []) + tokenizer.encode(text)
            if let bad = ids.first(where: { $0 >= model.vocabSize }) {
                throw SuiteError(file: documentNames[d], reason: "token id \(bad) beyond the model's vocabulary")
            }
            for w in Self.windows(count: ids.count, maxLength: maxLength, stride: stride) {
                ws.append((d, SequenceScorer.Item(ids: Array(ids[w.begin..<w.end]), from: w.from)))
            }
        }
        windows = ws
        words = documents.map { $0.split(whereSeparator: { $0.isWhitespace }).count }
        bytes = documents.map { $0.utf8.count }
    }

    public func evaluate(_ variants: VariantSet, progress: @Sendable (String) -> Void) throws -> [SuiteResult] {
        let lp = try SequenceScorer.logProbs(variants, windows.map(\.item), batchTokens: config.batchTokens) { done in
            progress("\(suite.name): \(done)/\(windows.count) windows")
        }
        return lp.map { result(logProbs: $0) }
    }

    func result(logProbs lp: [[Double]]) -> SuiteResult {
        var nll = [Double](repeating: 0, count: documents.count), tokens = [Int](repeating: 0, count: documents.count)
        for (w, scores) in zip(windows, lp) { nll[w.doc] -= scores.reduce(0, +); tokens[w.doc] += scores.count }
        var r = SuiteResult(suiteName: suite.name, suiteVersion: suite.version, dataSHA256: dataSHA256)
        let all = Metrics.perplexity(nll: nll.reduce(0, +), tokens: tokens.reduce(0, +), words: words.reduce(0, +), bytes: bytes.reduce(0, +))
        r.set("token_perplexity", all.tokenPerplexity, headline: true)
        r.set("word_perplexity", all.wordPerplexity)
        r.set("byte_perplexity", all.bytePerplexity)
        r.set("bits_per_byte", all.bitsPerByte, headline: true)
        r.set("nll_sum", nll.reduce(0, +))
        r.set("n_documents", documents.count)
        r.set("n_tokens", tokens.reduce(0, +))
        r.set("n_words", words.reduce(0, +))
        r.set("n_bytes", bytes.reduce(0, +))
        r.set("max_length", maxLength)
        r.set("stride", stride)
        let per = documents.indices.map { Metrics.perplexity(nll: nll[$0], tokens: max(tokens[$0], 1), words: max(words[$0], 1), bytes: max(bytes[$0], 1)) }
        r.add("documents", strings: documentNames)
        r.add("nll", nll)
        r.add("tokens", ints: tokens); r.add("words", ints: words); r.add("bytes", ints: bytes)
        r.add("token_perplexity", per.map(\.tokenPerplexity))
        r.add("word_perplexity", per.map(\.wordPerplexity))
        r.add("byte_perplexity", per.map(\.bytePerplexity))
        r.add("bits_per_byte", per.map(\.bitsPerByte))
        return r
    }
}

// MARK: - The kind

extension PerplexityConfig: SuiteKind {
    public static let name = "perplexity"
    public static let keys = externalDataKeys.union(["text", "path", "split", "select", "max_documents", "max_length", "stride",
                                                     "prepend_eos", "batch_tokens"])
    public static let schema = ResultSchema(
        metrics: [MetricInfo("token_perplexity", "exp(mean nll per scored token), sliding window",
                             unit: "perplexity", ideal: nil, better: .lower),
                  MetricInfo("bits_per_byte", "total nll in bits per UTF-8 byte",
                             unit: "bits/byte", ideal: nil, better: .lower)],
        roles: [.cost: "token_perplexity"],
        datasets: ["documents", "nll", "tokens", "words", "bytes", "token_perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte"])
    public func prepare(_ suite: Suite, _ c: PreparationContext) throws -> PreparedSuite {
        try PerplexitySuite(suite: suite, config: self, tokenizer: c.tokenizer, model: c.model, locations: c.locations)
    }
    /// Unit: document; the perplexities are ratios of sums over the resample's documents.
    public static func resamplingPlan(_ r: SuiteResult) -> ResamplingPlan? {
        guard let nll = r.doubles("nll"), let tokens = r.integers("tokens"), let bytes = r.integers("bytes"), nll.count == tokens.count else { return nil }
        // Both are monotone in the mean nll, whose denominators (tokens, bytes) no edit changes.
        return ResamplingPlan(unit: "document", unitCount: nll.count, metrics: ["token_perplexity", "bits_per_byte"],
                              unitSums: ["token_perplexity": nll, "bits_per_byte": nll]) { units in
            var n = 0.0, t = 0, b = 0
            for u in units { n += nll[u]; t += tokens[u]; b += bytes[u] }
            return [Foundation.exp(n / Double(t)), n / (Double(b) * Foundation.log(2.0))]
        }
    }
}
