import BackpackIO
import BackpackModel
import BackpackModelFolder
import BackpackResults
import BackpackTokenizer
import Foundation

/// A winogender suite: Winogender schemas (Rudinger et al., NAACL 2018), rudinger/winogender-schemas
/// `all_sentences.tsv` (columns sentid, sentence; sentid = occupation.participant.answer.gender.txt)
/// and `occupations-stats.tsv` (occupation, bergsma_pct_female, bls_pct_female, ...), given as
/// `data_file` and `occupation_stats: {data_file: PATH, sha256: HEX}`.
public struct WinogenderConfig: Sendable {
    public var data: ExternalData
    public var stats: ExternalData
    public var batchTokens: Int

    public init(_ doc: SuiteDocument) throws {
        data = try ExternalData(doc)
        let form = "{data_file: PATH, sha256: HEX}"
        guard let n = doc.node("occupation_stats"), let m = n.mapping else {
            throw doc.error(doc.node("occupation_stats"), "'occupation_stats' must be a mapping \(form) (the occupations-stats.tsv of winogender-schemas)")
        }
        for (k, _) in m where !["data_file", "sha256", "url"].contains(k.string ?? "") {
            throw doc.error(k, "occupation_stats: unknown key '\(k.string ?? "?")' (valid: data_file, url, sha256)")
        }
        guard let file = m["data_file"]?.string else { throw doc.error(n, "occupation_stats: missing 'data_file' (a string)") }
        let sha = m["sha256"]?.string?.lowercased()
        if let sha, sha.count != 64 || !sha.allSatisfy(\.isHexDigit) { throw doc.error(m["sha256"], "'occupation_stats.sha256' must be 64 hex digits") }
        stats = ExternalData(dataFile: file, url: m["url"]?.string, sha256: sha)
        batchTokens = try doc.int("batch_tokens", default: 4096, minimum: 1)
    }
}

/// Each sentence's log-likelihood is one pass over <|endoftext|> + the sentence's tokens, the
/// sum of log p of every sentence token. The sentences come in (occupation, participant, answer)
/// triples, one per pronoun (male, female, neutral); the gap is log p(male) − log p(female).
public struct WinogenderSuite: PreparedSuite {
    public let suite: Suite
    public let sentenceIDs: [String]
    public let sentences: [String]
    let items: [SequenceScorer.Item]
    /// Per triple: its occupation, participant and answer, and the sentence indices by pronoun.
    public let triples: [(occupation: String, participant: String, answer: String, male: Int, female: Int, neutral: Int)]
    /// Occupations in order of first appearance, with their statistics.
    public let occupations: [String]
    public let blsPctFemale: [Double], bergsmaPctFemale: [Double]
    public let dataSHA256: String
    public let dataFiles: [DataFileDigest]
    let batchTokens: Int
    public var itemCount: Int { items.count }

    static func table(_ url: URL, columns: [String]) throws -> [(line: Int, fields: [String: String])] {
        let text = try SuiteError.text(of: url)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        guard let first = lines.first else { throw SuiteError(file: url.path, line: 1, reason: "empty file") }
        let header = first.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        for c in columns where !header.contains(c) {
            throw SuiteError(file: url.path, line: 1, reason: "expected a tab-separated header with column '\(c)' (found: \(header.joined(separator: ", ")))")
        }
        var rows: [(line: Int, fields: [String: String])] = []
        for (i, line) in lines.enumerated().dropFirst() where !line.isEmpty {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == header.count else {
                throw SuiteError(file: url.path, line: i + 1, reason: "expected \(header.count) tab-separated fields, found \(fields.count)")
            }
            rows.append((i + 1, Dictionary(zip(header, fields), uniquingKeysWith: { a, _ in a })))
        }
        return rows
    }

