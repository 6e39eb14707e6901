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
                suites[s.suiteName] = ["suite_version": s.suiteVersion, "data_sha256": s.dataSHA256, "headline": s.headline, "aggregates": agg]
            }
            var entry: [String: Any] = ["variant": v.variant, "edit_sha256": v.editSHA256, "suites": suites]
            // The edit file and, for a sweep point, its coordinates: {"axis": "value as written"}.
            if let g = v.grid {
                entry["edit_family"] = g.family
                entry["grid"] = Dictionary(uniqueKeysWithValues: zip(g.axes, g.values))
            }
            variants.append(entry)
        }
        var object: [String: Any] = ["run_id": runID, "variants": variants]
        if let runs { object["runs"] = runs }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
