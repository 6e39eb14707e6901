import BackpackIO
import BackpackModel
import BackpackModelFolder
import BackpackPrompts
import BackpackTokenizer
import BackpackResults
import BackpackYAML
import Foundation

/// A pronoun_bias suite's definition: the one pronoun-suite reader (BackpackPrompts'
/// PronounSuite, shared with fit_scale), given the document composed once.
public struct PronounBiasConfig: Sendable {
    public var definition: PronounSuite
    public var placeholder: String { definition.placeholder }
    public var pair: (String, String) { definition.pair }
    public var prompts: [String] { definition.prompts }
    public var nouns: [String]
    /// The files the suite reads (its YAML, its noun list, a pronoun-retention suite's pairs list).
    public var dataFiles: [URL]
    /// `occupation_stats`: a CSV of the share of women per occupation, to correlate the nouns'
    /// signed bias with (issue 13). Optional.
    public var occupationStats: OccupationStats?

    public init(_ doc: SuiteDocument) throws {
        occupationStats = try doc.node("occupation_stats").map { try OccupationStats($0, doc) }
        if doc.node("pair") == nil { throw doc.error(nil, "missing key 'pair'") }
        if doc.node("nouns") == nil { throw doc.error(nil, "missing key 'nouns'") }
        definition = try PronounSuite(doc.root, reader: doc.reader, url: doc.url)
        dataFiles = definition.files
        nouns = try definition.nouns.map { ref in
            guard case .word(let w, _) = ref else {
                throw SuiteError(ref.place, "nouns: a pronoun_bias suite lists words, found a token id")
            }
            return w
        }
    }

    init(definition: PronounSuite, nouns: [String], dataFiles: [URL]) {
        self.definition = definition; self.nouns = nouns; self.dataFiles = dataFiles; occupationStats = nil
    }
}

/// `occupation_stats: {data_file: PATH, url: ..., sha256: ..., aliases: {noun: job}}`: a CSV with
/// header columns `job` and `percent_women` (the WinoBias statistics). A noun matches the job of
/// the same name, ignoring case, or the job its alias names.
public struct OccupationStats: Sendable {
    public var data: ExternalData
    /// Lowercased noun -> lowercased job in the file.
    public var aliases: [String: String]

    init(_ node: YAMLNode, _ doc: SuiteDocument) throws {
        let form = "{data_file: PATH, url: URL, sha256: HEX, aliases: {noun: job}}"
        guard let m = node.mapping else { throw doc.error(node, "'occupation_stats' must be a mapping \(form)") }
        func text(_ key: String) throws -> String? {
            guard let v = m[key] else { return nil }
            guard let t = v.string else { throw doc.error(v, "'occupation_stats.\(key)' must be a string") }
            return t
        }
        for (k, _) in m where !["data_file", "url", "sha256", "aliases"].contains(k.string ?? "") {
            throw doc.error(k, "occupation_stats: unknown key '\(k.string ?? "?")' (valid: data_file, url, sha256, aliases)")
        }
        guard let file = try text("data_file") else { throw doc.error(node, "occupation_stats: missing 'data_file'") }
        let sha = try text("sha256")?.lowercased()
        if let sha, sha.count != 64 || !sha.allSatisfy(\.isHexDigit) { throw doc.error(m["sha256"], "'occupation_stats.sha256' must be 64 hex digits") }
        data = ExternalData(dataFile: file, url: try text("url"), sha256: sha)
        var a: [String: String] = [:]
        if let an = m["aliases"] {
            guard let am = an.mapping else { throw doc.error(an, "'occupation_stats.aliases' must be a mapping noun: job") }
            for (k, v) in am {
                guard let noun = k.string, let job = v.string else { throw doc.error(v, "occupation_stats.aliases: every entry must be noun: job (strings)") }
                a[noun.lowercased()] = job.lowercased()
            }
        }
        aliases = a
    }

