import BackpackIO
import BackpackJSON
import BackpackModel
import BackpackModelFolder
import Foundation

/// The workload file both sides of `make bench` read (format backpack-bench-workload/1, written
/// by Tools/bench/workload.py, whose docstring defines it): passages of token ids (EOS already in)
/// and three sense edits of one sense of the listed token ids, built here as word-level
/// overrides of the base model:
///   scale            C'_l(w) = scale * C_l(w)
///   project_out      C'_l(w) = C_l(w) - strength (C_l(w) . u) u,  u = unit(mean_i(E[a_i] - E[b_i]))
///   scale_per_token  C'_l(w) = scales[i] * C_l(w)  for w = token_ids[i]
public struct BenchWorkload {
    public static let format = "backpack-bench-workload/1"
    public var source: String
    public var sha256: String
    public var passages: [[Int]]
    public var maxLength: Int, stride: Int
    public var variants: [(String, LanguageModel)]

    public static func load(_ url: URL, model: LanguageModel) throws -> BenchWorkload {
        let path = url.path
        func fail(_ field: String, _ what: String) -> ModelError { ModelError(file: path, reason: "'\(field)' \(what)") }
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw ModelError(file: path, reason: "cannot read: \(error.localizedDescription)") }
        let w: JSONValue
        do { w = try data.withUnsafeBytes { try JSONReader.parse($0, options: .strict) } } catch let e as JSONSyntaxError {
            throw ModelError(file: path, reason: "not JSON (byte \(e.offset): \(e.message)); make one with Tools/bench/workload.py")
        }
        guard case .object = w else { throw ModelError(file: path, reason: "not a JSON object (make one with Tools/bench/workload.py)") }
        guard case .string(format)? = w["format"] else { throw fail("format", "must be '\(format)'") }
        func int(_ v: JSONValue?, _ field: String, minimum: Int) throws -> Int {
            guard case .integer(let n)? = v, n >= minimum else { throw fail(field, "must be an integer >= \(minimum)") }
            return n
        }
        func list(_ v: JSONValue?, _ field: String, _ what: String) throws -> [JSONValue] {
            guard case .array(let items)? = v else { throw fail(field, "must be \(what)") }
            return items
        }
        func ids(_ v: JSONValue?, _ field: String) throws -> [Int] {
            try list(v, field, "a list of token ids").enumerated().map { i, x in
                let id = try int(x, "\(field)[\(i)]", minimum: 0)
                if id >= model.config.vocabSize { throw fail("\(field)[\(i)]", "is \(id), beyond the model's vocabulary (\(model.config.vocabSize))") }
                return id
            }
        }
        func number(_ v: JSONValue?, _ field: String) throws -> Double {
            switch v {
            case .integer(let n)?: return Double(n)
            case .double(let d)?: return d
            default: throw fail(field, "must be a number")
            }
        }
        let maxLength = try int(w["max_length"], "max_length", minimum: 2)
        let stride = try int(w["stride"], "stride", minimum: 1)
        let ps = try list(w["passages"], "passages", "a non-empty list of id lists")
        guard !ps.isEmpty else { throw fail("passages", "must be a non-empty list of id lists") }
        let passages = try ps.indices.map { i -> [Int] in
            let p = try ids(ps[i], "passages[\(i)]")
            if p.count < 2 { throw fail("passages[\(i)]", "needs at least 2 ids") }
            return p
        }
        guard let e = w["edits"], case .object = e else { throw fail("edits", "must be an object") }
        let sense = try int(e["sense"], "edits.sense", minimum: 0)
        guard sense < model.config.senses else { throw fail("edits.sense", "is \(sense); the model has \(model.config.senses) senses") }
        let tokens = try ids(e["token_ids"], "edits.token_ids")
        guard !tokens.isEmpty else { throw fail("edits.token_ids", "must not be empty") }
        let vs = try list(e["variants"], "edits.variants", "a non-empty list of objects")
        guard !vs.isEmpty else { throw fail("edits.variants", "must be a non-empty list of objects") }

        let d = model.config.nEmbd
        let current = model.senseVectors(tokens)
        var variants: [(String, LanguageModel)] = []
        for (i, v) in vs.enumerated() {
            let f = "edits.variants[\(i)]"
            guard case .object = v else { throw fail(f, "must be an object") }
            guard case .string(let name)? = v["name"], !name.isEmpty, name != "base", name != "all" else {
                throw fail(f + ".name", "must be a non-empty string other than 'base' and 'all'")
            }
            // the factor of sense `sense` of token i, or a projection
            var scaleOf: (Int) -> Float = { _ in 1 }
            var direction: [Double]? = nil, strength = 0.0
            guard case .string(let op)? = v["op"] else { throw fail(f + ".op", "must be scale, project_out or scale_per_token") }
            switch op {
            case "scale":
                let s = Float(try number(v["scale"], f + ".scale")); scaleOf = { _ in s }
            case "scale_per_token":
                let list = try list(v["scales"], f + ".scales", "one number per edits.token_ids entry")
                guard list.count == tokens.count else { throw fail(f + ".scales", "must be one number per edits.token_ids entry") }
                let scales = try list.enumerated().map { Float(try number($1, f + ".scales[\($0)]")) }
                scaleOf = { scales[$0] }
            case "project_out":
                let pairs = try list(v["pairs"], f + ".pairs", "a non-empty list of [id, id]")
                guard !pairs.isEmpty else { throw fail(f + ".pairs", "must be a non-empty list of [id, id]") }
                var mean = [Double](repeating: 0, count: d)
                for (j, p) in pairs.enumerated() {
                    let ab = try ids(p, f + ".pairs[\(j)]")
                    guard ab.count == 2 else { throw fail(f + ".pairs[\(j)]", "must be [id, id]") }
                    let ea = model.embeddingRow(ab[0]), eb = model.embeddingRow(ab[1])
                    for c in 0..<d { mean[c] += (Double(ea[c]) - Double(eb[c])) / Double(pairs.count) }
                }
                let norm = mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
                guard norm > 0 else { throw fail(f + ".pairs", "give a zero direction") }
                direction = mean.map { $0 / norm }
                strength = try number(v["strength"], f + ".strength")
            default:
                throw fail(f + ".op", "must be scale, project_out or scale_per_token")
            }
            var overrides: [Int: [Float]] = [:]
            for (t, id) in tokens.enumerated() {
                guard var c = overrides[id] ?? current[id] else { continue }
                let range = (sense * d)..<((sense + 1) * d)
                if let u = direction {
                    let dot = zip(c[range], u).reduce(0.0) { $0 + Double($1.0) * $1.1 }
                    for (k, x) in zip(range, u) { c[k] -= Float(strength * dot * x) }
                } else {
                    let s = scaleOf(t)
                    for k in range { c[k] *= s }
                }
                overrides[id] = c
            }
            variants.append((name, model.withSenseOverrides(overrides, senses: overrides.mapValues { _ in [sense] })))
        }
        var source = "unknown"
        if case .string(let s)? = w["source"] { source = s }
        return BenchWorkload(source: source, sha256: try FileDigest.sha256(url), passages: passages,
                             maxLength: maxLength, stride: stride, variants: variants)
    }
}
