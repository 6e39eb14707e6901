import BackpackModel
import BackpackTokenizer
import Foundation

// Applying resolved interventions to a model: directions become orthonormal bases, operations
// become SenseMaps, and each map is applied to sense vectors (word-level overrides), to the
// sense network's last layer (vocabulary-wide) or to token embedding rows (input embedding).

/// A linear (or affine) map of one sense vector, applied in place to a slice of length d of a
/// larger array (a row of a weight matrix, one sense of an override). The order of the float
/// operations is fixed: results are bit-for-bit reproducible.
enum SenseMap {
    case scale(Float)
    /// v -= strength * Q Q^T v, Q orthonormal rows.
    case project([[Float]], strength: Float)
    /// v += (u . v) w
    case rankOne(u: [Float], w: [Float])
    /// v += offset (affine; folds into the bias only)
    case offset([Float])
    /// v -= M v, then v += offset: a concept eraser x - M (x - mean) with offset = M mean, split
    /// into its linear part (folds into a layer's weight) and its constant (into the bias).
    case affine(correction: [Double], offset: [Float])

    func applyLinear(_ v: inout ArraySlice<Float>) {
        let o = v.startIndex, d = v.count
        switch self {
        case .scale(let s): for i in v.indices { v[i] *= s }
        case .project(let basis, let strength):
            var coefficients: [Float] = []
            for q in basis {
                var dot: Double = 0
                for i in 0..<d { dot += Double(q[i]) * Double(v[o + i]) }
                coefficients.append(Float(dot) * strength)
            }
            for (q, c) in zip(basis, coefficients) { for i in 0..<d { v[o + i] -= c * q[i] } }
        case .rankOne(let u, let w):
            var dot: Double = 0
            for i in 0..<d { dot += Double(u[i]) * Double(v[o + i]) }
            let c = Float(dot)
            for i in 0..<d { v[o + i] += c * w[i] }
        case .affine(let m, _):
            var t = [Double](repeating: 0, count: d)
            for i in 0..<d {
                var dot: Double = 0
                for j in 0..<d { dot += m[i * d + j] * Double(v[o + j]) }
                t[i] = dot
            }
            for i in 0..<d { v[o + i] = Float(Double(v[o + i]) - t[i]) }
        case .offset: break
        }
    }

    func applyOffset(_ v: inout ArraySlice<Float>) {
        switch self {
        case .offset(let offset), .affine(_, let offset): for (i, x) in zip(v.indices, offset) { v[i] += x }
        default: break
        }
    }

    func apply(_ v: inout ArraySlice<Float>) { applyLinear(&v); applyOffset(&v) }

    /// Applies the map to senses `senses` of a (k, d) row-major block of sense vectors.
    func apply(toSenses senses: [Int], of v: inout [Float], d: Int) {
        for l in senses { apply(&v[(l * d)..<((l + 1) * d)]) }
    }
}

/// The map of each edited sense, in the order of the senses: one map for all of them, except for
/// erase, which fits an eraser per sense.
typealias SenseMaps = [(sense: Int, map: SenseMap)]

extension Array where Element == (sense: Int, map: SenseMap) {
    /// Applies each sense's map to that sense of a (k, d) row-major block of sense vectors.
    func apply(to v: inout [Float], d: Int) {
        for (l, map) in self { map.apply(&v[(l * d)..<((l + 1) * d)]) }
    }
}

struct EditState {
    var model: LanguageModel
    let tokenizer: GPT2Tokenizer?
    var d: Int { model.config.nEmbd }
    var k: Int { model.config.senses }

    func row(_ id: Int) -> [Double] { model.embeddingRow(id).map(Double.init) }

    func label(_ id: Int) -> String { tokenizer?.displayPiece(id).map { "'\($0)'" } ?? "#\(id)" }