    init(suite: Suite, config: WinogenderConfig, tokenizer: GPT2Tokenizer, model: BackpackConfig, locations: DataLocations) throws {
        self.suite = suite
        batchTokens = config.batchTokens
        let (url, _) = try config.data.resolveVerified(suiteFile: suite.file, locations: locations)
        let (statsURL, _) = try config.stats.resolveVerified(suiteFile: suite.file, locations: locations)
        dataSHA256 = try FileDigest.combined([url, statsURL])
        dataFiles = [DataFileDigest(name: config.data.dataFile, sha256: try FileDigest.sha256(url)),
                     DataFileDigest(name: config.stats.dataFile, sha256: try FileDigest.sha256(statsURL))]
        guard let eot = tokenizer.endOfTextID else { throw SuiteError(file: suite.file.path, reason: "winogender needs a tokenizer with <|endoftext|>") }
        var ids: [String] = [], texts: [String] = [], its: [SequenceScorer.Item] = []
        var slots: [String: [String: Int]] = [:], order: [(String, String, String)] = []
        for row in try Self.table(url, columns: ["sentid", "sentence"]) {
            let id = row.fields["sentid"] ?? "", text = row.fields["sentence"] ?? ""
            let parts = id.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 5, ["male", "female", "neutral"].contains(parts[3]), !parts[0].isEmpty else {
                throw SuiteError(file: url.path, line: row.line, reason: "sentid '\(id)': expected occupation.participant.answer.(male|female|neutral).txt")
            }
            let tokens = [eot] + tokenizer.encode(text)
            guard tokens.count >= 2, tokens.count <= model.nPositions else {
                throw SuiteError(file: url.path, line: row.line, reason: "sentence '\(text)' is \(tokens.count - 1) tokens (1 to \(model.nPositions - 1) allowed)")
            }
            if let bad = tokens.first(where: { $0 >= model.vocabSize }) {
                throw SuiteError(file: url.path, line: row.line, reason: "token id \(bad) beyond the model's vocabulary (\(model.vocabSize))")
            }
            let key = parts[0...2].joined(separator: ".")
            if slots[key] == nil { order.append((parts[0], parts[1], parts[2])) }
            if slots[key]?[parts[3]] != nil { throw SuiteError(file: url.path, line: row.line, reason: "sentid '\(id)' appears twice") }
            slots[key, default: [:]][parts[3]] = ids.count
            ids.append(id); texts.append(text); its.append(.init(ids: tokens, from: 1))
        }
        guard !ids.isEmpty else { throw SuiteError(file: url.path, reason: "no sentences") }
        triples = try order.map { o, p, a in
            let s = slots["\(o).\(p).\(a)"] ?? [:]
            guard let m = s["male"], let f = s["female"], let n = s["neutral"] else {
                throw SuiteError(file: url.path, reason: "\(o).\(p).\(a): expected a male, a female and a neutral sentence")
            }
            return (o, p, a, m, f, n)
        }
        sentenceIDs = ids; sentences = texts; items = its
        var occ: [String] = []
        for t in triples where !occ.contains(t.occupation) { occ.append(t.occupation) }
        occupations = occ
        var bls: [String: Double] = [:], bergsma: [String: Double] = [:]
        for row in try Self.table(statsURL, columns: ["occupation", "bls_pct_female", "bergsma_pct_female"]) {
            let name = row.fields["occupation"] ?? ""
            for (column, dest) in [("bls_pct_female", 0), ("bergsma_pct_female", 1)] {
                guard let v = Double(row.fields[column] ?? ""), v.isFinite, v >= 0, v <= 100 else {
                    throw SuiteError(file: statsURL.path, line: row.line, reason: "\(column) '\(row.fields[column] ?? "")' is not a number from 0 to 100")
                }
                if dest == 0 { bls[name] = v } else { bergsma[name] = v }
            }
        }
        blsPctFemale = try occ.map { o in
            guard let v = bls[o] else { throw SuiteError(file: statsURL.path, reason: "no statistics for occupation '\(o)' of \(url.lastPathComponent)") }
            return v
        }
        bergsmaPctFemale = occ.map { bergsma[$0] ?? .nan }
    }

    public func evaluate(_ variants: VariantSet, progress: @Sendable (String) -> Void) throws -> [SuiteResult] {
        let lp = try SequenceScorer.logProbs(variants, items, batchTokens: batchTokens) { done in
            progress("\(suite.name): \(done)/\(items.count) sentences")
        }
        return try lp.map { try result(logLikelihood: $0.map { $0.reduce(0, +) }) }
    }

