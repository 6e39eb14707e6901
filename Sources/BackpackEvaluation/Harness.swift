import BackpackCheckpoint
import BackpackModel
import BackpackResults
import BackpackTokenizer
import Foundation

// LAMBADA and WikiText as EleutherAI's lm-evaluation-harness defines them (Hewitt et al. 2023,
// Table 2). Transcribed from lm-evaluation-harness (EleutherAI/lm-evaluation-harness):
// - lm_eval/utils.py `get_rolling_token_windows`, `make_disjoint_window`;
// - lm_eval/models/huggingface.py `_loglikelihood_tokens`: the model input is
//   (context + continuation)[-(max_length + 1):][:-1]; the continuation's log-probabilities
//   are the last len(continuation) rows; is_greedy = every row's argmax equals its token;
// - lm_eval/tasks/lambada/lambada_openai.yaml: context = text.split(' ')[:-1] joined by ' ',
//   target = ' ' + text.split(' ')[-1]; metrics perplexity = exp(-mean ll), acc = mean is_greedy;
// - lm_eval/tasks/wikitext/wikitext.yaml, preprocess_wikitext.py (`wikitext_detokenizer`,
//   `process_results`: words and bytes counted on the page *before* detokenization) and
//   wikitext_document_level.py (`_generate_examples`: pages split at "= Title =" lines).

/// Log-likelihood requests (context, continuation) scored like the harness's loglikelihood.
enum HarnessScorer {
    struct Request: Sendable { var context: [Int]; var continuation: [Int] }
    struct Score: Sendable { var logLikelihood: Double; var isGreedy: Bool }

    /// Results [variant][request]; batches of up to `batchTokens` input tokens, each run through all variants.
    static func score(_ variants: VariantSet, _ requests: [Request], maxLength: Int, batchTokens: Int,
                      progress: (Int) -> Void = { _ in }) throws -> [[Score]] {
        // The harness's truncation: keep the last max_length + 1 tokens, feed all but the last.
        let full = requests.map { Array(($0.context + $0.continuation).suffix(maxLength + 1)) }
        var out = [[Score]](repeating: [], count: variants.models.count)
        var start = 0
        while start < requests.count {
            var end = start, tokens = 0
            while end < requests.count && (end == start || tokens + full[end].count - 1 <= batchTokens) {
                tokens += full[end].count - 1; end += 1
            }
            let inputs = (start..<end).map { Array(full[$0].dropLast()) }
            let scored = try variants.score(inputs, logits: .all) { s, p, row -> (Double, Bool)? in
                let r = start + s, seq = full[r], j = p + 1
                guard j >= seq.count - requests[r].continuation.count else { return nil }
                let target = seq[j]
                var best = 0
                for i in 1..<row.count where row[i] > row[best] { best = i }   // first maximum, as torch.argmax
                return (Double(row[target]) - LogSoftmax.logSumExp(row), best == target)
            }
            for v in scored.indices {
                for s in scored[v].indices {
                    let rows = scored[v][s].compactMap { $0 }
                    out[v].append(Score(logLikelihood: rows.map(\.0).reduce(0, +), isGreedy: rows.allSatisfy(\.1)))
                }
            }
            start = end
            progress(end)
        }
        return out
    }

    /// `get_rolling_token_windows(tokens, prefix_token, max_seq_len, context_len=1)` followed by
    /// `make_disjoint_window`: every token predicted once; the first window's context is the
    /// prefix token alone, a later window's context the max_length + 1 − len(continuation)
    /// tokens before it (so the model input is always max_length tokens when the document is long).
    static func rollingWindows(_ tokens: [Int], prefix: Int, maxLength: Int) -> [Request] {
        guard !tokens.isEmpty else { return [] }
        let first = min(maxLength, tokens.count)
        var out = [Request(context: [prefix], continuation: Array(tokens[..<first]))]
        var predicted = first
        while predicted < tokens.count {
            let length = min(tokens.count - predicted, maxLength)
            let end = predicted + length
            // a = tokens[end - L - 1 ..< end - 1], b = tokens[end - length ..< end];
            // disjoint: a[: len(a) - (len(b) - 1)] = tokens[end - L - 1 ..< end - length]
            out.append(Request(context: Array(tokens[(end - maxLength - 1)..<(end - length)]),
                               continuation: Array(tokens[(end - length)..<end])))
            predicted += length
        }
        return out
    }
}

