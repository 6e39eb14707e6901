import BackpackModel
import BackpackModelFolder
import Foundation

extension PerplexityConfig {
    /// Windows of `maxLength` every `stride` over documents given as token ids (no text source).
    init(maxLength: Int, stride: Int, batchTokens: Int) {
        source = .inline(""); split = .file; every = 1; offset = 0; maxDocuments = nil
        self.maxLength = maxLength; self.stride = stride; prependEOS = false; self.batchTokens = batchTokens
    }
}

extension PerplexitySuite {
    /// A perplexity suite over documents that are already token ids (any <|endoftext|> already
    /// in), e.g. the passages of `make bench`'s workload file; scored like the text suites.
    /// `file` names the source in errors and results; words and bytes are unknown (reported as the
    /// token counts, so only the token perplexity and nll are meaningful).
    public init(name: String, file: URL, documents ids: [[Int]], maxLength: Int, stride: Int, batchTokens: Int,
                model: BackpackConfig, dataSHA256: String) throws {
        let length = min(maxLength, model.nPositions)
        let step = min(stride, length)
        guard length >= 2, step >= 1, batchTokens >= 1 else {
            throw SuiteError(file: file.path, reason: "max_length >= 2, stride >= 1 and batch_tokens >= 1 are needed")
        }
        var ws: [(Int, SequenceScorer.Item)] = []
        for (d, doc) in ids.enumerated() {
            guard doc.count >= 2 else { throw SuiteError(file: file.path, reason: "document \(d) has \(doc.count) token(s); at least 2 are needed") }
            if let bad = doc.first(where: { $0 < 0 || $0 >= model.vocabSize }) {
                throw SuiteError(file: file.path, reason: "document \(d): token id \(bad) outside the model's vocabulary (\(model.vocabSize))")
            }
            for w in Self.windows(count: doc.count, maxLength: length, stride: step) {
                ws.append((d, SequenceScorer.Item(ids: Array(doc[w.begin..<w.end]), from: w.from)))
            }
        }
        let config = PerplexityConfig(maxLength: length, stride: step, batchTokens: batchTokens)
        suite = Suite(name: name, version: "1", kind: PerplexityConfig.self, description: "token ids of \(file.lastPathComponent)",
                      source: file.path, file: file, config: config)
        self.config = config
        documents = ids.indices.map { "document \($0)" }
        documentNames = documents
        windows = ws
        words = ids.map(\.count); bytes = ids.map(\.count)
        self.maxLength = length; self.stride = step
        self.dataSHA256 = dataSHA256
        dataFiles = [DataFileDigest(name: file.lastPathComponent, sha256: dataSHA256)]
    }
}
