// lm-evaluation-harness's wikitext, document level (transcription notes: Harness.swift).
import BackpackModel
import BackpackModelFolder
import BackpackResults
import BackpackTokenizer
import Foundation

/// wikitext: document-level rolling log-likelihood over WikiText-2 (raw) pages.
public struct WikitextSuite: PreparedSuite {
    public let suite: Suite
    public let pages: [String]
    let windows: [(doc: Int, request: HarnessScorer.Request)]
    let words: [Int], bytes: [Int]
    let maxLength: Int, batchTokens: Int
    public let dataSHA256: String
    public let dataFiles: [DataFileDigest]
    public var itemCount: Int { windows.count }

    /// wikitext_document_level.py `_generate_examples`: a page starts at a line that, after
    /// "= = =" -> "===" and "= =" -> "==" and stripping, starts with "= " and ends with " =";
    /// lines are joined with "\n"; a page that is only whitespace is dropped, except the last.
    public static func pages(_ text: String) -> [String] {
        var out: [String] = [], current: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let r = line.replacingOccurrences(of: "= = =", with: "===").replacingOccurrences(of: "= =", with: "==")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if r.hasPrefix("= ") && r.hasSuffix(" =") {
                let page = current.joined(separator: "\n")
                if !page.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { out.append(page) }
                current = []
            }
            current.append(line)
        }
        out.append(current.joined(separator: "\n"))
        return out
    }

    /// preprocess_wikitext.py `wikitext_detokenizer`, rule for rule, in its order.
    public static func detokenize(_ page: String) -> String {
        func sub(_ s: String, _ pattern: String, _ template: String) -> String {
            // The patterns are constants of this file: a failure to compile is a programming error.
            guard let re = try? NSRegularExpression(pattern: pattern) else { preconditionFailure("bad pattern \(pattern)") }
            return re.stringByReplacingMatches(in: s, range: NSRange(s.startIndex..., in: s), withTemplate: template)
        }
        var s = page
        s = s.replacingOccurrences(of: "s '", with: "s'")
        s = sub(s, "/' [0-9]/", "/'[0-9]/")        // sic: the harness replaces with the literal text "/'[0-9]/"
        for (a, b) in [(" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" : ", ": "), (" ; ", "; "), (" . ", ". "),
                       (" ! ", "! "), (" ? ", "? "), (" , ", ", ")] {
            s = s.replacingOccurrences(of: a, with: b)
        }
        s = sub(s, #"\(\s*([^\)]*?)\s*\)"#, "($1)")
        s = sub(s, #"\[\s*([^\]]*?)\s*\]"#, "[$1]")
        s = sub(s, #"\{\s*([^}]*?)\s*\}"#, "{$1}")
        s = sub(s, #""\s*([^"]*?)\s*""#, "\"$1\"")
        s = sub(s, #"'\s*([^']*?)\s*'"#, "'$1'")
        for (a, b) in [("= = = =", "===="), ("= = =", "==="), ("= =", "=="), (" \u{B0} ", "\u{B0}"), (" \n", "\n"),
                       ("\n ", "\n"), (" N ", " 1 "), (" 's", "'s")] {
            s = s.replacingOccurrences(of: a, with: b)
        }
        return s
    }

    /// len(re.split(r"\s+", page)): whitespace runs + 1 (empty pieces at the ends count).
    public static func wordCount(_ page: String) -> Int {
        var runs = 0, inRun = false
        for u in page.unicodeScalars {
            let ws = u.properties.isWhitespace || (0x1C...0x1F).contains(u.value)
            if ws && !inRun { runs += 1 }
            inRun = ws
        }
        return runs + 1
    }

    init(suite: Suite, config: HarnessConfig, tokenizer: GPT2Tokenizer, model: BackpackConfig, locations: DataLocations) throws {
        self.suite = suite
        let (text, digest) = try readVerified(config.data, suite: suite, locations: locations)
        dataSHA256 = digest
        dataFiles = [DataFileDigest(name: config.data.dataFile, sha256: digest)]
        var p = Self.pages(text)
        if let m = config.maxDocuments { p = Array(p.prefix(m)) }
        pages = p
        maxLength = min(config.maxLength ?? model.nPositions, model.nPositions)
        batchTokens = config.batchTokens
        guard let eot = tokenizer.endOfTextID else { throw SuiteError(file: suite.file.path, reason: "wikitext needs a tokenizer with <|endoftext|>") }
        var ws: [(Int, HarnessScorer.Request)] = []
        for (d, page) in p.enumerated() {
            let ids = tokenizer.encode(Self.detokenize(page))
            if let bad = ids.first(where: { $0 >= model.vocabSize }) {
                throw SuiteError(file: suite.file.path, reason: "page \(d): token id \(bad) beyond the model's vocabulary (\(model.vocabSize))")
            }
            for w in HarnessScorer.rollingWindows(ids, prefix: eot, maxLength: maxLength) { ws.append((d, w)) }
        }
        windows = ws
        words = p.map(Self.wordCount); bytes = p.map { $0.utf8.count }
    }

    public func evaluate(_ variants: VariantSet, progress: @Sendable (String) -> Void) throws -> [SuiteResult] {
        let scores = try HarnessScorer.score(variants, windows.map(\.request), maxLength: maxLength, batchTokens: batchTokens) { done in
            progress("\(suite.name): \(done)/\(windows.count) windows")
        }
        return scores.map { s in
            var ll = [Double](repeating: 0, count: pages.count)
            for (w, score) in zip(windows, s) { ll[w.doc] += score.logLikelihood }
            let total = ll.reduce(0, +), nWords = words.reduce(0, +), nBytes = bytes.reduce(0, +)
            var r = SuiteResult(suiteName: suite.name, suiteVersion: suite.version, dataSHA256: dataSHA256)
            r.set("word_perplexity", Foundation.exp(-total / Double(nWords)), headline: true)
            r.set("byte_perplexity", Foundation.exp(-total / Double(nBytes)))
            r.set("bits_per_byte", -total / (Double(nBytes) * Foundation.log(2.0)), headline: true)
            r.set("loglikelihood_sum", total)
            r.set("n_documents", pages.count)
            r.set("n_words", nWords); r.set("n_bytes", nBytes)
            r.set("max_length", maxLength)
            r.add("loglikelihood", ll)
            r.add("words", ints: words); r.add("bytes", ints: bytes)
            return r
        }
    }
}

// MARK: - The kind

/// `kind: wikitext`: lm-evaluation-harness's document-level WikiText-2 (HarnessConfig's keys).
public struct WikitextConfig: SuiteKind {
    public var harness: HarnessConfig
    public static let name = "wikitext"
    public static let keys = HarnessConfig.keys
    public static let schema = ResultSchema(
        metrics: [MetricInfo("word_perplexity", "exp(-log-likelihood per word of the pages)",
                             unit: "perplexity", ideal: nil, better: .lower),
                  MetricInfo("bits_per_byte", "-log-likelihood in bits per UTF-8 byte",
                             unit: "bits/byte", ideal: nil, better: .lower)],
        roles: [.cost: "word_perplexity"],
        datasets: ["loglikelihood", "words", "bytes"])
    public init(_ doc: SuiteDocument) throws { harness = try HarnessConfig(doc) }
    public func prepare(_ suite: Suite, _ c: PreparationContext) throws -> PreparedSuite {
        try WikitextSuite(suite: suite, config: harness, tokenizer: c.tokenizer, model: c.model, locations: c.locations)
    }
    /// Unit: page; ratios of sums over the resample's pages.
    public static func resamplingPlan(_ r: SuiteResult) -> ResamplingPlan? {
        guard let ll = r.doubles("loglikelihood"), let w = r.integers("words"), let b = r.integers("bytes"), ll.count == w.count else { return nil }
        // Both are monotone in the total log-likelihood; words and bytes are the same in every variant.
        return ResamplingPlan(unit: "document", unitCount: ll.count, metrics: ["word_perplexity", "bits_per_byte"],
                              unitSums: ["word_perplexity": ll.map { -$0 }, "bits_per_byte": ll.map { -$0 }]) { units in
            var s = 0.0, nw = 0, nb = 0
            for u in units { s += ll[u]; nw += w[u]; nb += b[u] }
            return [Foundation.exp(-s / Double(nw)), -s / (Double(nb) * Foundation.log(2.0))]
        }
    }
}
