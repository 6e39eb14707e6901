import BackpackModel
import BackpackModelFolder
import BackpackPrompts
import BackpackTokenizer
import Foundation
import BackpackYAML

// Resolution: every name in an edit file becomes token ids, sense indices and loaded suites,
// checked against the model's config and tokenizer BEFORE any computation.

enum ResolvedSenses: Sendable {
    case indices([Int])
    case localized(a: Int, b: Int, top: Int)
    case contextual(a: Int, b: Int, top: Int, PronounSuite)
}

struct ResolvedIntervention: Sendable {
    let file: EditFile
    let index: Int
    let intervention: Intervention
    let scope: EditScope
    /// Token ids to edit (empty for scope: vocabulary), in first-seen order, with how each was written.
    let tokens: [Int]
    let labels: [Int: String]
    /// Words left out under `pieces: skip`, with their pieces.
    let skipped: [String]
    let senses: ResolvedSenses
    let operation: any ResolvedEditOperation
}

struct Resolver {
    let config: BackpackConfig
    let tokenizer: GPT2Tokenizer?

    func pieces(_ ids: [Int]) -> String {
        ids.map { id in tokenizer?.displayPiece(id).map { "'\($0)'" } ?? "#\(id)" }.joined(separator: " ")
    }

    func checkToken(_ id: Int, _ place: SourcePlace) throws -> Int {
        guard id >= 0, id < config.vocabSize else {
            throw EditError(place, "token id \(id) is out of range; expected 0..<\(config.vocabSize) (vocab_size)")
        }
        return id
    }

    /// A single-token word (" " + word) or a raw token.
    func single(_ ref: WordRef, _ what: String) throws -> Int {
        switch ref {
        case .token(let id, let place): return try checkToken(id, place)
        case .word(let word, let place):
            guard let tokenizer else {
                throw EditError(place, "\(what) '\(word)': words need a tokenizer (pass --tokenizer, or write {token: ID})")
            }
            let ids = tokenizer.wordTokens(word)
            guard ids.count == 1 else {
                throw EditError(place, "\(what) '\(word)': \" \(word)\" is \(ids.count) tokens (\(pieces(ids))); expected a single-token word, or write {token: ID}")
            }
            return try checkToken(ids[0], place)
        }
    }

    func spellings(_ word: String, _ variants: [WordVariant]) -> [String] {
        var out = [" " + word]
        for v in variants {
            switch v {
            case .capitalized: out.append(" " + word.prefix(1).uppercased() + word.dropFirst())
            case .upper: out.append(" " + word.uppercased())
            case .noSpace: out.append(word)
            }
        }
        var seen = Set<String>()
        return out.filter { seen.insert($0).inserted }
    }

    /// Token ids of words under a variants/pieces policy.
    func tokens(_ words: [WordRef], variants: [WordVariant], pieces policy: PiecesPolicy)
        throws -> (ids: [Int], labels: [Int: String], skipped: [String]) {
        var ids: [Int] = [], labels: [Int: String] = [:], skipped: [String] = []
        func add(_ id: Int, _ label: String) {
            if labels[id] == nil { ids.append(id); labels[id] = label }
        }
        for ref in words {
            switch ref {
            case .token(let id, let place): add(try checkToken(id, place), "#\(id)")
            case .word(let word, let place):
                guard let tokenizer else {
                    throw EditError(place, "word '\(word)': words need a tokenizer (pass --tokenizer, or use `tokens:`)")
                }
                for spelling in spellings(word, variants) {
                    let t = tokenizer.encode(spelling)
                    if t.isEmpty { throw EditError(place, "word '\(word)': tokenizes to nothing") }
                    if t.count == 1 { add(try checkToken(t[0], place), spelling); continue }
                    switch policy {
                    case .error:
                        throw EditError(place, "word '\(word)': \"\(spelling)\" is \(t.count) tokens (\(pieces(t))); expected one token, or set `pieces: all`, `pieces: first` or `pieces: skip`")
                    case .all: for id in t { add(try checkToken(id, place), spelling) }
                    case .first: add(try checkToken(t[0], place), spelling)
                    case .skip: skipped.append("\"\(spelling)\" (\(pieces(t)))")
                    }
                }
            }
        }
        return (ids, labels, skipped)
    }

