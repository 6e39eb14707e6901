import BackpackIO
import BackpackPrompts
import BackpackModel
import BackpackModelFolder
import BackpackResults
import BackpackTokenizer
import BackpackYAML
import Foundation

/// A pronoun_retention suite's definition: the pronoun-suite keys (prompts, placeholder, pair)
/// and `noun_pairs: {file: PATH}`, pairs of definitional nouns (`king queen`, one pair a line):
/// the first word of a pair takes the first pronoun of `pair`, the second word the second.
public struct PronounRetentionConfig: Sendable {
    public var definition: PronounSuite
    public var pairs: [(String, String)]
    public var pairsFile: URL

    public init(_ doc: SuiteDocument) throws {
        guard let n = doc.node("noun_pairs") else { throw doc.error(nil, "missing key 'noun_pairs' ({file: PATH}, one pair of nouns a line)") }
        guard let f = n.mapping?["file"], let path = f.string else {
            throw doc.error(n, "'noun_pairs' must be {file: PATH} (one pair a line: the noun taking the pair's first pronoun, then the noun taking the second)")
        }
        if doc.node("pair") == nil { throw doc.error(nil, "missing key 'pair'") }
        definition = try PronounSuite(doc.root, reader: doc.reader, url: doc.url)
        pairsFile = WordListFile.resolve(path, relativeTo: doc.url)
        let place = SourcePlace(file: doc.url.path, line: f.mark.line, column: f.mark.column)
        let file = pairsFile
        pairs = try SuiteError.wrapping { try PairListFile.read(file, place: place) }
    }
}

/// Whether an edit leaves definitional gender alone: the pronoun-bias prompts filled with nouns
/// whose pronoun is fixed by meaning ("My king said that" -> he). Per prompt the log-ratio
/// log p(expected) − log p(other); `accuracy` is the share of prompts where the expected pronoun
/// is the more likely, `mean_log_ratio` the mean log-ratio. A pair is kept only when both nouns
/// are one token (" " + noun), so that the kept nouns stay balanced between the two pronouns.
public struct PronounRetentionSuite: PreparedSuite {
    public let suite: Suite
    /// The prompts of the kept nouns, built and scored as pronoun-bias builds and scores its own.
    let prompts: PronounBiasSuite
    /// Per kept noun (in `prompts.keptNouns` order): true when its pronoun is the pair's first.
    public let expectsFirst: [Bool]
    public let skippedPairs: [String]
    public var itemCount: Int { prompts.itemCount }
    /// Whether `evaluate` stores the attribution (as pronoun-bias's `attributes`).
    public var attributes = true
    public var dataSHA256: String { prompts.dataSHA256 }
    public var dataFiles: [DataFileDigest] { prompts.dataFiles }

    init(suite: Suite, config: PronounRetentionConfig, tokenizer: GPT2Tokenizer, model: BackpackConfig) throws {
        self.suite = suite
        var nouns: [String] = [], first: [Bool] = [], skipped: [String] = []
        var seen: Set<String> = []
        for (a, b) in config.pairs {
            for w in [a, b] where !seen.insert(w).inserted {
                throw SuiteError(file: config.pairsFile.path, reason: "noun '\(w)' appears more than once; each noun takes one pronoun")
            }
            if tokenizer.singleToken(a) != nil && tokenizer.singleToken(b) != nil {
                nouns += [a, b]; first += [true, false]
            } else {
                skipped.append("\(a)/\(b)")
            }
        }
        guard !nouns.isEmpty else { throw SuiteError(file: config.pairsFile.path, reason: "no pair whose two nouns are one token each with this tokenizer") }
        let c = PronounBiasConfig(definition: config.definition, nouns: nouns, dataFiles: config.definition.files + [config.pairsFile])
        prompts = try PronounBiasSuite(suite: suite, config: c, tokenizer: tokenizer, model: model)
        expectsFirst = first; skippedPairs = skipped
    }

    public func evaluate(_ variants: VariantSet, progress: @Sendable (String) -> Void) throws -> [SuiteResult] {
        try prompts.logProbabilities(variants, attribute: attributes, progress: progress).map { p in
            var r = result(logA: p.a, logB: p.b)
            // The same attribution datasets as pronoun-bias (LAYOUT.md): whether an edit that
            // leaves the definitional nouns' pronouns alone does so through their own senses.
            if let noun = p.noun, let context = p.context { prompts.addAttribution(&r, noun: noun, context: context) }
            return r
        }
    }