    /// The direction's orthonormal basis (rows of length d).
    func basis(_ direction: ResolvedDirection) throws -> [[Double]] {
        let raw: [[Double]]
        switch direction {
        case .embeddingDifference(let a, let b): raw = [zip(row(a), row(b)).map { $0 - $1 }]
        case .meanDifference(let pairs):
            var m = [Double](repeating: 0, count: d)
            for (a, b) in pairs { for (i, x) in zip(row(a), row(b)).map({ $0 - $1 }).enumerated() { m[i] += x / Double(pairs.count) } }
            raw = [m]
        case .pca(let pairs, let kk):
            let deltas = pairs.map { zip(row($0.0), row($0.1)).map { $0 - $1 } }
            let gram = deltas.map { a in deltas.map { LinearAlgebra.dot(a, $0) } }
            let eig = LinearAlgebra.symmetricEigen(gram)
            var comps: [[Double]] = []
            for (value, u) in eig.prefix(kk) where value > 1e-12 {
                var c = [Double](repeating: 0, count: d)
                for (ui, delta) in zip(u, deltas) { for i in 0..<d { c[i] += ui * delta[i] } }
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

    func senseMap(_ op: ResolvedOperation) throws -> SenseMap {
        switch op {
        case .scale(let s): return .scale(s)
        case .projectOut(let dir, let strength): return .project(try basis(dir).map { $0.map(Float.init) }, strength: strength)
        case .add(let dir, let amount): return .offset(try basis(dir)[0].map { Float($0 * Double(amount)) })
        case .replaceAssociation(let r, let a):
            // C' = C - (C.E_r/|E_r|^2) E_r + (C.E_r/|E_r|^2)(|E_r|^2/|E_a|^2) E_a
            let er = row(r), ea = row(a)
            let nr = LinearAlgebra.dot(er, er), na = LinearAlgebra.dot(ea, ea)
            guard nr > 0, na > 0 else { throw EditError(file: "replace_association", "an embedding row is zero") }
            let u = er.map { Float($0 / nr) }
            let w = zip(er, ea).map { Float(-$0 + (nr / na) * $1) }
            return .rankOne(u: u, w: w)
        case .fitScale: return .scale(1)
        case .erase: throw EditError(file: "erase", "erase fits one map per sense (senseMaps)")
        }
    }

    /// One map per sense: erase fits an eraser on each sense's vectors of its words (from the
    /// model as edited so far); every other operation maps all senses alike.
    func senseMaps(_ op: ResolvedOperation, senses: [Int]) throws -> (SenseMaps, [ErasureFit]) {
        guard case .erase(let method, let words) = op else {
            let map = try senseMap(op)
            return (senses.map { ($0, map) }, [])
        }
        let vectors = model.senseVectors(words.map(\.token))
        var maps: SenseMaps = [], fits: [ErasureFit] = []
        for l in senses {
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
        return (maps, fits)
    }

    func senseIndices(_ r: ResolvedIntervention) throws -> ([Int], [LocalizedSense]) {
        switch r.senses {
        case .indices(let l): return (l, [])
        case .localized(let a, let b, let top):
            // erase over the whole vocabulary has no selected words: its pairs' words rank the senses
            if r.scope == .vocabulary, case .erase(_, let words) = r.operation {
                let ranked = Localization.rankSeparation(model: model, first: words.filter { $0.label == 1 }.map(\.token),
                                                         second: words.filter { $0.label == 0 }.map(\.token), a: a, b: b)
                return (Array(ranked.prefix(top).map(\.sense)), ranked)
            }
            let table = Localization.rank(model: model, tokens: r.tokens, a: a, b: b)
            return (Array(table.senses.prefix(top).map(\.sense)), table.senses)
        case .contextual(let a, let b, let top, let suite):
            guard let tokenizer else { throw EditError(r.intervention.place, "localized by contextual needs a tokenizer") }
            let table = try Localization.rankContextual(model: model, tokens: r.tokens, a: a, b: b, suite: suite, tokenizer: tokenizer)
            return (Array(table.senses.prefix(top).map(\.sense)), table.senses)
        }
    }

    /// A token's current (k*d) sense vectors, to be edited into an override.
    func senseBlock(of id: Int, _ current: [Int: [Float]]) throws -> [Float] {
        guard let v = current[id], v.count == k * d else {
            throw EditError(file: "senses", "token \(id) has no sense vectors of \(k) x \(d) values")
        }
        return v
    }

    mutating func apply(_ r: ResolvedIntervention) throws -> InterventionRecord {
        let iv = r.intervention
        let place = iv.place
        func wrap<T>(_ body: () throws -> T) throws -> T {
            do { return try body() } catch let e as EditError where e.place == nil {
                throw EditError(place, e.message)
            }
        }
        let (senses, localization) = try senseIndices(r)
        var fitted: [FittedScale] = []
        var erasure: [ErasureFit] = []
        var summary: String
        let pieces = r.tokens.map { label($0) }
        switch r.scope {
        case .inputEmbedding:
            let map = try wrap { try senseMap(r.operation) }
            var params = model.parameters
            let wteName = ParameterTable.tokenEmbedding(params.config)
            let wte = params[wteName]
            // E stays the output embedding: it is copied to lm_head before the input rows change
            if params.config.tied { params.weights[ParameterTable.outputEmbedding] = Weight(shape: wte.shape, values: wte.values) }
            params.config.tieWordEmbeddings = false
            var values = wte.values
            for id in r.tokens { map.apply(&values[(id * d)..<((id + 1) * d)]) }
            params.weights[wteName] = Weight(shape: wte.shape, values: values)
            model = LanguageModel(parameters: params, senseOverrides: model.senseOverrides)
            summary = "\(iv.operation.name) on the input embedding of \(r.tokens.count) token(s); output embedding untied"
        case .vocabulary:
            let maps: SenseMaps
            (maps, erasure) = try wrap { try senseMaps(r.operation, senses: senses) }
            var params = model.parameters
            let (wName, bName) = ParameterTable.senseOutputProjection(params.config)
            let w = params[wName], b = params[bName]
            // Conv1D (inner, k*d): y = x W + b, so sense l of every output is columns l*d..<(l+1)*d
            // of each row, and the linear map applies to each row's slice; the offset only to b.
            let rows = w.shape[0], cols = w.shape[1]
            var wv = w.values, bv = b.values
            for row in 0..<rows {
                for (l, map) in maps {
                    let start = row * cols + l * d
                    map.applyLinear(&wv[start..<(start + d)])
                }
            }
            maps.apply(to: &bv, d: d)
            params.weights[wName] = Weight(shape: w.shape, values: wv)
            params.weights[bName] = Weight(shape: b.shape, values: bv)
            // word-level overrides made earlier are transformed too (the edit applies to every token)
            var overrides = model.senseOverrides
            for (id, var v) in overrides {
                maps.apply(to: &v, d: d)
                overrides[id] = v
            }
            model = LanguageModel(parameters: params, senseOverrides: overrides)  // fresh sense cache
            summary = "\(iv.operation.name) of sense(s) \(senses) for every token, folded into final_mlp.c_proj"
        case .words:
            var overrides = model.senseOverrides
            let current = model.senseVectors(r.tokens)
            if case .fitScale(let suite, let a, let b) = r.operation {
                guard let tokenizer else { throw EditError(place, "fit_scale needs a tokenizer") }
                let fits = try wrap {
                    try FitScale.fit(model: model, tokenizer: tokenizer, suite: suite, tokens: r.tokens, senses: senses, a: a, b: b)
                }
                for (id, fit) in zip(r.tokens, fits) {
                    var v = try senseBlock(of: id, current)
                    SenseMap.scale(Float(fit.scale)).apply(toSenses: senses, of: &v, d: d)
                    overrides[id] = v
                    fitted.append(FittedScale(token: id, word: r.labels[id] ?? label(id), scale: fit.scale, biasBefore: fit.biasBefore,
                                              biasAfter: fit.biasAfter, objectiveAtOne: fit.objectiveAtOne, objective: fit.objective,
                                              evaluations: fit.evaluations))
                }
                summary = "fit_scale of sense(s) \(senses) for \(r.tokens.count) token(s): " +
                    fitted.map { "\($0.word) s=\(String(format: "%.4f", $0.scale))" }.joined(separator: ", ")
            } else {
                let maps: SenseMaps
                (maps, erasure) = try wrap { try senseMaps(r.operation, senses: senses) }
                for id in r.tokens {
                    var v = try senseBlock(of: id, current)
                    maps.apply(to: &v, d: d)
                    overrides[id] = v
                }
                summary = "\(iv.operation.name) of sense(s) \(senses) for \(r.tokens.count) token(s)"
            }
            model = model.withSenseOverrides(overrides)
        }
        if !erasure.isEmpty { summary += "; " + erasure.map(\.description).joined(separator: ", ") }
        if !r.skipped.isEmpty { summary += "; skipped \(r.skipped.count) multi-token word(s)" }
        return InterventionRecord(file: r.file.url.path, index: r.index, name: iv.name, operation: iv.operation.name, scope: r.scope,
                                  tokens: r.tokens, pieces: pieces, skipped: r.skipped, senses: senses, fitted: fitted,
                                  localization: localization, erasure: erasure, summary: summary)
    }
}
