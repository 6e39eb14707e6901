import BackpackYAML
import Foundation

/// `erase: {method: leace|orth, pairs: PAIRS}`: concept erasure of each selected sense, an eraser
/// fitted on the sense vectors of the pairs' words (label 1 for a pair's first word, 0 for its
/// second; ConceptErasure.swift), applied to that sense of every token in scope.
public struct Erase: EditOperation {
    public static let name = "erase"
    public static let keys = ["method", "pairs"]
    public static let scopes: Set<EditScope> = [.words, .vocabulary]
    public static let ranksSensesOverOwnWords = true

    public let method: ErasureMethod
    public let pairs: PairSource
    /// The place of `pairs:`.
    public let place: SourcePlace

    /// `{method: leace|orth, pairs: {file: PATH} | [[a, b], [c, d], ...]}`, at least two pairs.
    public init(yaml node: YAMLNode, reader r: YAMLReader) throws {
        let m = try r.mapping(node, Self.name, allowed: Self.keys, form: "{method: leace, pairs: {file: lists/gender-pairs.txt} or [[woman, man], ...]}")
        var method = ErasureMethod.leace
        if let v = m["method"] {
            let s = try r.string(v, "erase method")
            guard let known = ErasureMethod(rawValue: s) else { throw EditError(r.place(v), "erase method: unknown method '\(s)'; expected leace or orth") }
            method = known
        }
        self.method = method
        guard let p = m["pairs"] else { throw EditError(r.place(node), "erase: missing `pairs:` ({file: PATH} or [[woman, man], [girl, boy], ...])") }
        place = r.place(p)
        if case .mapping = p {
            let f = try r.mapping(p, "erase pairs", allowed: ["file"], form: "{file: lists/gender-pairs.txt} or [[woman, man], ...]")
            guard let path = f["file"] else { throw EditError(r.place(p), "erase pairs: expected {file: PATH}") }
            pairs = .file(try r.path(path, "pairs file"), r.place(path))
            return
        }
        let list = try r.pairs(p, "erase pairs")
        if list.count < 2 {
            throw EditError(r.place(p), "erase pairs: one pair gives one example of each label; expected at least two pairs [[a, b], [c, d], ...]")
        }
        pairs = .inline(list)
    }

    public func resolve(_ context: inout OperationResolution) throws -> any ResolvedEditOperation {
        var left: [String] = []
        let words = try fitWords(context.resolver, base: context.file, skipped: &left)
        context.leaveOut(left.map { "erase pair word " + $0 })
        return Resolved(method: method, words: words)
    }

    /// The fit data: every word of every pair whose " " + word is one token, labelled 1 (first)
    /// or 0 (second); the other words are left out and listed in `skipped`. A token id out of
    /// range or a word that encodes to nothing is an error at its place, and so is a side with
    /// no single-token word at all.
    func fitWords(_ resolver: Resolver, base: URL, skipped: inout [String]) throws -> [(token: Int, label: Double)] {
        let list: [(WordRef, WordRef)]
        switch pairs {
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
                case .token(let id, let p): words.append((try resolver.checkToken(id, p), label))
                case .word(let w, let p):
                    guard let tokenizer = resolver.tokenizer else {
                        throw EditError(p, "erase pair word '\(w)': words need a tokenizer (pass --tokenizer, or write {token: ID})")
                    }
                    let ids = tokenizer.encode(" " + w)
                    if ids.isEmpty { throw EditError(p, "erase pair word '\(w)': not in the vocabulary (\" \(w)\" encodes to no token)") }
                    if ids.count == 1 { words.append((try resolver.checkToken(ids[0], p), label)) } else { skipped.append("\" \(w)\" (\(resolver.pieces(ids)))") }
                }
            }
        }
        for (label, side) in [(1.0, "first"), (0.0, "second")] where !words.contains(where: { $0.label == label }) {
            throw EditError(place, "erase pairs: no \(side) word of any pair is a single token, so there is nothing to fit on; expected single-token words (\" word\") or {token: ID}")
        }
        return words
    }

    struct Resolved: ResolvedEditOperation {
        let method: ErasureMethod
        /// The fit words' tokens with their labels, in the order of the pairs.
        let words: [(token: Int, label: Double)]

        var rankingGroups: (first: [Int], second: [Int])? {
            (words.filter { $0.label == 1 }.map(\.token), words.filter { $0.label == 0 }.map(\.token))
        }

        /// One eraser per sense, fitted on that sense's vectors of the fit words in the model as
        /// edited so far.
        func effect(_ context: OperationApplication) throws -> OperationEffect {
            let model = context.model, d = model.config.nEmbd, k = model.config.senses
            let vectors = model.senseVectors(words.map(\.token))
            var maps: SenseMaps = [], fits: [ErasureFit] = []
            for l in context.senses {
                let x = try words.map { w -> [Double] in
                    guard let v = vectors[w.token], v.count == k * d else {
                        throw EditError(file: "erase", "token \(w.token) has no sense vectors of \(k) x \(d) values")
                    }
                    return v[(l * d)..<((l + 1) * d)].map(Double.init)
                }
                let eraser = try ConceptErasure.fit(x, labels: words.map(\.label), method: method)
                maps.append((l, .affine(correction: eraser.correction, offset: eraser.offset.map(Float.init))))
                fits.append(ErasureFit(sense: l, eraser: eraser))
            }
            var effect = OperationEffect(.perSense(maps), note: fits.isEmpty ? "" : "; " + fits.map(\.description).joined(separator: ", "))
            effect.erasure = fits
            return effect
        }
    }
}
