import BackpackCheckpoint
import BackpackIO
import BackpackModel
import Foundation

/// The workload file both sides of `make bench` read (format backpack-bench-workload/1, written
/// by Tools/bench/workload.py, whose docstring defines it): passages of token ids (EOS already in)
/// and three sense edits of one sense of the listed token ids, built here as word-level
/// overrides of the base model:
///   scale            C'_l(w) = scale * C_l(w)
///   project_out      C'_l(w) = C_l(w) - strength (C_l(w) . u) u,  u = unit(mean_i(E[a_i] - E[b_i]))
///   scale_per_token  C'_l(w) = scales[i] * C_l(w)  for w = token_ids[i]
struct BenchWorkload {
    static let format = "backpack-bench-workload/1"
    var source: String
    var sha256: String
    var passages: [[Int]]
    var maxLength: Int, stride: Int
    var variants: [(String, LanguageModel)]

    static func load(_ url: URL, model: LanguageModel) throws -> BenchWorkload {
        let path = url.path
        func fail(_ field: String, _ what: String) -> ModelError { ModelError(file: path, reason: "'\(field)' \(what)") }
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw ModelError(file: path, reason: "cannot read: \(error.localizedDescription)") }
        guard let w = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelError(file: path, reason: "not a JSON object (make one with Tools/bench/workload.py)")
        }
        guard w["format"] as? String == format else { throw fail("format", "must be '\(format)'") }
        func int(_ v: Any?, _ field: String, minimum: Int) throws -> Int {
            // NSNumber bridges to Int only when the value is an exact integer
            guard let n = v as? Int, n >= minimum else { throw fail(field, "must be an integer >= \(minimum)") }
            return n
        }
        func ids(_ v: Any?, _ field: String) throws -> [Int] {
            guard let list = v as? [Any] else { throw fail(field, "must be a list of token ids") }
            return try list.enumerated().map { i, x in
                let id = try int(x, "\(field)[\(i)]", minimum: 0)
                if id >= model.config.vocabSize { throw fail("\(field)[\(i)]", "is \(id), beyond the model's vocabulary (\(model.config.vocabSize))") }
                return id
            }
        }
        func number(_ v: Any?, _ field: String) throws -> Double {
            guard let n = v as? NSNumber else { throw fail(field, "must be a number") }
            return n.doubleValue
        }
        let maxLength = try int(w["max_length"], "max_length", minimum: 2)
        let stride = try int(w["stride"], "stride", minimum: 1)
        guard let ps = w["passages"] as? [Any], !ps.isEmpty else { throw fail("passages", "must be a non-empty list of id lists") }
        let passages = try ps.indices.map { i -> [Int] in
            let p = try ids(ps[i], "passages[\(i)]")
            if p.count < 2 { throw fail("passages[\(i)]", "needs at least 2 ids") }
            return p
        }
        guard let e = w["edits"] as? [String: Any] else { throw fail("edits", "must be an object") }
        let sense = try int(e["sense"], "edits.sense", minimum: 0)
        guard sense < model.config.senses else { throw fail("edits.sense", "is \(sense); the model has \(model.config.senses) senses") }
        let tokens = try ids(e["token_ids"], "edits.token_ids")
        guard !tokens.isEmpty else { throw fail("edits.token_ids", "must not be empty") }
        guard let vs = e["variants"] as? [[String: Any]], !vs.isEmpty else { throw fail("edits.variants", "must be a non-empty list of objects") }

        let d = model.config.nEmbd
        let current = model.senseVectors(tokens)
        var variants: [(String, LanguageModel)] = []
        for (i, v) in vs.enumerated() {
            let f = "edits.variants[\(i)]"
            guard let name = v["name"] as? String, !name.isEmpty, name != "base", name != "all" else {
                throw fail(f + ".name", "must be a non-empty string other than 'base' and 'all'")
            }
            // the factor of sense `sense` of token i, or a projection
            var scaleOf: (Int) -> Float = { _ in 1 }
            var direction: [Double]? = nil, strength = 0.0
            switch v["op"] as? String {
            case "scale":
                let s = Float(try number(v["scale"], f + ".scale")); scaleOf = { _ in s }
            case "scale_per_token":
                guard let list = v["scales"] as? [Any], list.count == tokens.count else {
                    throw fail(f + ".scales", "must be one number per edits.token_ids entry")
                }
                let scales = try list.enumerated().map { Float(try number($1, f + ".scales[\($0)]")) }
                scaleOf = { scales[$0] }
            case "project_out":
                guard let pairs = v["pairs"] as? [Any], !pairs.isEmpty else { throw fail(f + ".pairs", "must be a non-empty list of [id, id]") }
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
            variants.append((name, model.withSenseOverrides(overrides)))
        }
        return BenchWorkload(source: w["source"] as? String ?? "unknown", sha256: try FileDigest.sha256(url), passages: passages,
                             maxLength: maxLength, stride: stride, variants: variants)
    }
}
