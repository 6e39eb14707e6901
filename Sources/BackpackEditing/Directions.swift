import BackpackModel
import BackpackModelFolder
import BackpackYAML
import Foundation

// Directions in embedding space (project_out and add, or an operation of another package): read
// from the edit file, resolved to token ids, and turned into an orthonormal basis from the model.

/// Word pairs: inline or a file (.json: a list of pairs, or an object holding `definitional_pairs`
/// anywhere; otherwise one pair per line, two words separated by spaces or a comma).
public enum PairSource: Sendable {
    case inline([(WordRef, WordRef)])
    case file(String, SourcePlace)
}

public indirect enum Direction: Sendable {
    /// E[a] - E[b] (output embedding rows).
    case embeddingDifference(WordRef, WordRef)
    /// mean over pairs of E[a] - E[b].
    case meanDifference([(WordRef, WordRef)])
    /// The top-k principal subspace of the pairs' differences (Bolukbasi et al. 2016).
    case pca(PairSource, k: Int)
    /// A sense vector C(word)_l of the base model.
    case sense(WordRef, sense: Int, SourcePlace)
}

/// A direction with every word resolved to a token id.
public enum ResolvedDirection: Sendable {
    case embeddingDifference(Int, Int)
    case meanDifference([(Int, Int)])
    case pca([(Int, Int)], k: Int)
    case sense(Int, sense: Int)

    /// The direction's orthonormal basis (rows of length d) in `model` as it is now.
    public func basis(in model: LanguageModel) throws -> [[Double]] {
        let d = model.config.nEmbd
        func row(_ id: Int) -> [Double] { model.embeddingRow(id).map(Double.init) }
        let raw: [[Double]]
        switch self {
        case .embeddingDifference(let a, let b): raw = [zip(row(a), row(b)).map { $0 - $1 }]
        case .meanDifference(let pairs):
            var m = [Double](repeating: 0, count: d)
            for (a, b) in pairs { for (i, x) in zip(row(a), row(b)).map({ $0 - $1 }).enumerated() { m[i] += x / Double(pairs.count) } }
            raw = [m]
        case .pca(let pairs, let kk):
            let deltas = pairs.map { zip(row($0.0), row($0.1)).map { $0 - $1 } }
            let n = deltas.count
            let gram = deltas.flatMap { a in deltas.map { LinearAlgebra.dot(a, $0) } }
            let eig = try LinearAlgebra.symmetricEigen(gram, n: n)
            var comps: [[Double]] = []
            // the eigenvalues are ascending: the top kk components are the last columns
            for j in stride(from: n - 1, through: max(n - kk, 0), by: -1) where eig.values[j] > 1e-12 {
                var c = [Double](repeating: 0, count: d)
                for (i, delta) in deltas.enumerated() { let ui = eig.vectors[i * n + j]; for e in 0..<d { c[e] += ui * delta[e] } }
                // orient: the mean difference has a positive component
                let sign = deltas.reduce(0) { $0 + LinearAlgebra.dot($1, c) } < 0 ? -1.0 : 1.0
                comps.append(c.map { $0 * sign })
            }
            raw = comps
        case .sense(let id, let l):
            let v = model.senseVectors([id])[id] ?? []
            raw = [v[(l * d)..<((l + 1) * d)].map(Double.init)]
        }
        let q = LinearAlgebra.orthonormalize(raw)
        if q.isEmpty { throw EditError(file: "direction", "the direction is zero (are the two words the same token?)") }
        return q
    }
}

extension YAMLReader {
    /// `{embedding_difference: [a, b]}`, `{mean_difference: [[a, b], ...]}`, `{pca: {pairs, k}}` or `{sense: {word, sense}}`.
    public func direction(_ node: YAMLNode) throws -> Direction {
        let m = try mapping(node, "direction", allowed: ["embedding_difference", "mean_difference", "pca", "sense"],
                            form: "one of {embedding_difference: [she, he]}, {mean_difference: [[she, he], ...]}, {pca: {pairs: ..., k: 1}}, {sense: {word: x, sense: 3}}")
        guard m.count == 1, let (key, value) = m.first else {
            throw EditError(place(node), "direction: expected exactly one of embedding_difference, mean_difference, pca, sense")
        }
        switch key {
        case "embedding_difference":
            let (a, b) = try pair(value, "embedding_difference")
            return .embeddingDifference(a, b)
        case "mean_difference":
            return .meanDifference(try pairs(value, "mean_difference"))
        case "pca":
            let pm = try mapping(value, "pca", allowed: ["pairs", "k"], form: "{pairs: [[a, b], ...] or FILE, k: 1}")
            guard let p = pm["pairs"] else { throw EditError(place(value), "pca: missing `pairs:` (inline pairs or a file path)") }
            let source: PairSource
            if case .scalar = p { source = .file(try path(p, "pairs file"), place(p)) } else { source = .inline(try pairs(p, "pca pairs")) }
            let k = try pm["k"].map { try int($0, "k") } ?? 1
            if k < 1 { throw EditError(place(pm["k"] ?? value), "k: expected 1 or more, found \(k)") }
            return .pca(source, k: k)
        default:  // sense
            let sm = try mapping(value, "sense direction", allowed: ["word", "sense"], form: "{word: x, sense: 3}")
            guard let w = sm["word"], let s = sm["sense"] else { throw EditError(place(value), "sense direction: expected {word: x, sense: 3}") }
            let l = try int(s, "sense")
            if l < 0 { throw EditError(place(s), "sense \(l): expected 0 or more") }
            return .sense(try word(w, "sense direction word"), sense: l, place(s))
        }
    }
}

extension Resolver {
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
}
