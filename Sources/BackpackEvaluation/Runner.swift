import BackpackModel
import BackpackResults
import Foundation

/// A model variant: the base model or one edit applied alone to it.
public struct Variant: Sendable {
    public var name: String
    public var model: LanguageModel
    public var editText: String
    public var editSHA256: String
    public init(name: String, model: LanguageModel, editText: String = "", editSHA256: String = "") {
        self.name = name; self.model = model; self.editText = editText; self.editSHA256 = editSHA256
    }
}

/// Evaluates every variant on every prepared suite, in the order suite -> batch -> variants:
/// each batch of a suite runs through all variants before the next (the trunk once for the
/// variants that share it, VariantSet), so memory holds one batch, never all variants' logits.
/// Suites are tokenized once (prepared before); variants made with `withSenseOverrides` share
/// the base sense cache. Each result depends only on (variant, suite).
public enum EvaluationRunner {
    public static func run(suites: [PreparedSuite], variants: [Variant],
                           progress: @Sendable (String) -> Void = { _ in }) throws -> [VariantResults] {
        let set = VariantSet(variants.map(\.model))
        var perVariant = [[SuiteResult]](repeating: [], count: variants.count)
        for s in suites {
            let start = Date()
            let results = try s.evaluate(set) { progress($0) }
            progress(String(format: "%@ done for %d variant(s) in %.2f s", s.suite.name, variants.count, Date().timeIntervalSince(start)))
            for (i, r) in results.enumerated() { perVariant[i].append(r) }
        }
        return variants.enumerated().map { i, v in
            VariantResults(variant: v.name, editText: v.editText, editSHA256: v.editSHA256, suites: perVariant[i])
        }
    }
}
