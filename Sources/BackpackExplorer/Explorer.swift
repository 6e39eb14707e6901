import BackpackEditing
import BackpackModel
import BackpackModelFolder
import BackpackTokenizer
import BackpackWorkflows
import Foundation

// What `backpack explore`'s API computes, without HTTP: next-token predictions, the exact
// sense-by-position attribution and the senses of a word, for the base model and for the
// current intervention (edit-file interventions sent as JSON, and the edit files loaded at
// start, by name). The server (Server/) only decodes requests and encodes these answers.
//
// A sense edit changes only the sense vectors C(x), so the contextualization (the trunk and
// alpha, the costly half of a forward pass) is computed once per text and shared by the base
// model and every intervention: an update after a slider move is the sense sum and one row of
// logits (LanguageModel.outputs).

/// An answer other than 200: the status, the request field at fault and what was expected.
public struct ExplorerError: Error, Sendable, CustomStringConvertible {
    public let status: Int
    public let field: String?
    public let message: String
    public init(status: Int = 400, field: String?, _ message: String) { self.status = status; self.field = field; self.message = message }
    public var description: String { field.map { "\($0): \(message)" } ?? message }
}

/// An edit file loaded at start (`explore --edit`), switched on by name in a request.
public struct LoadedEdit: Sendable {
    public let name: String
    public let file: EditFile
    /// One line per intervention, as `backpack edit --check` prints them.
    public let summaries: [String]
    /// False for `scope: vocabulary`, LEACE and input-embedding edits: each update recomputes more.
    public let wordLevel: Bool
}

public final class Explorer: @unchecked Sendable {
    public let modelURL: URL
    public let base: LanguageModel
    public let tokenizer: GPT2Tokenizer
    /// The tokenizer argument the model was opened with (nil: the model folder's own).
    public let tokenizerPath: String?
    public let edits: [LoadedEdit]
    /// Where "Save as edit file" writes.
    public let editsDirectory: URL
    /// Where evaluations are stored (as `backpack eval --out`).
    public let resultsFile: URL

    private let contexts = RecentCache<[Int], Contextualization>(capacity: 8)
    /// By the digests of a list of edits: every prefix of a request's list is kept.
    private let outcomes = RecentCache<[String], EditOutcome>(capacity: 32)

    public convenience init(model: URL, tokenizer tokenizerPath: String? = nil, edits editPaths: [String] = [],
                            editsDirectory: URL, resultsFile: URL) throws {
        let directory = try ModelDirectory(model)
        try self.init(model: try directory.load(), at: directory.url, tokenizer: try Toolkit.tokenizer(for: directory, path: tokenizerPath),
                      tokenizerPath: tokenizerPath, edits: editPaths, editsDirectory: editsDirectory, resultsFile: resultsFile)
    }

    /// A model already loaded from `url` (evaluations open it again from there).
    public init(model: LanguageModel, at url: URL, tokenizer: GPT2Tokenizer, tokenizerPath: String? = nil, edits editPaths: [String] = [],
                editsDirectory: URL, resultsFile: URL) throws {
        modelURL = url
        base = model
        self.tokenizer = tokenizer
        self.tokenizerPath = tokenizerPath
        self.editsDirectory = editsDirectory
        self.resultsFile = resultsFile
        var loaded: [LoadedEdit] = []
        for path in editPaths {
            let url = URL(fileURLWithPath: path)
            guard FileManager.default.fileExists(atPath: url.path) else { throw ModelError(file: url.path, reason: "no such edit file") }
            let points = try EditFile.loadGrid(url)
            guard points.count == 1, let file = points.first, file.grid.isEmpty else {
                throw EditError(file: url.path, "a sweep file (\(points.count) grid points): explore loads edits without sweeps; the page's sliders sweep scales, and `backpack eval --edit` evaluates a grid")
            }
            // Applied once here, so that a file that does not fit the model fails at start.
            let outcome = try Editor.apply([file], to: base, tokenizer: tokenizer)
            var name = url.deletingPathExtension().lastPathComponent, i = 2
            while loaded.contains(where: { $0.name == name }) { name = url.deletingPathExtension().lastPathComponent + "-\(i)"; i += 1 }
            loaded.append(LoadedEdit(name: name, file: file, summaries: outcome.records.map(\.summary),
                                     wordLevel: outcome.records.allSatisfy { $0.scope == .words }))
        }
        edits = loaded
    }

    // MARK: - Texts and interventions

    /// The text's tokens: at least one, at most n_positions.
    public func tokens(_ text: String, field: String = "text") throws -> [Int] {
        let ids = tokenizer.encode(text)
        if ids.isEmpty { throw ExplorerError(field: field, "the text is empty (no tokens); expected at least one token") }
        let limit = base.config.nPositions
        if ids.count > limit { throw ExplorerError(field: field, "the text is \(ids.count) tokens; expected at most n_positions = \(limit)") }
        return ids
    }

