import Foundation

/// Which variants and headline metrics a report shows (`backpack report --variants GLOB
/// --metrics LIST`). Base is always kept: it is the reference of every Δ.
public struct ReportSelection: Sendable, Equatable {
    /// `suite.metric` or `metric` items; empty: every headline metric.
    public var metrics: [String]
    /// A shell glob on variant names (fnmatch; a name equal to the pattern also matches, so that
    /// `sweep[strength=0.5]` selects that point although `[...]` is a character class); nil: all.
    public var variants: String?
    public init(metrics: [String] = [], variants: String? = nil) { self.metrics = metrics; self.variants = variants }

    /// `--metrics` as given: a comma-separated list.
    public static func metricList(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    public struct Invalid: Error, CustomStringConvertible, Sendable { public var description: String }

    public func keepsVariant(_ name: String) -> Bool {
        guard let pattern = variants else { return true }
        return name == "base" || name == pattern || fnmatch(pattern, name, 0) == 0
    }

    /// The run's variants that are kept (base first when present); an error naming `--variants`
    /// when the glob matches no edited variant.
    public func variants(of record: RunRecord) throws -> [VariantResults] { try variants(of: record.variants, runID: record.id) }
    public func variants(of all: [VariantResults], runID: String) throws -> [VariantResults] {
        let kept = all.filter { keepsVariant($0.variant) }
        if let pattern = variants, !kept.contains(where: { $0.variant != "base" }) {
            throw Invalid(description: "--variants '\(pattern)': no edited variant of run \(runID) matches; its variants: "
                          + all.map(\.variant).joined(separator: ", "))
        }
        return kept
    }

    /// The (suite, metric) pairs to show, in the order of first appearance across the variants
    /// (a shard's base may lack suites), filtered by `metrics` in the order given. An item that
    /// names no headline metric is an error that lists the ones there are.
    public func columns(_ variants: [VariantResults]) throws -> [(suite: String, metric: String)] {
        var all: [(suite: String, metric: String)] = []
        for v in variants {
            for s in v.suites {
                for h in s.headline where s[h]?.doubleValue != nil && !all.contains(where: { $0 == (s.suiteName, h) }) {
                    all.append((s.suiteName, h))
                }
            }
        }
        guard !metrics.isEmpty else { return all }
        var out: [(suite: String, metric: String)] = []
        for item in metrics {
            var found = all.filter { "\($0.suite).\($0.metric)" == item }
            if found.isEmpty { found = all.filter { $0.metric == item } }
            if found.isEmpty {
                throw Invalid(description: "--metrics: '\(item)' is no headline metric of the run; expected suite.metric or metric, one of: "
                              + all.map { "\($0.suite).\($0.metric)" }.joined(separator: ", "))
            }
            for f in found where !out.contains(where: { $0 == f }) { out.append(f) }
        }
        return out
    }
}

extension VariantResults {
    func suite(_ name: String) -> SuiteResult? { suites.first { $0.suiteName == name } }
}
