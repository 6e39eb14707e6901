import BackpackModel
import BackpackTokenizer
import Foundation

/// A word's fitted scale (fit_scale).
public struct FittedScale: Sendable, Codable, Equatable {
    public let token: Int
    public let word: String
    public let scale: Double
    /// Mean of max(p_a/p_b, p_b/p_a) on the fit prompts, before and after.
    public let biasBefore: Double
    public let biasAfter: Double
    /// bias + |1 - s| at s = 1 and at the fitted s.
    public let objectiveAtOne: Double
    public let objective: Double
    public let evaluations: Int
}

/// One sense's rank in a localization.
public struct LocalizedSense: Sendable, Codable, Equatable {
    public let sense: Int
    /// Mean over words of (E_a - E_b) . C(w)_l.
    public let mean: Double
    /// Mean over words of |(E_a - E_b) . C(w)_l|.
    public let meanAbsolute: Double
}

/// What one intervention did.
public struct InterventionRecord: Sendable, Codable {
    public let file: String
    public let index: Int
    public let name: String?
    public let operation: String
    /// "words", "vocabulary" or "input_embedding"
    public let scope: String
    public let tokens: [Int]
    public let pieces: [String]
    public let skipped: [String]
    public let senses: [Int]
    public let fitted: [FittedScale]
    public let localization: [LocalizedSense]
    public let summary: String
}

public struct EditOutcome: Sendable {
    /// The edited model: folded weights plus the word-level sense-override table.
    public let model: LanguageModel
    public let records: [InterventionRecord]
    public init(model: LanguageModel, records: [InterventionRecord]) { self.model = model; self.records = records }
}

/// A linear (or affine) map of one sense vector.
enum SenseMap {
    case scale(Float)
    /// v -= strength * Q Q^T v, Q orthonormal rows.
    case project([[Float]], strength: Float)
    /// v += (u . v) w
    case rankOne(u: [Float], w: [Float])
    /// v += offset (affine; folds into the bias only)
    case offset([Float])

    func applyLinear(_ v: UnsafeMutablePointer<Float>, _ d: Int) {
        switch self {
        case .scale(let s): for i in 0..<d { v[i] *= s }
        case .project(let basis, let strength):
            var coefficients: [Float] = []
            for q in basis {
                var dot: Double = 0
                for i in 0..<d { dot += Double(q[i]) * Double(v[i]) }
                coefficients.append(Float(dot) * strength)
            }
            for (q, c) in zip(basis, coefficients) { for i in 0..<d { v[i] -= c * q[i] } }
        case .rankOne(let u, let w):
            var dot: Double = 0
            for i in 0..<d { dot += Double(u[i]) * Double(v[i]) }
            let c = Float(dot)
            for i in 0..<d { v[i] += c * w[i] }
        case .offset: break
        }
    }

    func applyOffset(_ v: UnsafeMutablePointer<Float>, _ d: Int) {
        if case .offset(let o) = self { for i in 0..<d { v[i] += o[i] } }
    }

    func apply(_ v: UnsafeMutablePointer<Float>, _ d: Int) { applyLinear(v, d); applyOffset(v, d) }
}

enum Vectors {
    static func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
    static func norm(_ a: [Double]) -> Double { dot(a, a).squareRoot() }

    /// Orthonormal basis of the span (modified Gram-Schmidt, twice); drops dependent vectors.
    static func orthonormalize(_ vectors: [[Double]]) -> [[Double]] {
        var basis: [[Double]] = []
        for v0 in vectors {
            var v = v0
            let scale = norm(v0)
            if scale == 0 { continue }
            for _ in 0..<2 { for q in basis { let c = dot(q, v); for i in v.indices { v[i] -= c * q[i] } } }
            let n = norm(v)
            if n <= 1e-6 * scale { continue }
            basis.append(v.map { $0 / n })
        }
        return basis
    }