/// Reads an external data file as UTF-8 after verifying any pinned digest.
private func readVerified(_ data: ExternalData, suite: Suite, locations: DataLocations) throws -> (text: String, sha256: String) {
    let (url, digest) = try data.resolveVerified(suiteFile: suite.file, locations: locations)
    do { return (try String(contentsOf: url, encoding: .utf8), digest) } catch {
        throw SuiteError(file: url.path, reason: "cannot read as UTF-8 text: \(error.localizedDescription)")
    }
}

public struct HarnessConfig: Sendable {
    public var data: ExternalData
    public var maxDocuments: Int?
    public var maxLength: Int?
    public var batchTokens: Int
    init(_ doc: SuiteDocument) throws {
        data = try ExternalData(doc)
        maxDocuments = try doc.optionalInt("max_documents", minimum: 1)
        maxLength = try doc.optionalInt("max_length", minimum: 2)
        batchTokens = try doc.int("batch_tokens", default: 4096, minimum: 1)
    }
    static let keys: Set<String> = ["max_documents", "max_length", "batch_tokens"]
}

/// lambada_openai: the OpenAI LAMBADA test file, one JSON object {"text": ...} a line.
public struct LambadaSuite: PreparedSuite {
    public let suite: Suite
    public let contexts: [String], targets: [String]
    let requests: [HarnessScorer.Request]
    let maxLength: Int, batchTokens: Int
    public let dataSHA256: String
    public let dataFiles: [DataFileDigest]
    public var itemCount: Int { requests.count }

    init(suite: Suite, config: HarnessConfig, tokenizer: GPT2Tokenizer, model: BackpackConfig, locations: DataLocations) throws {
        self.suite = suite
        let (text, digest) = try readVerified(config.data, suite: suite, locations: locations)
        dataSHA256 = digest
        dataFiles = [DataFileDigest(name: config.data.dataFile, sha256: digest)]
        var c: [String] = [], t: [String] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.allSatisfy(\.isWhitespace) { continue }
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let doc = obj["text"] as? String else {
                throw SuiteError(file: config.data.dataFile, line: i + 1, reason: "expected a JSON object with a string field \"text\"")
            }
            // Python's text.split(' '): split on single spaces, empty pieces kept.
            let words = doc.split(separator: " ", omittingEmptySubsequences: false)
            c.append(words.dropLast().joined(separator: " ")); t.append(" " + (words.last.map(String.init) ?? ""))
            if let m = config.maxDocuments, c.count == m { break }
        }
        guard !c.isEmpty else { throw SuiteError(file: config.data.dataFile, reason: "no documents") }
        contexts = c; targets = t
        maxLength = min(config.maxLength ?? model.nPositions, model.nPositions)
        batchTokens = config.batchTokens
        guard let eot = tokenizer.endOfTextID else { throw SuiteError(file: suite.file.path, reason: "lambada needs a tokenizer with <|endoftext|>") }
        // Context and target encoded separately (the harness's _encode_pair; GPT-2's pre-tokenizer
        // splits before the target's space, so this equals splitting the encoded whole); an
        // empty context is <|endoftext|>, as the harness does.
        let limit = maxLength, file = suite.file.path
        requests = try zip(c, t).map { ctx, tgt in
            let r = HarnessScorer.Request(context: ctx.isEmpty ? [eot] : tokenizer.encode(ctx), continuation: tokenizer.encode(tgt))
            if let bad = (r.context + r.continuation).first(where: { $0 >= model.vocabSize }) {
                throw SuiteError(file: file, reason: "token id \(bad) beyond the model's vocabulary (\(model.vocabSize))")
            }
            guard r.continuation.count <= limit else { throw SuiteError(file: file, reason: "target '\(tgt)' longer than max_length") }
            return r
        }
    }

    public func evaluate(_ variants: VariantSet, progress: @Sendable (String) -> Void) throws -> [SuiteResult] {
        let scores = try HarnessScorer.score(variants, requests, maxLength: maxLength, batchTokens: batchTokens) { done in
            progress("\(suite.name): \(done)/\(requests.count) documents")
        }
        return scores.map { s in
            let ll = s.map(\.logLikelihood), greedy = s.map { $0.isGreedy ? 1 : 0 }
            var r = SuiteResult(suiteName: suite.name, suiteVersion: suite.version, dataSHA256: dataSHA256)
            r.set("acc", Double(greedy.reduce(0, +)) / Double(greedy.count), headline: true)
            r.set("perplexity", Foundation.exp(-Metrics.mean(ll)), headline: true)
            r.set("n_documents", s.count)
            r.set("max_length", maxLength)
            r.add("targets", strings: targets)
            r.add("loglikelihood", ll)
            r.add("is_greedy", ints: greedy)
            return r
        }
    }
}

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
