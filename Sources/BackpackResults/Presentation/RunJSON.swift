import Foundation

/// Results as JSON for scripts: every aggregate of every suite and variant.
public enum RunJSON {
    /// The run's aggregates as JSON (`backpack eval --json`, `backpack report --json`); `runs`
    /// lists every run id of the file when given.
    public static func json(runID: String, _ results: [VariantResults], runs: [String]? = nil) throws -> String {
        var variants: [[String: Any]] = []
        for v in results {
            var suites: [String: Any] = [:]
            for s in v.suites {
                var agg: [String: Any] = [:]
                for (n, val) in s.attributes {
                    switch val {
                    case .double(let d): agg[n] = d.isFinite ? d : NSNull()
                    case .int(let i): agg[n] = i
                    case .string(let t): agg[n] = t
                    }
                }
                var suite: [String: Any] = [ResultsKeys.suiteVersion: s.suiteVersion, ResultsKeys.dataSHA256: s.dataSHA256,
                                            ResultsKeys.headline: s.headline, ResultsKeys.aggregates: agg]
                // Which headline metric is the bias and which the cost: {"bias": "bias"}, {"cost": "token_perplexity"}.
                if !s.roles.isEmpty { suite[ResultsKeys.metricRoles] = Dictionary(uniqueKeysWithValues: s.roles.map { ($0.key.rawValue, $0.value) }) }
                suites[s.suiteName] = suite
            }
            var entry: [String: Any] = ["variant": v.variant, ResultsKeys.editSHA256: v.editSHA256, "suites": suites]
            // The edit file and, for a sweep point, its coordinates: {"axis": "value as written"}.
            if let g = v.grid {
                entry[ResultsKeys.editFamily] = g.family
                entry["grid"] = Dictionary(uniqueKeysWithValues: zip(g.axes, g.values))
            }
            variants.append(entry)
        }
        var object: [String: Any] = ["run_id": runID, "variants": variants]
        if let runs { object[ResultsKeys.runs] = runs }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