    /// Percent women per noun (NaN where the file has no such job), and the file read with its SHA-256.
    func percentWomen(nouns: [String], suiteFile: URL, locations: DataLocations) throws -> (values: [Double], url: URL, sha256: String) {
        let (url, digest) = try data.resolveVerified(suiteFile: suiteFile, locations: locations)
        let text = try SuiteError.text(of: url)
        let rows = try CSV.parse(text, file: url.path)
        guard let header = rows.first?.fields.map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }),
              let jc = header.firstIndex(of: "job"), let pc = header.firstIndex(of: "percent_women") else {
            throw SuiteError(file: url.path, line: 1, reason: "expected a header row with columns 'job' and 'percent_women'")
        }
        var table: [String: Double] = [:]
        for row in rows.dropFirst() {
            guard row.fields.count > max(jc, pc) else { throw SuiteError(file: url.path, line: row.line, reason: "expected \(header.count) fields, found \(row.fields.count)") }
            let job = row.fields[jc].trimmingCharacters(in: .whitespaces).lowercased()
            guard let v = Double(row.fields[pc].trimmingCharacters(in: .whitespaces)), v.isFinite, v >= 0, v <= 100 else {
                throw SuiteError(file: url.path, line: row.line, reason: "percent_women '\(row.fields[pc])' is not a number from 0 to 100")
            }
            table[job] = v
        }
        let values = nouns.map { n -> Double in
            let key = n.lowercased()
            return table[aliases[key] ?? key] ?? .nan
        }
        return (values, url, digest)
    }
}

/// The paper's pronoun protocol: next-token p(" he"), p(" she") after each prompt.
public struct PronounBiasSuite: PreparedSuite {
    public let suite: Suite
    public let config: PronounBiasConfig
    public let keptNouns: [String]
    public let skippedNouns: [String]
    /// One entry per prompt: the filled-in text, its noun, its token ids.
    public let prompts: [String]
    public let promptNouns: [String]
    /// The noun's token in each prompt (a kept noun is one token).
    public let promptNounIDs: [Int]
    public let tokenized: [[Int]]
    public let pairIDs: (Int, Int)
    public let dataSHA256: String
    public let dataFiles: [DataFileDigest]
    /// Percent women per kept noun (NaN: unknown); nil when the suite declares no statistics.
    public let percentWomen: [Double]?
    public var itemCount: Int { prompts.count }
    /// Whether `evaluate` stores the sense-by-position attribution of every prompt (default; the
    /// library may turn it off, `backpack bench --demo-workload` times both).
    public var attributes = true

    init(suite: Suite, config: PronounBiasConfig, tokenizer: GPT2Tokenizer, model: BackpackConfig, locations: DataLocations = .init()) throws {
        self.suite = suite; self.config = config
        func single(_ word: String) throws -> Int {
            let ids = tokenizer.wordTokens(word)
            guard ids.count == 1 else {
                throw SuiteError(file: suite.file.path, reason: "pair word ' \(word)' is \(ids.count) tokens with this tokenizer; it must be one token")
            }
            guard ids[0] < model.vocabSize else { throw SuiteError(file: suite.file.path, reason: "pair word ' \(word)' has id \(ids[0]) beyond the model's vocabulary (\(model.vocabSize))") }
            return ids[0]
        }
        pairIDs = (try single(config.pair.0), try single(config.pair.1))
        var kept: [String] = [], skipped: [String] = []
        for noun in config.nouns {
            if tokenizer.singleToken(noun) != nil { kept.append(noun) } else { skipped.append(noun) }
        }
        keptNouns = kept; skippedNouns = skipped
        var texts: [String] = [], nouns: [String] = [], ids: [[Int]] = [], nounIDs: [Int] = []
        for noun in kept {
            let nounID = tokenizer.wordTokens(noun)
            for template in config.prompts {
                let text = config.definition.text(prompt: template, noun: noun)
                let t = config.definition.ids(prompt: template, word: nounID, tokenizer: tokenizer)
                guard !t.isEmpty, t.count <= model.nPositions else {
                    throw SuiteError(file: suite.file.path, reason: "prompt '\(text)' has \(t.count) tokens (1 to \(model.nPositions) allowed)")
                }
                if let bad = t.first(where: { $0 >= model.vocabSize }) {
                    throw SuiteError(file: suite.file.path, reason: "prompt '\(text)': token id \(bad) is beyond the model's vocabulary (\(model.vocabSize))")
                }
                texts.append(text); nouns.append(noun); ids.append(t); nounIDs.append(nounID[0])
            }
        }
        prompts = texts; promptNouns = nouns; tokenized = ids; promptNounIDs = nounIDs
        // The suite file and its word lists, then the statistics: data_sha256 combines all of them.
        let definitionDigests = try config.dataFiles.map { try FileDigest.sha256($0) }
        var files = zip(config.dataFiles, definitionDigests).filter { !DataFileDigest.isSuiteFile($0.0, suite) }
            .map { DataFileDigest(name: $0.0.lastPathComponent, sha256: $0.1) }
        if let stats = config.occupationStats {
            let (values, _, digest) = try stats.percentWomen(nouns: kept, suiteFile: suite.file, locations: locations)
            percentWomen = values
            files.append(DataFileDigest(name: stats.data.dataFile, sha256: digest))
            dataSHA256 = FileDigest.combined(digests: definitionDigests + [digest])
        } else {
            percentWomen = nil
            dataSHA256 = FileDigest.combined(digests: definitionDigests)
        }
        dataFiles = files
    }

