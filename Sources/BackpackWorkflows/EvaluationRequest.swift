import BackpackEvaluation
import BackpackIO
import BackpackModel
import BackpackResults
import BackpackTokenizer
import Foundation

/// One `backpack eval`: the suites prepared for the model, the base model and each edit file as
/// variants (EditVariants), evaluated and stored as one run of `out` (EvaluationRun). `reproduce
/// paper` makes its three runs with it too.
public struct EvaluationRequest {
    /// The model folder (opened after the output is checked).
    public var model: URL
    /// A tokenizer file or folder; nil: the model folder's own (Toolkit.tokenizer).
    public var tokenizer: String?
    /// Suite names (Evaluations/NAME.yaml) or suite files.
    public var suites: [String]
    /// Edit files; each is its own variant, a sweep file one per grid point.
    public var edits: [String]
    /// Looked up before the checkout's Data/ and the fetch cache (DataLocations).
    public var dataDirectory: URL?
    public var out: URL
    public var options: EvaluationRun.Options
    /// Stored with the run as the command that made it.
    public var commandLine: String

    public init(model: URL, tokenizer: String? = nil, suites: [String], edits: [String] = [], dataDirectory: URL? = nil,
                out: URL, options: EvaluationRun.Options = .init(), commandLine: String = Toolkit.commandLine()) {
        self.model = model; self.tokenizer = tokenizer; self.suites = suites; self.edits = edits
        self.dataDirectory = dataDirectory; self.out = out; self.options = options; self.commandLine = commandLine
    }

    /// How each edit is computed (VariantSet's plan), one line: word-level edits update base's
    /// logits by their low-rank difference; vocabulary-wide ones (`scope: vocabulary`, LEACE)
    /// change every token's senses, so they recompute the sense sums and logits over base's
    /// trunk; input-embedding edits run their own trunk.
    static func plan(_ variants: [Variant], base: LanguageModel) -> String {
        let set = VariantSet(variants.map(\.model), reference: base)
        var low: [String] = [], full: [String] = [], own: [String] = []
        for i in variants.indices.dropFirst() {
            if set.parent[i] != nil { low.append(variants[i].name) }
            else if set.leader[i] == set.leader[0] { full.append(variants[i].name) }
            else { own.append(variants[i].name) }
        }
        func names(_ list: [String]) -> String { list.count <= 3 ? list.joined(separator: ", ") : list.prefix(2).joined(separator: ", ") + " and \(list.count - 2) more" }
        var parts = ["\(low.count) word-level edit(s) update base's logits by a low-rank difference where every row is scored" + (low.isEmpty ? "" : " (\(names(low)))")]
        if !full.isEmpty { parts.append("\(full.count) vocabulary-wide edit(s) change every token's senses and recompute sense sums and logits over base's trunk (\(names(full)))") }
        if !own.isEmpty { parts.append("\(own.count) input-embedding edit(s) run their own full pass (\(names(own)))") }
        return "plan: " + parts.joined(separator: "; ")
    }

    /// Checks the output before any input is read, prepares every suite and variant (so that a
    /// bad suite or edit file fails before any model work), then runs. `stored(n)` is called after
    /// the n-th stored result.
    public func run(startedAt: Date = Date(), stored: (Int) -> Void = { _ in },
                    progress: @Sendable (String) -> Void = { _ in }) throws -> EvaluationRun.Outcome {
        if options.store { try ResultsFile.checkOutput(out) }
        let model = try ModelDirectory(self.model)
        try AtomicOutput.checkNotInput(out, inputs: [model.url])
        let base = try model.load()
        let tokenizer = try Toolkit.tokenizer(for: model, path: self.tokenizer)
        let evaluations = Toolkit.evaluationsDirectory()
        let locations = DataLocations(dataDirectory: dataDirectory, repositoryData: evaluations?.deletingLastPathComponent().appendingPathComponent("Data"))
        var prepared: [PreparedSuite] = []
        for name in suites {
            let s = try Suite.resolve(name, evaluationsDirectory: evaluations)
            if prepared.contains(where: { $0.suite.name == s.name }) {
                throw EvaluationRunError(description: "suite '\(s.name)' given twice (\(s.file.path))")
            }
            let p = try s.prepare(tokenizer: tokenizer, config: base.config, locations: locations)
            progress("prepared \(s.name) v\(s.version): \(p.itemCount) items")
            prepared.append(p)
        }
        let variants = try EditVariants.withBase(base, edits: edits, tokenizer: tokenizer)
        if variants.count > 1 { progress(Self.plan(variants, base: base)) }
        let modelSHA256 = try FileDigest.combined(model.weightFiles)
        let provenance = RunProvenance(toolVersion: Toolkit.version, gitCommit: Toolkit.gitCommit(), modelPath: model.url.path,
                                       modelSHA256: modelSHA256)
        let evaluation = try EvaluationRun(suites: prepared, variants: variants, modelSHA256: modelSHA256, provenance: provenance,
                                           commandLine: commandLine, out: out, options: options)
        return try evaluation.run(startedAt: startedAt, stored: stored, progress: progress)
    }
}
