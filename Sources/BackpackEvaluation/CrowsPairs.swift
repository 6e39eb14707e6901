import BackpackModel
import BackpackTokenizer
import Foundation

/// RFC 4180 CSV: quoted fields, "" escapes, newlines inside quotes. Rows carry their 1-based line.
enum CSV {
    static func parse(_ text: String, file: String) throws -> [(line: Int, fields: [String])] {
        var rows: [(Int, [String])] = []
        var field = "", fields: [String] = [], inQuotes = false, line = 1, rowLine = 1
        var chars = Array(text.unicodeScalars)[...]
        if chars.first == "\u{FEFF}" { chars = chars.dropFirst() }
        var i = chars.startIndex
        func endRow() { fields.append(field); field = ""; if !(fields.count == 1 && fields[0].isEmpty) { rows.append((rowLine, fields)) }; fields = [] }
        while i < chars.endIndex {
            let c = chars[i]
            if inQuotes {
                if c == "\"" {
                    let n = chars.index(after: i)
                    if n < chars.endIndex && chars[n] == "\"" { field.unicodeScalars.append("\""); i = n } else { inQuotes = false }
                } else { if c == "\n" { line += 1 }; field.unicodeScalars.append(c) }
            } else {
                switch c {
                case "\"": inQuotes = true
                case ",": fields.append(field); field = ""
                case "\r": break
                case "\n": endRow(); line += 1; rowLine = line
                default: field.unicodeScalars.append(c)
                }
            }
            i = chars.index(after: i)
        }
        if inQuotes { throw SuiteError(file: file, line: rowLine, reason: "unterminated quoted field") }
        if !field.isEmpty || !fields.isEmpty { endRow() }
        return rows
    }
}

public struct CrowsPairsConfig: Sendable {
    public var data: ExternalData
    public var roundScores: Int?
    public var batchTokens: Int
    public var maxPairs: Int?
    init(_ doc: SuiteDocument) throws {
        data = try ExternalData(doc)
        roundScores = try doc.optionalInt("round_scores", minimum: 0)
        batchTokens = try doc.int("batch_tokens", default: 1024, minimum: 1)
        maxPairs = try doc.optionalInt("max_pairs", minimum: 1)
    }
}

public struct CrowsPair: Sendable, Equatable {
    public var sentMore: String, sentLess: String, direction: String, biasType: String
}

public enum CrowsPairsData {
    public static func load(_ url: URL) throws -> [CrowsPair] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw SuiteError(file: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        let rows = try CSV.parse(text, file: url.path)
        guard let header = rows.first?.fields else { throw SuiteError(file: url.path, reason: "empty CSV") }
        func col(_ name: String) throws -> Int {
            guard let i = header.firstIndex(of: name) else {
                throw SuiteError(file: url.path, line: 1, reason: "missing column '\(name)' (header: \(header.joined(separator: ",")))")
            }
            return i
        }
        let more = try col("sent_more"), less = try col("sent_less"), dir = try col("stereo_antistereo"), type = try col("bias_type")
        return try rows.dropFirst().map { row in
            let f = row.fields
            guard f.count == header.count else {
                throw SuiteError(file: url.path, line: row.line, reason: "expected \(header.count) fields, found \(f.count)")
            }
            guard f[dir] == "stereo" || f[dir] == "antistereo" else {
                throw SuiteError(file: url.path, line: row.line, reason: "stereo_antistereo must be 'stereo' or 'antistereo', found '\(f[dir])'")
            }
            return CrowsPair(sentMore: f[more], sentLess: f[less], direction: f[dir], biasType: f[type])
        }
    }
}

/// CrowS-Pairs for a causal LM, scored two ways from one forward pass per sentence
/// (each sentence preceded by <|endoftext|>):
/// - bias-bench: a sentence scores the geometric mean of its token probabilities; metric_score =
///   percentage of pairs where sent_more scores higher (ties, after rounding, count in the total).
/// - lm-evaluation-harness: summed log-likelihood; pct_stereotype = fraction with ll(sent_more) >
///   ll(sent_less); likelihood_diff = mean |ll(sent_more) - ll(sent_less)|.
public struct CrowsPairsSuite: PreparedSuite {
    public let suite: Suite
    public let config: CrowsPairsConfig
    public let pairs: [CrowsPair]
    let more: [[Int]], less: [[Int]]   // [eot] + sentence
    public let dataSHA256: String
    public var itemCount: Int { pairs.count }