    /// Eigenvalues and eigenvectors (columns as arrays) of a small symmetric matrix (cyclic Jacobi), sorted by value descending.
    static func symmetricEigen(_ a0: [[Double]]) -> [(value: Double, vector: [Double])] {
        let n = a0.count
        var a = a0
        var v = (0..<n).map { i in (0..<n).map { $0 == i ? 1.0 : 0.0 } }
        for _ in 0..<100 {
            var off = 0.0
            for i in 0..<n { for j in 0..<n where i != j { off += a[i][j] * a[i][j] } }
            if off < 1e-30 { break }
            for p in 0..<n {
                for q in (p + 1)..<max(p + 1, n) where abs(a[p][q]) > 1e-300 {
                    let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let akp = a[k][p], akq = a[k][q]
                        a[k][p] = c * akp - s * akq; a[k][q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = a[p][k], aqk = a[q][k]
                        a[p][k] = c * apk - s * aqk; a[q][k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k][p], vkq = v[k][q]
                        v[k][p] = c * vkp - s * vkq; v[k][q] = s * vkp + c * vkq
                    }
                }
            }
        }
        return (0..<n).map { j in (a[j][j], (0..<n).map { v[$0][j] }) }.sorted { $0.value > $1.value }
    }
}

public enum Editor {
    /// Resolves every edit file against the model's config and tokenizer, without computing
    /// anything: the first problem is thrown as `file:line:column: message`.
    public static func validate(_ files: [EditFile], config: BackpackConfig, tokenizer: GPT2Tokenizer?) throws {
        let resolver = Resolver(config: config, tokenizer: tokenizer)
        for file in files { for (i, iv) in file.interventions.enumerated() { _ = try resolver.resolve(file, i, iv) } }
    }

