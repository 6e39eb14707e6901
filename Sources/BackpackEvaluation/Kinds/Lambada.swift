// lm-evaluation-harness's lambada_openai (transcription notes: Harness.swift).
import BackpackModel
import BackpackModelFolder
import BackpackResults
import BackpackTokenizer
import Foundation

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

// MARK: - The kind

/// `kind: lambada`: lm-evaluation-harness's lambada_openai (the harness keys, HarnessConfig).
public struct LambadaConfig: SuiteKind {
    public var harness: HarnessConfig
    public static let name = "lambada"
    public static let keys = HarnessConfig.keys
    public static let schema = ResultSchema(
        metrics: [MetricInfo("acc", "share of passages whose last word is the greedy guess",
                             unit: "fraction", ideal: 1, better: .higher),
                  MetricInfo("perplexity", "exp(-mean log-likelihood of the last word)", unit: "perplexity", ideal: nil, better: .lower)],
        roles: [.cost: "perplexity"],
        datasets: ["targets", "loglikelihood", "is_greedy"])
    public init(_ doc: SuiteDocument) throws { harness = try HarnessConfig(doc) }
    public func prepare(_ suite: Suite, _ c: PreparationContext) throws -> PreparedSuite {
        try LambadaSuite(suite: suite, config: harness, tokenizer: c.tokenizer, model: c.model, locations: c.locations)
    }
    /// Unit: document.
    public static func resamplingPlan(_ r: SuiteResult) -> ResamplingPlan? {
        guard let ll = r.doubles("loglikelihood"), let greedy = r.integers("is_greedy"), ll.count == greedy.count else { return nil }
        return ResamplingPlan(unit: "document", unitCount: ll.count, metrics: ["acc", "perplexity"],
                              unitSums: ["acc": greedy.map(Double.init), "perplexity": ll.map { -$0 }]) { units in
            var s = 0.0, g = 0
            for u in units { s += ll[u]; g += greedy[u] }
            return [Double(g) / Double(units.count), Foundation.exp(-s / Double(units.count))]
        }
    }
}
