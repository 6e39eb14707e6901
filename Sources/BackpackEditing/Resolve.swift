import BackpackModel
import BackpackPrompts
import BackpackTokenizer
import Foundation
import BackpackYAML

// Resolution: every name in an edit file becomes token ids, sense indices and loaded suites,
// checked against the model's config and tokenizer BEFORE any computation.

/// A direction with every word resolved to a token id.
enum ResolvedDirection: Sendable {
    case embeddingDifference(Int, Int)
    case meanDifference([(Int, Int)])
    case pca([(Int, Int)], k: Int)
    case sense(Int, sense: Int)
}

enum ResolvedOperation: Sendable {
    case scale(Float)
    case projectOut(ResolvedDirection, strength: Float)
    case replaceAssociation(remove: Int, add: Int)
    case add(ResolvedDirection, amount: Float)
    case fitScale(PronounSuite, a: Int, b: Int)
    /// The fit words' tokens with their labels (1: a pair's first word, 0: its second), in the
    /// order of the pairs.
    case erase(ErasureMethod, words: [(token: Int, label: Double)])
}

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
    let operation: ResolvedOperation
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

    /// Pairs of single-token words. With `dropped` (the intervention says `pieces: skip`), a pair
    /// holding a word of several tokens is left out and listed there instead of being an error:
    /// definitional pairs such as gal/guy are not single tokens in every vocabulary.
    func resolvePairs(_ list: [(WordRef, WordRef)], dropped: inout [String]?) throws -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        for (a, b) in list {
            if dropped != nil, let t = tokenizer {
                let multi = [a, b].compactMap { ref -> String? in
                    guard case .word(let w, _) = ref else { return nil }
                    let ids = t.wordTokens(w)
                    return ids.count == 1 ? nil : "\" \(w)\" (\(pieces(ids)))"
                }
                if !multi.isEmpty { dropped?.append("pair " + multi.joined(separator: ", ")); continue }
            }
            out.append((try single(a, "pair word"), try single(b, "pair word")))
        }
        return out
    }

    func pairs(_ source: PairSource, base: URL, dropped: inout [String]?) throws -> [(Int, Int)] {
        switch source {
        case .inline(let list): return try resolvePairs(list, dropped: &dropped)
        case .file(let path, let place):
            let words = try EditError.wrapping { try PairListFile.read(WordListFile.resolve(path, relativeTo: base), place: place) }
            return try resolvePairs(words.map { (.word($0.0, place), .word($0.1, place)) }, dropped: &dropped)
        }
    }

    /// The fit data of `erase`: every word of every pair whose " " + word is one token, labelled 1
    /// (first) or 0 (second); the other words are left out and listed in `skipped`. A token id out
    /// of range or a word that encodes to nothing is an error at its place, and so is a side with
    /// no single-token word at all.
    func erasureWords(_ source: PairSource, base: URL, place: SourcePlace, skipped: inout [String])
        throws -> [(token: Int, label: Double)] {
        let list: [(WordRef, WordRef)]
        switch source {
        case .inline(let l): list = l
        case .file(let path, let filePlace):
            let read = try EditError.wrapping { try PairListFile.read(WordListFile.resolve(path, relativeTo: base), place: filePlace) }
            if read.count < 2 {
                throw EditError(filePlace, "erase pairs file \(path): one pair gives one example of each label; expected at least two pairs")
            }
            list = read.map { (.word($0.0, filePlace), .word($0.1, filePlace)) }
        }
        var words: [(token: Int, label: Double)] = []
        for (a, b) in list {
            for (ref, label) in [(a, 1.0), (b, 0.0)] {
                switch ref {
                case .token(let id, let p): words.append((try checkToken(id, p), label))
                case .word(let w, let p):
                    guard let tokenizer else {
                        throw EditError(p, "erase pair word '\(w)': words need a tokenizer (pass --tokenizer, or write {token: ID})")
                    }
                    let ids = tokenizer.encode(" " + w)
                    if ids.isEmpty { throw EditError(p, "erase pair word '\(w)': not in the vocabulary (\" \(w)\" encodes to no token)") }
                    if ids.count == 1 { words.append((try checkToken(ids[0], p), label)) } else { skipped.append("\" \(w)\" (\(pieces(ids)))") }
                }
            }
        }
        for (label, side) in [(1.0, "first"), (0.0, "second")] where !words.contains(where: { $0.label == label }) {
            throw EditError(place, "erase pairs: no \(side) word of any pair is a single token, so there is nothing to fit on; expected single-token words (\" word\") or {token: ID}")
        }
        return words
    }

    func direction(_ d: Direction, base: URL, dropped: inout [String]?) throws -> ResolvedDirection {
        switch d {
        case .embeddingDifference(let a, let b): return .embeddingDifference(try single(a, "direction word"), try single(b, "direction word"))
        case .meanDifference(let list): return .meanDifference(try pairs(.inline(list), base: base, dropped: &dropped))
        case .pca(let source, let k):
            let p = try pairs(source, base: base, dropped: &dropped)
            if k > p.count {
                throw EditError(file: base.path, "pca: k = \(k) is more than the \(p.count) pairs")
            }
            return .pca(p, k: k)
        case .sense(let word, let sense, let place):
            guard config.architecture == .backpack else { throw EditError(place, "sense direction: a plain GPT-2 has no senses") }
            guard sense < config.senses else { throw EditError(place, "sense \(sense) is out of range; expected 0..<\(config.senses) (num_senses)") }
            return .sense(try single(word, "sense direction word"), sense: sense)
        }
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
            let url = WordListFile.resolve(path, relativeTo: base)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw EditError(place, "localized suite \(url.path) does not exist (paths are relative to the edit file)")
            }
            senses = .contextual(a: try single(a, "localized pair word"), b: try single(b, "localized pair word"), top: top,
                                 try PronounSuite.load(url))
        }
        let operation: ResolvedOperation
        var suite: PronounSuite?
        var droppedPairs: [String]? = nil
        switch iv.selection {
        case .words(_, _, .skip), .suiteNouns(_, .skip): droppedPairs = []
        default: break
        }
        switch iv.operation {
        case .scale(let s): operation = .scale(s)
        case .projectOut(let d, let strength): operation = .projectOut(try direction(d, base: base, dropped: &droppedPairs), strength: strength)
        case .replaceAssociation(let r, let a):
            operation = .replaceAssociation(remove: try single(r, "remove"), add: try single(a, "add"))
        case .add(let d, let amount): operation = .add(try direction(d, base: base, dropped: &droppedPairs), amount: amount)
        case .fitScale(let path, let a, let b, let place):
            guard tokenizer != nil else { throw EditError(place, "fit_scale needs a tokenizer (its prompts are text)") }
            let url = WordListFile.resolve(path, relativeTo: base)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw EditError(place, "fit_scale suite \(url.path) does not exist (paths are relative to the edit file)")
            }
            let s = try PronounSuite.load(url)
            suite = s
            operation = .fitScale(s, a: try single(a, "fit_scale pair word"), b: try single(b, "fit_scale pair word"))
        case .erase(let method, let source, let place):
            var left: [String] = []
            operation = .erase(method, words: try erasureWords(source, base: base, place: place, skipped: &left))
            droppedPairs = (droppedPairs ?? []) + left.map { "erase pair word " + $0 }
        }
        var ids: [Int] = [], labels: [Int: String] = [:], skipped: [String] = []
        switch iv.selection {
        case .vocabulary: break
        case .tokens(let list):
            for (id, place) in list where labels[id] == nil { ids.append(try checkToken(id, place)); labels[id] = "#\(id)" }
        case .words(let source, let variants, let policy):
            let words = try source.words(relativeTo: base)
            (ids, labels, skipped) = try tokens(words, variants: variants, pieces: policy)
        case .suiteNouns(let variants, let policy):
            guard let suite, !suite.nouns.isEmpty else {
                throw EditError(iv.place, "fit_scale without `words:` uses the suite's `nouns`, and the suite has none")
            }
            (ids, labels, skipped) = try tokens(suite.nouns, variants: variants, pieces: policy)
        }
        if case .fitScale = operation, case .words(_, _, let policy) = iv.selection, policy == .all || policy == .first {
            // allowed: each piece is fitted on its own
            _ = policy
        }
        skipped += droppedPairs ?? []
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
