import BackpackModel
import BackpackResults
import Foundation

/// A model variant: the base model or one edit applied alone to it.
public struct Variant: Sendable {
    public var name: String
    public var model: LanguageModel
    public var editText: String
    public var editSHA256: String
    /// The edit file and sweep coordinates (nil for base).
    public var grid: GridPoint?
    public init(name: String, model: LanguageModel, editText: String = "", editSHA256: String = "", grid: GridPoint? = nil) {
        self.name = name; self.model = model; self.editText = editText; self.editSHA256 = editSHA256; self.grid = grid
    }
}

/// Evaluates every variant on every prepared suite, in the order suite -> batch -> variants:
/// each batch of a suite runs through all variants before the next (the trunk once for the
/// variants that share it, VariantSet), so memory holds one batch, never all variants' logits.
/// Suites are tokenized once (prepared before); variants made with `withSenseOverrides` share
/// the base sense cache. Each result depends only on (variant, suite).
public enum EvaluationRunner {
    /// With `allowNonfinite` false (the default), a NaN or infinity in any result stops the run
    /// with a `NonFiniteResult` error (see `checkFinite`).
    /// `include(variant, suite)` limits the run to some pairs (a shard's share, `--shard`);
    /// `skip(variant, suite)` leaves an included pair out (a resumed run has it already); `finished`
    /// gets each checked result as soon as it is computed (so that it can be stored at once).
    /// `reference` is the unedited model (base): a variant that differs from it only by word-level
    /// sense overrides updates its logits, whichever other variants run with it, so that a variant's
    /// numbers do not depend on the others (VariantSet).
    /// `bootstrap` (nil: none) adds each headline aggregate's 95 % interval to every result
    /// (Bootstrap.addIntervals); the paired tests against base come once all are stored
    /// (Bootstrap.pairedDifferences).
    public static func run(suites: [PreparedSuite], variants: [Variant], reference: LanguageModel? = nil, allowNonfinite: Bool = false,
                           bootstrap: BootstrapSettings? = nil,
                           include: (String, String) -> Bool = { _, _ in true },
                           skip: (String, String) -> Bool = { _, _ in false },
                           finished: (String, SuiteResult) throws -> Void = { _, _ in },
                           progress: @Sendable (String) -> Void = { _ in }) throws -> [VariantResults] {
        var perVariant = [[SuiteResult]](repeating: [], count: variants.count)
        for s in suites {
            // A resumed run has some (variant, suite) pairs already: only the others are computed,
            // still all together (the trunk once per batch for those that share it).
            let included = variants.indices.filter { include(variants[$0].name, s.suite.name) }
            let todo = included.filter { !skip(variants[$0].name, s.suite.name) }
            for i in included where !todo.contains(i) {
                progress("[\(variants[i].name)] \(s.suite.name): already stored, not recomputed")
            }
            if todo.isEmpty { continue }
            let start = Date()
            var results = try s.evaluate(VariantSet(todo.map { variants[$0].model }, reference: reference)) { progress($0) }
            // The suite's kind says what its headline metrics are and which is the bias or the cost
            // (the reports read them), and which bootstrap plan fits the stored datasets.
            let schema = s.suite.kind.schema
            for r in results.indices {
                results[r].roles = schema.roles
                results[r].kind = s.suite.kind.name
                results[r].metrics = schema.metrics
            }
            let seconds = Date().timeIntervalSince(start)
            if let bootstrap, bootstrap.resamples > 0 {
                let t = Date()
                for i in results.indices { Bootstrap.addIntervals(&results[i], settings: bootstrap) }
                progress(String(format: "%@: intervals from %d bootstrap resamples in %.3f s", s.suite.name, bootstrap.resamples, Date().timeIntervalSince(t)))
            }
            for (i, r) in zip(todo, results) {
                if !allowNonfinite { try checkFinite(r, variant: variants[i].name) }
                try finished(variants[i].name, r)
                perVariant[i].append(r)
                progress(String(format: "[%@] %@ done in %.2f s (%d variant(s) evaluated together)",
                                 variants[i].name, s.suite.name, seconds, todo.count))
            }
        }
        return variants.enumerated().map { i, v in
            VariantResults(variant: v.name, editText: v.editText, editSHA256: v.editSHA256, grid: v.grid, suites: perVariant[i])
        }
    }
}

/// A result that is NaN or infinite: where it is, so that the model or edit can be looked at.
public struct NonFiniteResult: Error, CustomStringConvertible, Sendable {
    public var variant: String
    public var suite: String
    /// "dataset 'x'" or "attribute 'y'".
    public var field: String
    /// The first bad item of a dataset (nil for an attribute).
    public var item: Int?
    public var value: Double
    public var badCount: Int
    public var total: Int
    public var description: String {
        let at = item.map { "\(field) is \(value) at item \($0) (\(badCount) of \(total) items not finite)" } ?? "\(field) is \(value)"
        return "variant '\(variant)', suite '\(suite)': \(at); nothing was stored. The model or edit produces non-finite numbers; pass --allow-nonfinite to store them anyway"
    }
}

extension EvaluationRunner {
    /// Throws `NonFiniteResult` for the first NaN or infinity in a suite's per-item datasets
    /// (which name the item), then for an infinite attribute. A NaN attribute is allowed: it is an
    /// aggregate over no items (a CrowS-Pairs category with no anti-stereotype pairs in a subset
    /// is 0/0), while a model that produces NaN shows it in the per-item datasets.
    public static func checkFinite(_ result: SuiteResult, variant: String) throws {
        for (name, values) in result.datasets {
            // A dataset of looked-up values marks "unknown" with NaN (e.g. noun_pct_women); only
            // infinity is wrong there.
            let missingAllowed = result.missingValuesAllowed.contains(name)
            guard case .doubles(let d) = values,
                  let i = d.firstIndex(where: { missingAllowed ? $0.isInfinite : !$0.isFinite }) else { continue }
            throw NonFiniteResult(variant: variant, suite: result.suiteName, field: "dataset '\(name)'", item: i,
                                  value: d[i], badCount: d.filter { !$0.isFinite }.count, total: d.count)
        }
        for (name, value) in result.attributes {
            guard case .double(let d) = value, d.isInfinite else { continue }
            throw NonFiniteResult(variant: variant, suite: result.suiteName, field: "attribute '\(name)'", item: nil,
                                  value: d, badCount: 1, total: 1)
        }
    }
}
