import Foundation

/// Results as JSON for scripts: every aggregate of every suite and variant.
public enum RunJSON {
    /// The run's aggregates as JSON (`backpack eval --json`, `backpack report --json`); `runs`
    /// lists every run id of the file when given.
    /// Each suite also has `kind` and `metrics`: per headline metric its metadata (`description`,
    /// `unit`, `ideal` (null: none), `better`) and, for an edited variant with a paired test,
    /// `test`, `p`, `p_holm`, `q` and `significant` (by `significance`, which the object's
    /// `significance` member names). `columns` restricts `metrics` to those (suite, metric) pairs.
    public static func json(runID: String, _ results: [VariantResults], runs: [String]? = nil,
                            significance: Significance = Significance(),
                            columns: [(suite: String, metric: String)]? = nil) throws -> String {
        var variants: [[String: Any]] = []
        func number(_ d: Double?) -> Any { d.map { $0.isFinite ? $0 as Any : NSNull() } ?? NSNull() }
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
                if let k = s.kind { suite[ResultsKeys.kind] = k }
                var metrics: [String: Any] = [:]
                for h in s.headline where columns == nil || columns!.contains(where: { $0 == (s.suiteName, h) }) {
                    var m: [String: Any] = [:]
                    if let info = s.metric(h) {
                        m["description"] = info.description; m["unit"] = info.unit; m["ideal"] = number(info.ideal)
                        m["better"] = info.better.rawValue
                    }
                    if let p = s[h + ResultsKeys.diffPSuffix]?.doubleValue {
                        m["p"] = number(p)
                        m["p_holm"] = number(s[h + ResultsKeys.diffPHolmSuffix]?.doubleValue)
                        m["q"] = number(s[h + ResultsKeys.diffQSuffix]?.doubleValue)
                        if case .string(let t)? = s[h + ResultsKeys.testSuffix] { m["test"] = t }
                        m["significant"] = significance.isSignificant(s, h)
                    }
                    metrics[h] = m
                }
                suite["metrics"] = metrics
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
        var object: [String: Any] = ["run_id": runID, "variants": variants,
                                     "significance": ["correction": significance.correction.rawValue, "alpha": significance.alpha,
                                                      "legend": significance.legend]]
        if let runs { object[ResultsKeys.runs] = runs }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