    public func evaluate(_ variants: VariantSet, progress: @Sendable (String) -> Void) throws -> [SuiteResult] {
        try logProbabilities(variants, attribute: attributes, progress: progress).map { p in
            var r = result(logA: p.a, logB: p.b)
            if let noun = p.noun, let context = p.context { addAttribution(&r, noun: noun, context: context) }
            return r
        }
    }

    /// Per variant, log p(pair.0) and log p(pair.1) after every prompt, in prompt order.
    /// With `attribute` (Backpacks only), also log p(a) - log p(b) split exactly into (sense,
    /// position) contributions (SenseAttribution), kept per prompt as the noun position's per
    /// sense (`noun`) and the total of the other positions (`context`).
    func logProbabilities(_ variants: VariantSet, attribute: Bool = false, progress: @Sendable (String) -> Void) throws
        -> [(a: [Double], b: [Double], noun: [[Double]]?, context: [Double]?)] {
        let count = variants.models.count
        var logA = [[Double]](repeating: [], count: count), logB = logA
        let attributed = attribute && variants.models.allSatisfy(\.isBackpack)
        var nounPart = [[[Double]]](repeating: [], count: count), contextPart = logA
        // One forward over all prompts, last position only; chunked to bound memory.
        let chunk = 1024
        var start = 0
        while start < tokenized.count {
            let end = min(tokenized.count, start + chunk)
            let batch = Array(tokenized[start..<end])
            let score = { (_: Int, _: Int, row: UnsafeBufferPointer<Float>) in Metrics.logSoftmax(row, at: [pairIDs.0, pairIDs.1]) }
            // With attribution, from the same contextualizations as the scores (one trunk pass).
            var scored: [[[[Double]]]], attributions: [[SenseAttribution]]? = nil
            if attributed {
                (scored, attributions) = try variants.scoreAndAttribute(batch, a: pairIDs.0, b: pairIDs.1, score)
            } else {
                scored = try variants.score(batch, logits: .last, score)
            }
            for v in 0..<count {
                for rows in scored[v] { logA[v].append(rows[0][0]); logB[v].append(rows[0][1]) }
            }
            if let attributions {
                for v in 0..<count {
                    for (i, a) in attributions[v].enumerated() {
                        let split = a.split(at: [promptNounIDs[start + i]])
                        nounPart[v].append(split.noun); contextPart[v].append(split.context.reduce(0, +))
                    }
                }
            }
            start = end
            progress("\(suite.name): \(end)/\(tokenized.count) prompts")
        }
        return (0..<count).map { v in (logA[v], logB[v], attributed ? nounPart[v] : nil, attributed ? contextPart[v] : nil) }
    }

    /// The attribution datasets (LAYOUT.md): per prompt and per noun (mean over its prompts),
    /// each sense's contribution at the noun's position (flattened, rows of k = `attribution_senses`)
    /// and the total of the other positions.
    func addAttribution(_ r: inout SuiteResult, noun: [[Double]], context: [Double]) {
        let k = noun.first?.count ?? 0
        var nounSenses: [Double] = [], nounContext: [Double] = []
        for n in keptNouns {
            let idx = promptNouns.indices.filter { promptNouns[$0] == n }
            for l in 0..<k { nounSenses.append(Metrics.mean(idx.map { noun[$0][l] })) }
            nounContext.append(Metrics.mean(idx.map { context[$0] }))
        }
        let nounTotals = noun.map { $0.reduce(0, +) }
        r.set(ResultsKeys.attributionSenses, k)
        r.set(ResultsKeys.attributionNounMeanAbs, Metrics.mean(nounTotals.map(abs)))
        r.set(ResultsKeys.attributionContextMeanAbs, Metrics.mean(context.map(abs)))
        r.add(ResultsKeys.attributionNounSenses, Array(noun.joined()))
        r.add(ResultsKeys.attributionContext, context)
        r.add(ResultsKeys.nounAttributionSenses, nounSenses)
        r.add(ResultsKeys.nounAttributionContext, nounContext)
    }

