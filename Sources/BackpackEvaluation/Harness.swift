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
            // Only the continuation's rows get logits (LAMBADA's last word: 1 to 3 rows of ~80).
            let rows = (start..<end).map { r in Array(max(0, full[r].count - requests[r].continuation.count - 1)..<(full[r].count - 1)) }
            let scored = try variants.score(inputs, logits: .rows(rows)) { s, p, row -> (Double, Bool)? in
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
func readVerified(_ data: ExternalData, suite: Suite, locations: DataLocations) throws -> (text: String, sha256: String) {
    let (url, digest) = try data.resolveVerified(suiteFile: suite.file, locations: locations)
    return (try SuiteError.text(of: url), digest)
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
    static let keys = externalDataKeys.union(["max_documents", "max_length", "batch_tokens"])
}