    /// A pronoun suite named by a path relative to the edit file.
    func suite(_ path: String, base: URL, place: SourcePlace, what: String) throws -> PronounSuite {
        let url = WordListFile.resolve(path, relativeTo: base)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw EditError(place, "\(what) \(url.path) does not exist (paths are relative to the edit file)")
        }
        return try PronounSuite.load(url)
    }

    func resolve(_ file: EditFile, _ index: Int, _ iv: Intervention) throws -> ResolvedIntervention {
        let base = file.url
        if iv.target == .senses, config.architecture != .backpack {
            throw EditError(iv.place, "this model is a plain GPT-2 (no sense vectors); expected `target: input_embedding`")
        }
        var senses = ResolvedSenses.indices([])
        switch iv.senses {
        case .all: senses = .indices(Array(0..<config.senses))
        case .indices(let list):
            var seen: [Int] = []
            for (l, place) in list {
                guard l < config.senses else {
                    throw EditError(place, "sense \(l) is out of range; expected 0..<\(config.senses) (num_senses, 0-based)")
                }
                if !seen.contains(l) { seen.append(l) }
            }
            senses = .indices(seen)
        case .localized(let a, let b, let top, let place):
            guard top <= config.senses else { throw EditError(place, "top \(top): the model has only \(config.senses) senses") }
            senses = .localized(a: try single(a, "localized pair word"), b: try single(b, "localized pair word"), top: top)
        case .localizedContextual(let a, let b, let top, let path, let place):
            guard top <= config.senses else { throw EditError(place, "top \(top): the model has only \(config.senses) senses") }
            guard tokenizer != nil else { throw EditError(place, "localized by contextual needs a tokenizer (its prompts are text)") }
            let suite = try self.suite(path, base: base, place: place, what: "localized suite")
            senses = .contextual(a: try single(a, "localized pair word"), b: try single(b, "localized pair word"), top: top, suite)
        }
        // pair words of several tokens are left out (and listed) under `pieces: skip`, else errors
        var dropped: [String]? = nil
        switch iv.selection {
        case .words(_, _, .skip), .operationWords(_, .skip): dropped = []
        default: break
        }
        var context = OperationResolution(resolver: self, file: base, place: iv.place, dropped: dropped)
        let operation = try iv.operation.resolve(&context)
        var ids: [Int] = [], labels: [Int: String] = [:], skipped: [String] = []
        switch iv.selection {
        case .vocabulary: break
        case .tokens(let list):
            for (id, place) in list where labels[id] == nil { ids.append(try checkToken(id, place)); labels[id] = "#\(id)" }
        case .words(let source, let variants, let policy):
            let words = try source.words(relativeTo: base)
            (ids, labels, skipped) = try tokens(words, variants: variants, pieces: policy)
        case .operationWords(let variants, let policy):
            (ids, labels, skipped) = try tokens(try operation.ownWords(at: iv.place), variants: variants, pieces: policy)
        }
        skipped += context.dropped ?? []
        if case .vocabulary = iv.selection {} else if ids.isEmpty {
            throw EditError(iv.place, "no token to edit (every word was skipped: \(skipped.joined(separator: ", ")))")
        }
        let scope: EditScope
        if iv.target == .inputEmbedding { scope = .inputEmbedding }
        else if case .vocabulary = iv.selection { scope = .vocabulary }
        else { scope = .words }
        return ResolvedIntervention(file: file, index: index, intervention: iv, scope: scope, tokens: ids, labels: labels,
                                    skipped: skipped, senses: senses, operation: operation)
    }
}
