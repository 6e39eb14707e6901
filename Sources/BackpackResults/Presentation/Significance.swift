import Foundation

/// Which p-value a table's significance marks read (`backpack report --correction`, `--alpha`):
/// the Benjamini–Hochberg q (`M_diff_q`), the Holm-adjusted p (`M_diff_p_holm`), both over the
/// run's edited variants per (suite, metric), or the raw p of the paired test (`M_diff_p`).
public struct Significance: Sendable, Equatable {
    public enum Correction: String, Sendable, CaseIterable {
        case bh, holm, none
        /// The stored attribute suffix of the value it reads.
        public var suffix: String {
            switch self {
            case .bh: ResultsKeys.diffQSuffix
            case .holm: ResultsKeys.diffPHolmSuffix
            case .none: ResultsKeys.diffPSuffix
            }
        }
        /// What the value is called in a column header: `q`, `p_holm`, `p`.
        public var valueName: String {
            switch self { case .bh: "q"; case .holm: "p_holm"; case .none: "p" }
        }
        /// The correction's name as a legend says it.
        public var title: String {
            switch self {
            case .bh: "Benjamini-Hochberg"
            case .holm: "Holm"
            case .none: "no correction"
            }
        }
    }
    public var correction: Correction
    public var alpha: Double
    public static let defaultAlpha = 0.05
    public init(correction: Correction = .bh, alpha: Double = Significance.defaultAlpha) {
        self.correction = correction; self.alpha = alpha
    }

    /// The value the mark reads for headline metric `metric` of a variant's suite result (nil:
    /// not stored, e.g. base, or a file written before corrections were stored).
    public func value(_ s: SuiteResult, _ metric: String) -> Double? {
        s[metric + correction.suffix]?.doubleValue
    }
    /// Whether the difference from base is significant by the chosen correction.
    public func isSignificant(_ s: SuiteResult, _ metric: String) -> Bool {
        guard let v = value(s, metric), v.isFinite else { return false }
        return v < alpha
    }
    /// `*` when significant, "" otherwise.
    public func mark(_ s: SuiteResult, _ metric: String) -> String { isSignificant(s, metric) ? "*" : "" }

    /// One line that says what a mark means, e.g. `* q < 0.05 (Benjamini-Hochberg over each
    /// (suite, metric)'s edited variants of the run)`.
    public var legend: String {
        let a = Self.format(alpha)
        switch correction {
        case .none: return "* p < \(a) (paired test against base, no correction for multiple comparisons)"
        default: return "* \(correction.valueName) < \(a) (\(correction.title) over each (suite, metric)'s edited variants of the run)"
        }
    }
    static func format(_ x: Double) -> String {
        var s = String(format: "%.6g", x)
        if s.hasPrefix("0.") == false, s.contains("e") { s = "\(x)" }
        return s
    }
}
