import BackpackModel
import BackpackTokenizer
import Foundation

// Applying resolved interventions to a model: each operation gives SenseMaps (its `effect`), and
// each map is applied to sense vectors (word-level overrides), to the sense network's last
// layer (vocabulary-wide) or to token embedding rows (input embedding).

/// A linear (or affine) map of one sense vector, applied in place to a slice of length d of a
/// larger array (a row of a weight matrix, one sense of an override). The order of the float
/// operations is fixed: results are bit-for-bit reproducible. Affine maps fold exactly into the
/// sense network (the linear part into its weight, the constant into its bias), which is what
/// lets `scope: vocabulary` edit every token at once.
public enum SenseMap: Sendable {
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
}

/// The map of each edited sense, in the order of the senses.
public typealias SenseMaps = [(sense: Int, map: SenseMap)]

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

    func label(_ id: Int) -> String { tokenizer?.displayPiece(id).map { "'\($0)'" } ?? "#\(id)" }

    func senseIndices(_ r: ResolvedIntervention) throws -> ([Int], [LocalizedSense]) {
        switch r.senses {
        case .indices(let l): return (l, [])
        case .localized(let a, let b, let top):
            // the whole vocabulary has no selected words: the operation's own groups rank the senses (erase: its pairs' words)
            if r.scope == .vocabulary, let groups = r.operation.rankingGroups {
                let ranked = Localization.rankSeparation(model: model, first: groups.first, second: groups.second, a: a, b: b)
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
        let place = iv.place, name = iv.operation.name
        func wrap<T>(_ body: () throws -> T) throws -> T {
            do { return try body() } catch let e as EditError where e.place == nil {
                throw EditError(place, e.message)
            }
        }
        let (senses, localization) = try senseIndices(r)
        let context = OperationApplication(model: model, tokenizer: tokenizer, scope: r.scope, tokens: r.tokens, senses: senses,
                                           place: place, labels: r.labels)
        // word-level edits read the tokens' current vectors before the operation computes anything,
        // as they always have (the sense cache fills in the same order)
        let current = r.scope == .words ? model.senseVectors(r.tokens) : [:]
        let effect = try wrap { try r.operation.effect(context) }
        var summary: String
        let pieces = r.tokens.map { label($0) }
        switch r.scope {
        case .inputEmbedding:
            // an embedding row has no senses: one map for the whole row
            guard case .uniform(let map) = effect.maps else {
                throw EditError(place, "\(name) gave a map per sense or per token; expected one map for an input embedding row")
            }
            var params = model.parameters
            let wteName = ParameterTable.tokenEmbedding(params.config)
            let wte = params[wteName]
            // E stays the output embedding: it is copied to lm_head before the input rows change
            if params.config.tied { params.weights[ParameterTable.outputEmbedding] = Weight(shape: wte.shape, values: wte.values) }
            params.config.tieWordEmbeddings = false
            var values = wte.values
            for id in r.tokens { map.apply(&values[(id * d)..<((id + 1) * d)]) }
            params.weights[wteName] = Weight(shape: wte.shape, values: values)
            // word-level edits made earlier keep all k senses as they are now (the senses they left
            // alone do not follow the new input embedding, as before partial overrides)
            model = LanguageModel(parameters: params, senseOverrides: model.senseVectors(Array(model.senseOverrides.keys)))
            summary = "\(name) on the input embedding of \(r.tokens.count) token(s); output embedding untied"
        case .vocabulary:
            let maps: SenseMaps
            switch effect.maps {
            case .uniform(let map): maps = senses.map { ($0, map) }
            case .perSense(let m): maps = m
            case .perToken: throw EditError(place, "\(name) gave a map per token; expected one per sense to fold into the vocabulary")
            }
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
            model = LanguageModel(parameters: params, senseOverrides: overrides,      // fresh sense cache
                                  overriddenSenses: model.overriddenSenses)
            summary = "\(name) of sense(s) \(senses) for every token, folded into final_mlp.c_proj"
        case .words:
            var overrides = model.senseOverrides, edited = model.overriddenSenses
            for id in r.tokens {
                let maps: SenseMaps
                switch effect.maps {
                case .uniform(let map): maps = senses.map { ($0, map) }
                case .perSense(let m): maps = m
                case .perToken(let byToken):
                    guard let m = byToken[id] else { throw EditError(place, "\(name) gave no map for token \(id)") }
                    maps = m
                }
                var v = try senseBlock(of: id, current)
                maps.apply(to: &v, d: d)
                // the senses set so far: an id overridden whole (from a checkpoint) stays whole
                if overrides[id] == nil || edited[id] != nil { edited[id, default: []] += maps.map(\.sense) }
                overrides[id] = v
            }
            summary = "\(name) of sense(s) \(senses) for \(r.tokens.count) token(s)"
            model = model.withSenseOverrides(overrides, senses: edited)
        }
        summary += effect.note
        if !r.skipped.isEmpty { summary += "; skipped \(r.skipped.count) multi-token word(s)" }
        return InterventionRecord(file: r.file.url.path, index: r.index, name: iv.name, operation: name, scope: r.scope,
                                  tokens: r.tokens, pieces: pieces, skipped: r.skipped, senses: senses, fitted: effect.fitted,
                                  localization: localization, erasure: effect.erasure, summary: summary)
    }
}