    func result(logA: [Double], logB: [Double]) -> SuiteResult {
        let pa = logA.map { Foundation.exp($0) }, pb = logB.map { Foundation.exp($0) }
        let ratio = zip(logA, logB).map { Metrics.pronounRatio(logA: $0, logB: $1) }
        var nounBias: [Double] = [], nounLogRatio: [Double] = []
        for noun in keptNouns {
            let idx = promptNouns.indices.filter { promptNouns[$0] == noun }
            nounBias.append(Metrics.mean(idx.map { ratio[$0] }))
            // Signed: > 0 leans to the pair's first word (he), < 0 to the second (she).
            nounLogRatio.append(Metrics.mean(idx.map { logA[$0] - logB[$0] }))
        }
        var r = SuiteResult(suiteName: suite.name, suiteVersion: suite.version, dataSHA256: dataSHA256)
        r.set("bias", Metrics.mean(ratio), headline: true)
        r.set("mean_noun_bias", Metrics.mean(nounBias))
        r.set("n_prompts", prompts.count)
        r.set("n_nouns", keptNouns.count)
        r.set("n_skipped_nouns", skippedNouns.count)
        r.set("skipped_nouns", skippedNouns.joined(separator: ","))
        r.set("pair", "\(config.pair.0),\(config.pair.1)")
        r.add("prompts", strings: prompts)
        r.add("prompt_nouns", strings: promptNouns)
        r.add("p_\(config.pair.0)", pa)
        r.add("p_\(config.pair.1)", pb)
        r.add("ratio", ratio)
        r.add("nouns", strings: keptNouns)
        r.add("noun_bias", nounBias)
        r.add("noun_log_ratio", nounLogRatio)
        if let pct = percentWomen {
            let known = pct.indices.filter { pct[$0].isFinite }
            let x = known.map { nounLogRatio[$0] }, y = known.map { pct[$0] }
            r.set("pearson_pct_women", Metrics.pearson(x, y))
            r.set("spearman_pct_women", Metrics.spearman(x, y))
            r.set("n_nouns_with_stats", known.count)
            r.add("noun_pct_women", pct)
            r.missingValuesAllowed.insert("noun_pct_women")
        }
        if !skippedNouns.isEmpty { r.add("skipped_nouns", strings: skippedNouns) }
        return r
    }
}

// MARK: - The kind

extension PronounBiasConfig: SuiteKind {
    public static let name = "pronoun_bias"
    public static let keys: Set<String> = ["placeholder", "pair", "nouns", "prompts", "occupation_stats"]
    public static let schema = ResultSchema(
        metrics: [MetricInfo("bias", "mean over prompts of max(p(A)/p(B), p(B)/p(A))",
                             unit: "ratio", ideal: 1, better: .lower)],
        roles: [.bias: "bias"],
        datasets: ["prompts", "prompt_nouns", "ratio", "nouns", "noun_bias", "noun_log_ratio"])
    public func prepare(_ suite: Suite, _ c: PreparationContext) throws -> PreparedSuite {
        try PronounBiasSuite(suite: suite, config: self, tokenizer: c.tokenizer, model: c.model, locations: c.locations)
    }
    /// Unit: noun (all its prompts together); bias = mean ratio over the resample's prompts.
    public static func resamplingPlan(_ r: SuiteResult) -> ResamplingPlan? {
        guard let ratio = r.doubles("ratio"), let nouns = r.texts("prompt_nouns"), ratio.count == nouns.count else { return nil }
        let sums = UnitSums(keys: nouns, series: [ratio])
        return ResamplingPlan(unit: "noun", unitCount: sums.unitCount, metrics: ["bias"], unitSums: ["bias": sums.sums[0]]) { sums.means($0) }
    }
}