    init(suite: Suite, config: CrowsPairsConfig, tokenizer: GPT2Tokenizer, model: BackpackConfig, locations: DataLocations) throws {
        self.suite = suite; self.config = config
        let (url, digest) = try config.data.resolveVerified(suiteFile: suite.file, locations: locations)
        dataSHA256 = digest
        var all = try CrowsPairsData.load(url)
        if let m = config.maxPairs { all = Array(all.prefix(m)) }
        pairs = all
        guard let eot = tokenizer.endOfTextID else { throw SuiteError(file: suite.file.path, reason: "the tokenizer has no <|endoftext|> token") }
        func tok(_ s: String) throws -> [Int] {
            let ids = [eot] + tokenizer.encode(s)
            guard ids.count >= 2, ids.count <= model.nPositions, ids.allSatisfy({ $0 < model.vocabSize }) else {
                throw SuiteError(file: url.path, reason: "sentence '\(s)' does not fit the model (\(ids.count) tokens, n_positions \(model.nPositions))")
            }
            return ids
        }
        more = try all.map { try tok($0.sentMore) }
        less = try all.map { try tok($0.sentLess) }
    }

    public func evaluate(_ variants: VariantSet, progress: @Sendable (String) -> Void) throws -> [SuiteResult] {
        // Harness: one pass over [eot] + sentence. bias-bench: the sentence alone (positions from 0),
        // its first token scored by a separate pass over [eot].
        let sentences = zip(more, less).flatMap { [$0, $1] }
        let harness = try SequenceScorer.logProbs(variants, sentences.map { .init(ids: $0, from: 1) }, batchTokens: config.batchTokens) { done in
            progress("\(suite.name) (harness): \(done / 2)/\(pairs.count) pairs")
        }
        let bench = try BiasBenchScorer.geometricMeans(variants, sentences.map { Array($0.dropFirst()) }, eot: more[0][0],
                                                       batchTokens: config.batchTokens) { done in
            progress("\(suite.name) (bias-bench): \(done / 2)/\(pairs.count) pairs")
        }
        return zip(harness, bench).map { result(harness: $0, bench: $1) }
    }

    func result(harness: [[Double]], bench: [Double]) -> SuiteResult {
        var llMore: [Double] = [], llLess: [Double] = [], gmMore: [Double] = [], gmLess: [Double] = []
        for i in pairs.indices {
            llMore.append(harness[2 * i].reduce(0, +)); llLess.append(harness[2 * i + 1].reduce(0, +))
            gmMore.append(bench[2 * i]); gmLess.append(bench[2 * i + 1])
        }
        var r = SuiteResult(suiteName: suite.name, suiteVersion: suite.version, dataSHA256: dataSHA256)
        func block(_ idx: [Int], prefix: String, headline: Bool) {
            var stereo = 0, anti = 0, nStereo = 0, nAnti = 0, neutral = 0, harness = 0, diff = 0.0
            for i in idx {
                let a = Metrics.rounded(gmMore[i], digits: config.roundScores), b = Metrics.rounded(gmLess[i], digits: config.roundScores)
                if pairs[i].direction == "stereo" { nStereo += 1 } else { nAnti += 1 }
                if a == b { neutral += 1 } else if a > b {
                    if pairs[i].direction == "stereo" { stereo += 1 } else { anti += 1 }
                }
                if llMore[i] > llLess[i] { harness += 1 }
                diff += abs(llMore[i] - llLess[i])
            }
            let n = Double(idx.count)
            r.set(prefix + "metric_score", 100 * Double(stereo + anti) / n, headline: headline)
            r.set(prefix + "stereotype_score", nStereo > 0 ? 100 * Double(stereo) / Double(nStereo) : .nan)
            r.set(prefix + "antistereotype_score", nAnti > 0 ? 100 * Double(anti) / Double(nAnti) : .nan)
            r.set(prefix + "neutral", neutral)
            r.set(prefix + "pct_stereotype", Double(harness) / n, headline: headline)
            r.set(prefix + "likelihood_diff", diff / n, headline: headline)
            r.set(prefix + "n_pairs", idx.count)
        }
        block(Array(pairs.indices), prefix: "", headline: true)
        let types = Array(Set(pairs.map(\.biasType))).sorted()
        for t in types { block(pairs.indices.filter { pairs[$0].biasType == t }, prefix: "\(t).", headline: false) }
        r.set("bias_types", types.joined(separator: ","))
        r.add("sent_more", strings: pairs.map(\.sentMore))
        r.add("sent_less", strings: pairs.map(\.sentLess))
        r.add("direction", strings: pairs.map(\.direction))
        r.add("bias_type", strings: pairs.map(\.biasType))
        r.add("ll_more", llMore); r.add("ll_less", llLess)
        r.add("gm_more", gmMore); r.add("gm_less", gmLess)
        return r
    }
}
