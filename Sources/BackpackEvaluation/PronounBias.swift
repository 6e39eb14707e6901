import BackpackCheckpoint
import BackpackEditing
import BackpackModel
import BackpackTokenizer
import BackpackResults
import BackpackYAML
import Foundation

/// A pronoun_bias suite's definition: the one pronoun-suite reader (BackpackEditing's
/// PronounSuite, shared with fit_scale).
public struct PronounBiasConfig: Sendable {
    public var definition: PronounSuite
    public var placeholder: String { definition.placeholder }
    public var pair: (String, String) { definition.pair }
    public var prompts: [String] { definition.prompts }
    public var nouns: [String]
    public var dataFiles: [URL] { definition.files }

    init(_ doc: SuiteDocument) throws {
        if doc.node("pair") == nil { throw doc.error(nil, "missing key 'pair'") }
        if doc.node("nouns") == nil { throw doc.error(nil, "missing key 'nouns'") }
        definition = try PronounSuite.load(doc.url)
        nouns = try definition.nouns.map { ref in
            guard case .word(let w, _) = ref else {
                throw SuiteError(ref.place, "nouns: a pronoun_bias suite lists words, found a token id")
            }
            return w
        }
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
    public let tokenized: [[Int]]
    public let pairIDs: (Int, Int)
    public let dataSHA256: String
    public var itemCount: Int { prompts.count }

    init(suite: Suite, config: PronounBiasConfig, tokenizer: GPT2Tokenizer, model: BackpackConfig) throws {
        self.suite = suite; self.config = config
        func single(_ word: String) throws -> Int {
            let ids = tokenizer.encode(" " + word)
            guard ids.count == 1 else {
                throw SuiteError(file: suite.file.path, reason: "pair word ' \(word)' is \(ids.count) tokens with this tokenizer; it must be one token")
            }
            guard ids[0] < model.vocabSize else { throw SuiteError(file: suite.file.path, reason: "pair word ' \(word)' has id \(ids[0]) beyond the model's vocabulary (\(model.vocabSize))") }
            return ids[0]
        }
        pairIDs = (try single(config.pair.0), try single(config.pair.1))
        var kept: [String] = [], skipped: [String] = []
        for noun in config.nouns {
            if tokenizer.encode(" " + noun).count == 1 { kept.append(noun) } else { skipped.append(noun) }
        }
        keptNouns = kept; skippedNouns = skipped
        var texts: [String] = [], nouns: [String] = [], ids: [[Int]] = []
        for noun in kept {
            let nounID = tokenizer.encode(" " + noun)
            for template in config.prompts {
                let text = config.definition.text(prompt: template, noun: noun)
                let t = config.definition.ids(prompt: template, word: nounID, tokenizer: tokenizer)
                guard !t.isEmpty, t.count <= model.nPositions else {
                    throw SuiteError(file: suite.file.path, reason: "prompt '\(text)' has \(t.count) tokens (1 to \(model.nPositions) allowed)")
                }
                if let bad = t.first(where: { $0 >= model.vocabSize }) {
                    throw SuiteError(file: suite.file.path, reason: "prompt '\(text)': token id \(bad) is beyond the model's vocabulary (\(model.vocabSize))")
                }
                texts.append(text); nouns.append(noun); ids.append(t)
            }
        }
        prompts = texts; promptNouns = nouns; tokenized = ids
        dataSHA256 = try FileDigest.combined(config.dataFiles)
    }

    public func evaluate(_ variants: VariantSet, progress: @Sendable (String) -> Void) throws -> [SuiteResult] {
        let count = variants.models.count
        var logA = [[Double]](repeating: [], count: count), logB = logA
        // One forward over all prompts, last position only; chunked to bound memory.
        let chunk = 1024
        var start = 0
        while start < tokenized.count {
            let end = min(tokenized.count, start + chunk)
            let scored = try variants.score(Array(tokenized[start..<end]), logits: .last) { _, _, row in
                Metrics.logSoftmax(row, at: [pairIDs.0, pairIDs.1])
            }
            for v in 0..<count {
                for rows in scored[v] { logA[v].append(rows[0][0]); logB[v].append(rows[0][1]) }
            }
            start = end
            progress("\(suite.name): \(end)/\(tokenized.count) prompts")
        }
        return (0..<count).map { result(logA: logA[$0], logB: logB[$0]) }
    }

    func result(logA: [Double], logB: [Double]) -> SuiteResult {
        let pa = logA.map { Foundation.exp($0) }, pb = logB.map { Foundation.exp($0) }
        let ratio = zip(logA, logB).map { Metrics.pronounRatio(logA: $0, logB: $1) }
        var nounBias: [Double] = []
        for noun in keptNouns {
            let r = zip(promptNouns, ratio).filter { $0.0 == noun }.map(\.1)
            nounBias.append(Metrics.mean(r))
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
        if !skippedNouns.isEmpty { r.add("skipped_nouns", strings: skippedNouns) }
        return r
    }
}
