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

/// Evaluates every variant on every prepared suite. Suites are tokenized once (prepared before);
/// variants made with `withSenseOverrides` share the base sense cache. Each result depends only
/// on (variant, suite).
public enum EvaluationRunner {
    public static func run(suites: [PreparedSuite], variants: [Variant],
                           progress: @Sendable (String) -> Void = { _ in }) throws -> [VariantResults] {
        try variants.map { v in
            let results = try suites.map { s in
                let start = Date()
                let r = try s.evaluate(v.model) { progress("[\(v.name)] \($0)") }
                progress(String(format: "[%@] %@ done in %.2f s", v.name, s.suite.name, Date().timeIntervalSince(start)))
                return r
            }
            return VariantResults(variant: v.name, editText: v.editText, editSHA256: v.editSHA256, suites: results)
        }
    }
}