    func result(logA: [Double], logB: [Double]) -> SuiteResult {
        let nouns = prompts.keptNouns, pair = prompts.config.pair
        let index = Dictionary(uniqueKeysWithValues: nouns.enumerated().map { ($1, $0) })
        let promptNoun = prompts.promptNouns.map { index[$0] ?? 0 }    // every prompt's noun is a kept noun
        // log p(expected) − log p(other): > 0 when the expected pronoun is the more likely.
        let logRatio = promptNoun.indices.map { i in expectsFirst[promptNoun[i]] ? logA[i] - logB[i] : logB[i] - logA[i] }
        let correct = logRatio.map { $0 > 0 ? 1 : 0 }
        var nounAccuracy: [Double] = [], nounLogRatio: [Double] = []
        for n in nouns.indices {
            let idx = promptNoun.indices.filter { promptNoun[$0] == n }
            nounAccuracy.append(Metrics.mean(idx.map { Double(correct[$0]) }))
            nounLogRatio.append(Metrics.mean(idx.map { logRatio[$0] }))
        }
        var r = SuiteResult(suiteName: suite.name, suiteVersion: suite.version, dataSHA256: prompts.dataSHA256)
        r.set("accuracy", Metrics.mean(correct.map(Double.init)), headline: true)
        r.set("mean_log_ratio", Metrics.mean(logRatio), headline: true)
        r.set("n_prompts", logRatio.count)
        r.set("n_nouns", nouns.count)
        r.set("n_skipped_pairs", skippedPairs.count)
        r.set("skipped_pairs", skippedPairs.joined(separator: ","))
        r.set("pair", "\(pair.0),\(pair.1)")
        r.add("prompts", strings: prompts.prompts)
        r.add("prompt_nouns", strings: prompts.promptNouns)
        r.add("p_\(pair.0)", logA.map { Foundation.exp($0) })
        r.add("p_\(pair.1)", logB.map { Foundation.exp($0) })
        r.add("log_ratio", logRatio)
        r.add("correct", ints: correct)
        r.add("nouns", strings: nouns)
        r.add("noun_expected", strings: expectsFirst.map { $0 ? pair.0 : pair.1 })
        r.add("noun_accuracy", nounAccuracy)
        r.add("noun_log_ratio", nounLogRatio)
        return r
    }
}

// MARK: - The kind

extension PronounRetentionConfig: SuiteKind {
    public static let name = "pronoun_retention"
    public static let keys: Set<String> = ["placeholder", "pair", "noun_pairs", "prompts"]
    public static let schema = ResultSchema(
        metrics: [MetricInfo("accuracy", "share of prompts where the noun's own pronoun wins",
                             unit: "fraction", ideal: 1, better: .higher),
                  MetricInfo("mean_log_ratio", "mean log p(own pronoun) - log p(other pronoun)",
                             unit: "nats", ideal: nil, better: .higher)],
        datasets: ["prompts", "prompt_nouns", "log_ratio", "correct", "nouns", "noun_accuracy", "noun_log_ratio"])
    public func prepare(_ suite: Suite, _ c: PreparationContext) throws -> PreparedSuite {
        try PronounRetentionSuite(suite: suite, config: self, tokenizer: c.tokenizer, model: c.model)
    }
    /// Unit: noun; accuracy and mean log-ratio over the resample's prompts.
    public static func resamplingPlan(_ r: SuiteResult) -> ResamplingPlan? {
        guard let lr = r.doubles("log_ratio"), let correct = r.integers("correct"), let nouns = r.texts("prompt_nouns"),
              lr.count == nouns.count, correct.count == nouns.count else { return nil }
        let sums = UnitSums(keys: nouns, series: [correct.map(Double.init), lr])
        return ResamplingPlan(unit: "noun", unitCount: sums.unitCount, metrics: ["accuracy", "mean_log_ratio"],
                              unitSums: ["accuracy": sums.sums[0], "mean_log_ratio": sums.sums[1]]) { sums.means($0) }
    }
}