    /// The one token of " " + word (a contrast word, a word whose senses are shown).
    public func wordToken(_ word: String, field: String, space: Bool = true) throws -> Int {
        let ids = space ? tokenizer.wordTokens(word) : tokenizer.encode(word)
        guard ids.count == 1 else {
            let pieces = ids.map { "'\(tokenizer.displayPiece($0) ?? "#\($0)")'" }.joined(separator: " ")
            throw ExplorerError(field: field, "'\(space ? " " : "")\(word)' is \(ids.count) tokens (\(pieces)); expected a word that is exactly one token")
        }
        return ids[0]
    }

    /// The model under the interventions (nil: none), applied in order to the base model; the
    /// last few are kept, so that moving one slider back and forth recomputes nothing.
    public func edited(_ interventions: RequestInterventions) throws -> EditOutcome? {
        if interventions.isEmpty { return nil }
        let files = interventions.files
        let keys = files.map { $0.url.path + $0.sha256 }
        // Edits apply in order, each to the model the ones before it made (EditPlan.apply), so
        // the longest prefix already applied is reused and only the rest is applied: a slider
        // (the page sends them after the edit files) does not refit a loaded LEACE file.
        var done = keys.count, outcome: EditOutcome?
        while done > 0 {
            if let hit = outcomes.cached(Array(keys[..<done])) { outcome = hit; break }
            done -= 1
        }
        for i in done..<files.count {
            let prior = outcome
            outcome = try outcomes.value(for: Array(keys[...i])) {
                do {
                    let step = try Editor.apply([files[i]], to: prior?.model ?? base, tokenizer: tokenizer)
                    return EditOutcome(model: step.model, records: (prior?.records ?? []) + step.records)
                } catch let error as EditError {
                    throw interventions.explain(error)
                }
            }
        }
        return outcome
    }

    /// The base model's contextualization of a text, shared by every sense edit.
    func context(_ ids: [Int]) throws -> Contextualization {
        try contexts.value(for: ids) { try base.contextualize([ids]) }
    }

    /// The model's output at the last position, over the cached contextualization when the model shares it.
    func lastOutput(_ model: LanguageModel, _ ids: [Int]) throws -> ForwardOutput {
        if model.sharesContextualization(with: base) {
            return try model.outputs(try context(ids), options: .init(logits: .last))[0]
        }
        return try model.forward(ids, options: .init(logits: .last))
    }

    // MARK: - Answers

    public struct Token: Codable, Sendable, Equatable {
        public let id: Int
        public let text: String
    }

    public struct Candidate: Codable, Sendable, Equatable {
        public let id: Int
        public let token: String
        public let logprob: Double
    }

    public struct Distribution: Codable, Sendable, Equatable {
        public let top: [Candidate]
    }

    public struct Prediction: Codable, Sendable {
        public let tokens: [Token]
        public let base: Distribution
        /// The base model's own distribution when there is no intervention.
        public let edited: Distribution
        /// One line per intervention applied (what `backpack edit --check` prints).
        public let applied: [String]
    }

    /// The next token after the whole text: the `topK` most likely, with log-probabilities
    /// (log-softmax of the last position's logits), for the base model and the intervention.
    public func predict(text: String, topK: Int, interventions: RequestInterventions) throws -> Prediction {
        let ids = try tokens(text)
        let vocabulary = base.config.vocabSize
        guard (1...min(1000, vocabulary)).contains(topK) else { throw ExplorerError(field: "top_k", "expected 1 to \(min(1000, vocabulary)), found \(topK)") }
        let outcome = try edited(interventions)
        let baseRow = try lastOutput(base, ids).logits
        let editedRow = try outcome.map { try lastOutput($0.model, ids).logits } ?? baseRow
        return Prediction(tokens: ids.map { Token(id: $0, text: tokenizer.decode([$0])) },
                          base: distribution(baseRow, top: topK), edited: distribution(editedRow, top: topK),
                          applied: outcome?.records.map(\.summary) ?? [])
    }

    func distribution(_ logits: [Float], top k: Int) -> Distribution {
        let lse = LogSoftmax.logSumExp(logits)   // as every suite normalises a row
        let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        return Distribution(top: order.prefix(k).map { Candidate(id: $0, token: tokenizer.decode([$0]), logprob: Double(logits[$0]) - lse) })
    }

    /// `backpack attribute --json`'s fields: the base model's at the top, the intervention's
    /// (named `intervention`) in `edits` when there is one.
    public struct Attribution: Codable, Sendable {
        public struct Entry: Codable, Sendable {
            public let name: String
            public let contributions: [[Double]]
            public let total: Double
            public let logitDifference: Double
            enum CodingKeys: String, CodingKey { case name, contributions, total, logitDifference = "logit_difference" }
        }
        public let tokens: [String]
        public let ids: [Int]
        public let pair: [String]
        public let contributions: [[Double]]
        public let total: Double
        public let logitDifference: Double
        public let edits: [Entry]?
        enum CodingKeys: String, CodingKey { case tokens, ids, pair, contributions, total, logitDifference = "logit_difference", edits }
    }

    /// log p(A) - log p(B) for the next token, split exactly over (sense, position):
    /// contributions[l][j] = alpha[l, n-1, j] (E_A - E_B) . C(x_j)_l.
    public func attribute(text: String, pair: [String], interventions: RequestInterventions) throws -> Attribution {
        try requireBackpack("attribution")
        guard pair.count == 2 else { throw ExplorerError(field: "pair", "expected two words such as [\"he\", \"she\"], found \(pair.count)") }
        let a = try wordToken(pair[0], field: "pair[0]"), b = try wordToken(pair[1], field: "pair[1]")
        let ids = try tokens(text)
        let context = try self.context(ids)
        let baseAttribution = try base.attributions(context, a: a, b: b)[0]
        var entries: [Attribution.Entry]?
        if let outcome = try edited(interventions) {
            let model = outcome.model
            let e = model.sharesContextualization(with: base) ? try model.attributions(context, a: a, b: b)[0]
                : try model.attribution(ids, a: a, b: b)
            entries = [Attribution.Entry(name: "intervention", contributions: e.contributions, total: e.total, logitDifference: e.logitDifference)]
        }
        return Attribution(tokens: ids.map { tokenizer.decode([$0]) }, ids: baseAttribution.ids, pair: pair,
                           contributions: baseAttribution.contributions, total: baseAttribution.total,
                           logitDifference: baseAttribution.logitDifference, edits: entries)
    }

    public struct SenseWords: Codable, Sendable {
        public struct Scored: Codable, Sendable {
            public let id: Int
            public let token: String
            public let score: Double
        }
        public let sense: Int
        public let promoted: [Scored]
        public let suppressed: [Scored]
    }

    public struct Senses: Codable, Sendable {
        public let word: String
        public let id: Int
        public let token: String
        public let senses: [SenseWords]
    }

    /// For every sense l of the token, the words with the largest and the smallest entries of
    /// E C(x)_l (`backpack senses`).
    public func senses(word: String?, id: Int?, top: Int, space: Bool = true) throws -> Senses {
        try requireBackpack("senses")
        let vocabulary = base.config.vocabSize
        guard (1...1000).contains(top) else { throw ExplorerError(field: "top", "expected 1 to 1000, found \(top)") }
        let token: Int
        switch (word, id) {
        case (let w?, nil): token = try wordToken(w, field: "word", space: space)
        case (nil, let i?):
            guard (0..<vocabulary).contains(i) else { throw ExplorerError(field: "id", "expected a token id 0 to \(vocabulary - 1), found \(i)") }
            token = i
        default: throw ExplorerError(field: "word", "give exactly one of word and id")
        }
        let d = base.config.nEmbd
        let vectors = base.senseVectors([token])[token] ?? []
        var senses: [SenseWords] = []
        for l in 0..<base.config.senses {
            let scores = base.unembed(Array(vectors[(l * d)..<((l + 1) * d)]))
            let order = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
            func scored(_ v: Int) -> SenseWords.Scored { .init(id: v, token: tokenizer.decode([v]), score: Double(scores[v])) }
            senses.append(SenseWords(sense: l, promoted: order.prefix(top).map(scored), suppressed: order.suffix(top).reversed().map(scored)))
        }
        return Senses(word: word ?? tokenizer.decode([token]), id: token, token: tokenizer.decode([token]), senses: senses)
    }

    func requireBackpack(_ what: String) throws {
        guard base.isBackpack else {
            throw ExplorerError(status: 422, field: nil, "\(modelURL.path) is a plain GPT-2: it has no sense vectors, so no \(what)")
        }
    }
}

/// The last `capacity` values computed, by key (a text's tokens, a list of edit digests).
final class RecentCache<Key: Hashable, Value>: @unchecked Sendable {
    private var entries: [(key: Key, value: Value)] = []
    private let lock = NSLock()
    let capacity: Int
    init(capacity: Int) { self.capacity = capacity }

    /// The value stored for `key`, if any (now the most recent).
    func cached(_ key: Key) -> Value? {
        lock.withLock {
            guard let i = entries.firstIndex(where: { $0.key == key }) else { return nil }
            let e = entries.remove(at: i); entries.append(e); return e.value
        }
    }

    func value(for key: Key, _ compute: () throws -> Value) throws -> Value {
        if let hit = cached(key) { return hit }
        let value = try compute()
        lock.withLock {
            entries.removeAll { $0.key == key }
            entries.append((key, value))
            if entries.count > capacity { entries.removeFirst(entries.count - capacity) }
        }
        return value
    }
}