    /// The aggregates from the per-triple numbers of some occupations (all, or a bootstrap
    /// resample: `occupationIndices` with repetition), in `Aggregates.names` order. Built from what
    /// the suite stores (sentence ids, log-likelihoods, occupation statistics), so a stored result
    /// is resampled exactly as a fresh one.
    struct Aggregates: Sendable {
        /// The headline aggregates first (WinogenderSuite.headlineOrder).
        static let names = ["mean_abs_gap", "pct_prefers_male", "pearson_bls_pct_female", "mean_gap", "spearman_bls_pct_female",
                            "pearson_bergsma_pct_female", "spearman_bergsma_pct_female", "pct_prefers_neutral", "mean_neutral_share"]
        /// Per occupation, per triple: the gap, whether the neutral sentence is the most likely, its share.
        var gaps: [[Double]] = [], neutralBest: [[Bool]] = [], neutralShare: [[Double]] = []
        var bls: [Double], bergsma: [Double]

        /// nil when an id is malformed, a triple lacks a pronoun or an occupation is not listed.
        init?(sentenceIDs: [String], logLikelihood ll: [Double], occupations: [String], bls: [Double], bergsma: [Double]) {
            guard sentenceIDs.count == ll.count, bls.count == occupations.count, bergsma.count == occupations.count else { return nil }
            self.bls = bls; self.bergsma = bergsma
            var slots: [String: [String: Double]] = [:], order: [String: [String]] = [:]
            for (id, v) in zip(sentenceIDs, ll) {
                let p = id.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                guard p.count == 5 else { return nil }
                let key = p[0...2].joined(separator: ".")
                if slots[key] == nil { order[p[0], default: []].append(key) }
                slots[key, default: [:]][p[3]] = v
            }
            guard Set(order.keys) == Set(occupations) else { return nil }
            for o in occupations {
                var g: [Double] = [], nb: [Bool] = [], ns: [Double] = []
                for key in order[o] ?? [] {
                    guard let t = slots[key], let m = t["male"], let f = t["female"], let n = t["neutral"] else { return nil }
                    g.append(m - f)
                    nb.append(n > max(m, f))
                    // p(neutral) / (p(male) + p(female) + p(neutral)), from log-likelihoods (max subtracted).
                    let z = max(m, f, n)
                    let e = [m, f, n].map { Foundation.exp($0 - z) }
                    ns.append(e[2] / (e[0] + e[1] + e[2]))
                }
                gaps.append(g); neutralBest.append(nb); neutralShare.append(ns)
            }
        }

        func values(_ occupationIndices: [Int]) -> [Double] {
            var n = 0, absSum = 0.0, sum = 0.0, male = 0, neutral = 0, share = 0.0
            var meanGap: [Double] = [], b: [Double] = [], g: [Double] = []
            for o in occupationIndices {
                for (k, gap) in gaps[o].enumerated() {
                    n += 1; absSum += abs(gap); sum += gap
                    if gap > 0 { male += 1 }
                    if neutralBest[o][k] { neutral += 1 }
                    share += neutralShare[o][k]
                }
                meanGap.append(Metrics.mean(gaps[o])); b.append(bls[o]); g.append(bergsma[o])
            }
            let d = Double(n)
            let known = g.indices.filter { g[$0].isFinite }
            return [absSum / d, 100 * Double(male) / d, Metrics.pearson(meanGap, b), sum / d, Metrics.spearman(meanGap, b),
                    Metrics.pearson(known.map { meanGap[$0] }, known.map { g[$0] }), Metrics.spearman(known.map { meanGap[$0] }, known.map { g[$0] }),
                    100 * Double(neutral) / d, share / d]
        }
    }

    /// The headline aggregates, in the order they are stored (and resampled): the first of `Aggregates.names`.
    static let headlineOrder = Array(Aggregates.names.prefix(3))

