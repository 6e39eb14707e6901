import BackpackModel
import BackpackModelFolder
import BackpackTokenizer
import Foundation

/// A word's fitted scale (fit_scale): kept in the intervention's record and the edit manifest.
public struct FittedScale: Sendable, Codable, Equatable {
    public let token: Int
    public let word: String
    public let scale: Double
    /// Mean of max(p_a/p_b, p_b/p_a) on the fit prompts, before and after.
    public let biasBefore: Double
    public let biasAfter: Double
    /// bias + |1 - s| at s = 1 and at the fitted s.
    public let objectiveAtOne: Double
    public let objective: Double
    public let evaluations: Int
}

/// One sense's rank in a localization.
public struct LocalizedSense: Sendable, Codable, Equatable {
    public let sense: Int
    /// Mean over words of (E_a - E_b) . C(w)_l (contextual: of its attributed contribution at
    /// the word's position, averaged over the suite's prompts).
    public let mean: Double
    /// Mean over words of the absolute value of the same.
    public let meanAbsolute: Double
}

/// One sense's fitted concept eraser (erase), as `backpack edit` prints it and the manifest keeps it.
public struct ErasureFit: Sendable, Codable, Equatable, CustomStringConvertible {
    public let sense: Int
    public let method: ErasureMethod
    /// Dimensions erased (0: the pairs' labels are not linearly visible above svd_tol; x unchanged).
    public let rank: Int
    /// Vectors the eraser was fitted on.
    public let samples: Int
    public let singularValue: Double
    /// alpha when the covariance-trace constraint mixed the LEACE projection with the orthogonal one.
    public let traceMixing: Double?
    /// Share of the fit vectors' variance removed.
    public let varianceRemoved: Double

    init(sense: Int, eraser: ConceptEraser) {
        self.sense = sense; method = eraser.method; rank = eraser.rank; samples = eraser.samples
        singularValue = eraser.singularValue; traceMixing = eraser.traceMixing; varianceRemoved = eraser.varianceRemoved
    }

    public var description: String {
        "sense \(sense): \(method.rawValue) rank \(rank) on \(samples) vectors, " +
            String(format: "%.2f%%", 100 * varianceRemoved) + " of their variance removed" +
            (traceMixing.map { String(format: " (trace constraint: alpha %.4f)", $0) } ?? "")
    }
}

/// Where an intervention acts. The raw values are the edit manifest's `scope` field.
public enum EditScope: String, Sendable, Codable, Equatable {
    /// Sense overrides of the listed tokens (all k senses of each token stored).
    case words
    /// `scope: vocabulary`: folded into the sense network's last layer, so every token changes.
    case vocabulary
    /// `target: input_embedding`: rows of the token embedding E change and the output embedding
    /// is untied, so the trunk (contextualization) sees different inputs.
    case inputEmbedding = "input_embedding"
}

/// What one intervention did.
public struct InterventionRecord: Sendable, Codable {
    public let file: String
    public let index: Int
    public let name: String?
    public let operation: String
    public let scope: EditScope
    public let tokens: [Int]
    public let pieces: [String]
    public let skipped: [String]
    public let senses: [Int]
    public let fitted: [FittedScale]
    public let localization: [LocalizedSense]
    /// erase: the eraser fitted for each sense.
    public let erasure: [ErasureFit]
    public let summary: String
}

public struct EditOutcome: Sendable {
    /// The edited model: folded weights plus the word-level sense-override table.
    public let model: LanguageModel
    public let records: [InterventionRecord]
    public init(model: LanguageModel, records: [InterventionRecord]) { self.model = model; self.records = records }
}

public enum Editor {
    /// Resolves every intervention of the files, in order, against a model configuration and
    /// tokenizer, without computing anything from weights: the first problem is thrown as
    /// `file:line:column: message`.
    public static func plan(_ files: [EditFile], config: BackpackConfig, tokenizer: GPT2Tokenizer?) throws -> EditPlan {
        let resolver = Resolver(config: config, tokenizer: tokenizer)
        var steps: [EditPlan.Step] = []
        for file in files {
            for (i, iv) in file.interventions.enumerated() {
                steps.append(EditPlan.Step(try EditError.wrapping { try resolver.resolve(file, i, iv) }))
            }
        }
        return EditPlan(config: config, tokenizer: tokenizer, steps: steps)
    }

    /// Checks the files against the configuration and tokenizer (`plan`, with the plan discarded).
    public static func validate(_ files: [EditFile], config: BackpackConfig, tokenizer: GPT2Tokenizer?) throws {
        _ = try plan(files, config: config, tokenizer: tokenizer)
    }

    /// Plans the files against the model's configuration and applies the plan to it.
    public static func apply(_ files: [EditFile], to model: LanguageModel, tokenizer: GPT2Tokenizer?) throws -> EditOutcome {
        try plan(files, config: model.config, tokenizer: tokenizer).apply(to: model)
    }
}

/// Edit files resolved against one model configuration and tokenizer: every word is a token id,
/// every sense index is in range, every suite is loaded. Directions, localization and fitted
/// scales depend on the weights and are computed by `apply`.
public struct EditPlan: Sendable {
    /// One intervention, resolved.
    public struct Step: Sendable {
        let resolved: ResolvedIntervention
        public var file: URL { resolved.file.url }
        /// 0-based position in its file.
        public var index: Int { resolved.index }
        public var name: String? { resolved.intervention.name }
        /// The operation's key in the edit file (`scale`, `erase`, ...).
        public var operation: String { resolved.intervention.operation.name }
        public var scope: EditScope { resolved.scope }
        /// The tokens edited (empty for `scope: vocabulary`), in first-seen order.
        public var tokens: [Int] { resolved.tokens }
        init(_ resolved: ResolvedIntervention) { self.resolved = resolved }
    }

    public let config: BackpackConfig
    let tokenizer: GPT2Tokenizer?
    /// The interventions in the order they are applied (files in order, each file's in order).
    public let steps: [Step]

    /// True iff an intervention edits the input embedding (`target: input_embedding`).
    public var changesTrunk: Bool { steps.contains { $0.scope == .inputEmbedding } }

    /// True iff the edited model's trunk (the contextualization: token and position embeddings
    /// into the transformer, hence the sense weights alpha) is the base model's: word-level and
    /// vocabulary-wide sense edits change only sense vectors C(x), so a variant built from this
    /// plan can reuse the base model's trunk outputs. False when an intervention targets the
    /// input embedding, which changes the trunk's inputs (and unties the output embedding).
    public var sharesTrunkWithBase: Bool { !changesTrunk }

    /// Applies the interventions in order to `model`, which must have the configuration the plan
    /// was resolved against (same architecture, vocabulary, senses and width).
    public func apply(to model: LanguageModel) throws -> EditOutcome {
        let c = model.config
        guard c.architecture == config.architecture, c.vocabSize == config.vocabSize, c.senses == config.senses,
              c.nEmbd == config.nEmbd else {
            throw EditError(file: steps.first?.file.path ?? "edit plan",
                            "the edits were resolved for \(config.architecture.rawValue), vocab_size \(config.vocabSize), " +
                            "num_senses \(config.senses), n_embd \(config.nEmbd); expected a model of that shape, found " +
                            "\(c.architecture.rawValue), vocab_size \(c.vocabSize), num_senses \(c.senses), n_embd \(c.nEmbd)")
        }
        var state = EditState(model: model, tokenizer: tokenizer)
        var records: [InterventionRecord] = []
        for step in steps { records.append(try state.apply(step.resolved)) }
        return EditOutcome(model: state.model, records: records)
    }
}