    /// Applies the files' interventions in order. Word-level edits become sense overrides (all k
    /// senses of a token); `scope: vocabulary` edits are folded into the sense network's last
    /// layer; `target: input_embedding` edits change wte rows and untie the output embedding.
    public static func apply(_ files: [EditFile], to model: LanguageModel, tokenizer: GPT2Tokenizer?) throws -> EditOutcome {
        let resolver = Resolver(config: model.config, tokenizer: tokenizer)
        var resolved: [ResolvedIntervention] = []
        for file in files { for (i, iv) in file.interventions.enumerated() { resolved.append(try resolver.resolve(file, i, iv)) } }
        var state = EditState(model: model, tokenizer: tokenizer)
        var records: [InterventionRecord] = []
        for r in resolved { records.append(try state.apply(r)) }
        return EditOutcome(model: state.model, records: records)
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
            let gram = deltas.map { a in deltas.map { Vectors.dot(a, $0) } }
            let eig = Vectors.symmetricEigen(gram)
            var comps: [[Double]] = []
            for (value, u) in eig.prefix(kk) where value > 1e-12 {
                var c = [Double](repeating: 0, count: d)
                for (ui, delta) in zip(u, deltas) { for i in 0..<d { c[i] += ui * delta[i] } }
                // orient: the mean difference has a positive component
                let sign = deltas.reduce(0) { $0 + Vectors.dot($1, c) } < 0 ? -1.0 : 1.0
                comps.append(c.map { $0 * sign })
            }
            raw = comps
        case .sense(let id, let l):
            let v = model.senseVectors([id])[id] ?? []
            raw = [v[(l * d)..<((l + 1) * d)].map(Double.init)]
        }
        let q = Vectors.orthonormalize(raw)
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
            let nr = Vectors.dot(er, er), na = Vectors.dot(ea, ea)
            guard nr > 0, na > 0 else { throw EditError(file: "replace_association", "an embedding row is zero") }
            let u = er.map { Float($0 / nr) }
            let w = zip(er, ea).map { Float(-$0 + (nr / na) * $1) }
            return .rankOne(u: u, w: w)
        case .fitScale: return .scale(1)
        }
    }

    func senseIndices(_ r: ResolvedIntervention) -> ([Int], [LocalizedSense]) {
        switch r.senses {
        case .indices(let l): return (l, [])
        case .localized(let a, let b, let top):
            let table = Localization.rank(model: model, tokens: r.tokens, a: a, b: b)
            return (Array(table.senses.prefix(top).map(\.sense)), table.senses)
        }
    }

    mutating func apply(_ r: ResolvedIntervention) throws -> InterventionRecord {
        let iv = r.intervention
        let place = iv.place
        func wrap<T>(_ body: () throws -> T) throws -> T {
            do { return try body() } catch let e as EditError where e.place == nil {
                throw EditError(place, e.message)
            }
        }
        let (senses, localization) = senseIndices(r)
        var fitted: [FittedScale] = []
        let scope: String
        var summary: String
        let pieces = r.tokens.map { label($0) }
        if iv.target == .inputEmbedding {
            scope = "input_embedding"
            let map = try wrap { try senseMap(r.operation) }
            var params = model.parameters
            let prefix = ParameterTable.trunkPrefix(params.config)
            let wte = params[prefix + "wte.weight"]
            if params.config.tied { params.weights["lm_head.weight"] = Weight(shape: wte.shape, values: wte.values) }
            params.config.tieWordEmbeddings = false
            var values = wte.values
            values.withUnsafeMutableBufferPointer { p in
                for id in r.tokens { map.apply(p.baseAddress! + id * d, d) }
            }
            params.weights[prefix + "wte.weight"] = Weight(shape: wte.shape, values: values)
            model = LanguageModel(parameters: params, senseOverrides: model.senseOverrides)
            summary = "\(iv.operation.name) on the input embedding of \(r.tokens.count) token(s); output embedding untied"
        } else if case .vocabulary = iv.selection {
            scope = "vocabulary"
            let map = try wrap { try senseMap(r.operation) }
            var params = model.parameters
            let wName = "backpack.sense_network.final_mlp.c_proj.weight", bName = "backpack.sense_network.final_mlp.c_proj.bias"
            let w = params[wName], b = params[bName]
            let rows = w.shape[0], cols = w.shape[1]
            var wv = w.values, bv = b.values
            wv.withUnsafeMutableBufferPointer { p in
                for rIndex in 0..<rows { for l in senses { map.applyLinear(p.baseAddress! + rIndex * cols + l * d, d) } }
            }
            bv.withUnsafeMutableBufferPointer { p in for l in senses { map.apply(p.baseAddress! + l * d, d) } }
            params.weights[wName] = Weight(shape: w.shape, values: wv)
            params.weights[bName] = Weight(shape: b.shape, values: bv)
            // word-level overrides made earlier are transformed too (the edit applies to every token)
            var overrides = model.senseOverrides
            for id in overrides.keys {
                overrides[id]?.withUnsafeMutableBufferPointer { p in for l in senses { map.apply(p.baseAddress! + l * d, d) } }
            }
            model = LanguageModel(parameters: params, senseOverrides: overrides)  // fresh sense cache
            summary = "\(iv.operation.name) of sense(s) \(senses) for every token, folded into final_mlp.c_proj"
        } else {
            scope = "words"
            var overrides = model.senseOverrides
            let current = model.senseVectors(r.tokens)
            if case .fitScale(let suite, let a, let b) = r.operation {
                guard let tokenizer else { throw EditError(place, "fit_scale needs a tokenizer") }
                let fits = try wrap {
                    try FitScale.fit(model: model, tokenizer: tokenizer, suite: suite, tokens: r.tokens, senses: senses, a: a, b: b)
                }
                for (id, fit) in zip(r.tokens, fits) {
                    var v = current[id] ?? []
                    v.withUnsafeMutableBufferPointer { p in for l in senses { SenseMap.scale(Float(fit.scale)).apply(p.baseAddress! + l * d, d) } }
                    overrides[id] = v
                    fitted.append(FittedScale(token: id, word: r.labels[id] ?? label(id), scale: fit.scale, biasBefore: fit.biasBefore,
                                              biasAfter: fit.biasAfter, objectiveAtOne: fit.objectiveAtOne, objective: fit.objective,
                                              evaluations: fit.evaluations))
                }
                summary = "fit_scale of sense(s) \(senses) for \(r.tokens.count) token(s): " +
                    fitted.map { "\($0.word) s=\(String(format: "%.4f", $0.scale))" }.joined(separator: ", ")
            } else {
                let map = try wrap { try senseMap(r.operation) }
                for id in r.tokens {
                    var v = current[id] ?? []
                    v.withUnsafeMutableBufferPointer { p in for l in senses { map.apply(p.baseAddress! + l * d, d) } }
                    overrides[id] = v
                }
                summary = "\(iv.operation.name) of sense(s) \(senses) for \(r.tokens.count) token(s)"
            }
            model = model.withSenseOverrides(overrides)
        }
        if !r.skipped.isEmpty { summary += "; skipped \(r.skipped.count) multi-token word(s)" }
        return InterventionRecord(file: r.file.url.path, index: r.index, name: iv.name, operation: iv.operation.name, scope: scope,
                                  tokens: r.tokens, pieces: pieces, skipped: r.skipped, senses: senses, fitted: fitted,
                                  localization: localization, summary: summary)
    }
}