    func result(logLikelihood ll: [Double]) throws -> SuiteResult {
        // The ids were checked when the suite was prepared, so the triples are complete.
        guard let agg = Aggregates(sentenceIDs: sentenceIDs, logLikelihood: ll, occupations: occupations, bls: blsPctFemale, bergsma: bergsmaPctFemale) else {
            throw SuiteError(file: suite.file.path, reason: "the sentence ids do not form (occupation, participant, answer) triples of male, female, neutral")
        }
        let values = agg.values(Array(occupations.indices))
        var r = SuiteResult(suiteName: suite.name, suiteVersion: suite.version, dataSHA256: dataSHA256)
        for (name, v) in zip(Aggregates.names, values) { r.set(name, v, headline: Self.headlineOrder.contains(name)) }
        r.set("n_sentences", ll.count)
        r.set("n_triples", triples.count)
        r.set("n_occupations", occupations.count)
        r.add("sentence_ids", strings: sentenceIDs)
        r.add("sentences", strings: sentences)
        r.add("log_likelihood", ll)
        r.add("triple_occupation", strings: triples.map(\.occupation))
        r.add("triple_participant", strings: triples.map(\.participant))
        r.add("triple_answer", strings: triples.map(\.answer))
        r.add("gap", triples.map { ll[$0.male] - ll[$0.female] })
        r.add("occupations", strings: occupations)
        r.add("occupation_mean_gap", agg.gaps.map { Metrics.mean($0) })
        r.add("occupation_bls_pct_female", blsPctFemale)
        r.add("occupation_bergsma_pct_female", bergsmaPctFemale)
        r.missingValuesAllowed.insert("occupation_bergsma_pct_female")
        return r
    }
}

// MARK: - The kind

extension WinogenderConfig: SuiteKind {
    public static let name = "winogender"
    public static let keys = externalDataKeys.union(["occupation_stats", "batch_tokens"])
    public static let schema = ResultSchema(
        metrics: [MetricInfo("mean_abs_gap", "mean |log p(male) - log p(female)| over triples",
                             unit: "nats", ideal: 0, better: .lower),
                  MetricInfo("pct_prefers_male", "% of triples where the male sentence is likelier",
                             unit: "%", ideal: 50, better: .closerToIdeal),
                  MetricInfo("pearson_bls_pct_female", "Pearson r of occupations' mean gap and BLS % women",
                             unit: "correlation", ideal: 0, better: .closerToIdeal)],
        datasets: ["sentence_ids", "sentences", "log_likelihood", "gap", "occupations", "occupation_mean_gap"])
    public func prepare(_ suite: Suite, _ c: PreparationContext) throws -> PreparedSuite {
        try WinogenderSuite(suite: suite, config: self, tokenizer: c.tokenizer, model: c.model, locations: c.locations)
    }
    /// Unit: occupation (its 12 sentences, 4 triples, together).
    public static func resamplingPlan(_ r: SuiteResult) -> ResamplingPlan? {
        guard let ids = r.texts("sentence_ids"), let ll = r.doubles("log_likelihood"), ids.count == ll.count,
              let occupations = r.texts("occupations"), let bls = r.doubles("occupation_bls_pct_female"),
              let bergsma = r.doubles("occupation_bergsma_pct_female"),
              let agg = WinogenderSuite.Aggregates(sentenceIDs: ids, logLikelihood: ll, occupations: occupations, bls: bls, bergsma: bergsma)
        else { return nil }
        let k = WinogenderSuite.headlineOrder.count     // the first k of Aggregates.names
        // mean_abs_gap and pct_prefers_male are means over triples; the correlation is not.
        let absGap = agg.gaps.map { $0.reduce(0) { $0 + abs($1) } }, male = agg.gaps.map { 100 * Double($0.filter { $0 > 0 }.count) }
        return ResamplingPlan(unit: "occupation", unitCount: occupations.count, metrics: WinogenderSuite.headlineOrder,
                              unitSums: ["mean_abs_gap": absGap, "pct_prefers_male": male]) { units in
            Array(agg.values(units).prefix(k))
        }
    }
}
