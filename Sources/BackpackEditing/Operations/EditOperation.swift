import BackpackModel
import BackpackModelFolder
import BackpackPrompts
import BackpackTokenizer
import BackpackYAML
import Foundation

/// One kind of intervention (`scale`, `project_out`, ...): the key that names it in an edit
/// file, how its value is read, what it needs resolved against the tokenizer and the model's
/// configuration, and what it does to sense vectors. Each built-in operation is one file in
/// Operations/ and one line of `EditOperations.builtIn`; a package that depends on this one adds
/// its own with `EditOperations.register(_:)`. The edit-file reader, sweeps, validation and the
/// editor know operations only through this protocol (docs/EDITS.md, "Adding an operation").
public protocol EditOperation: Sendable {
    /// The intervention key that names the operation (`scale: 0`, `erase: {...}`).
    static var name: String { get }
    /// The keys of the operation's value when it is a mapping (`[direction, strength]`); empty
    /// when the value is a scalar (`scale: 0.5`).
    static var keys: [String] { get }
    /// The parameters that may be written `{sweep: [...]}`: keys from `keys`, or `name` for the
    /// value itself (`scale: {sweep: [0, 1]}`). The key is the sweep's axis.
    static var sweepable: [String] { get }
    /// Where the operation can act: `.words` (sense overrides of the edited tokens),
    /// `.vocabulary` (folded into the sense network: its map must not depend on the token) and
    /// `.inputEmbedding` (embedding rows: one map, no senses). Edit files are checked against it.
    static var scopes: Set<EditScope> { get }
    /// Why the operation lacks a scope, added to the refusal (fit_scale: "it fits one scale per word").
    static var scopeNote: String? { get }
    /// True when an intervention may leave out `words:`, `tokens:` and `scope:` to edit the
    /// operation's own words (fit_scale: its suite's nouns); see `ResolvedEditOperation.ownWords`.
    static var hasOwnWords: Bool { get }
    /// True when `senses: {localized: ...}` may rank senses over the operation's own two groups
    /// of words at `scope: vocabulary`, which has no words of its own (erase: its pairs' first
    /// and second words); see `ResolvedEditOperation.rankingGroups`.
    static var ranksSensesOverOwnWords: Bool { get }

    /// Reads the operation's value, the node under its key, checking all that needs no model.
    /// Errors are `EditError(reader.place(node), ...)` (or the reader's own `YAMLError`s), so
    /// they print as `file:line:column: message` naming the field and the expected form.
    init(yaml node: YAMLNode, reader: YAMLReader) throws

    /// Resolves the words, directions and files the operation names against the tokenizer and
    /// configuration, before anything is computed (`Editor.plan`).
    func resolve(_ context: inout OperationResolution) throws -> any ResolvedEditOperation
}

/// An operation with every name resolved: what it does to the model, computed when the plan is
/// applied, from the model as the earlier interventions left it.
public protocol ResolvedEditOperation: Sendable {
    /// The maps of the selected senses (and the record's extras). Errors without a place are
    /// reported at the intervention's.
    func effect(_ context: OperationApplication) throws -> OperationEffect
    /// The words edited when the intervention selects none (operations with `hasOwnWords`).
    func ownWords(at place: SourcePlace) throws -> [WordRef]
    /// Two groups of tokens (first, second) over which localized senses are ranked at
    /// `scope: vocabulary` (operations with `ranksSensesOverOwnWords`); nil otherwise.
    var rankingGroups: (first: [Int], second: [Int])? { get }
}

extension EditOperation {
    public static var sweepable: [String] { [] }
    public static var scopeNote: String? { nil }
    public static var hasOwnWords: Bool { false }
    public static var ranksSensesOverOwnWords: Bool { false }
    /// The operation's key, for records and messages.
    public var name: String { Self.name }
}

extension EditOperation where Self: ResolvedEditOperation {
    /// An operation that names no words or files is its own resolution.
    public func resolve(_ context: inout OperationResolution) throws -> any ResolvedEditOperation { self }
}

extension ResolvedEditOperation {
    public func ownWords(at place: SourcePlace) throws -> [WordRef] {
        throw EditError(place, "intervention: expected `words:`, `tokens:` or `scope: vocabulary`")
    }
    public var rankingGroups: (first: [Int], second: [Int])? { nil }
}

/// What an operation may use while it is resolved: the tokenizer, the configuration, and the
/// resolution of the shared vocabulary (words, directions, pronoun suites), with the same errors
/// as everywhere else in the file.
public struct OperationResolution {
    let resolver: Resolver
    /// The edit file; the paths it names are relative to it.
    public let file: URL
    /// The intervention's place, for errors about it as a whole.
    public let place: SourcePlace
    /// Words left out, recorded as the intervention's `skipped`. nil while a pair word of several
    /// tokens is an error; [] under `pieces: skip`, where such pairs are left out instead.
    var dropped: [String]?

    public var config: BackpackConfig { resolver.config }
    public var tokenizer: GPT2Tokenizer? { resolver.tokenizer }

    /// A single-token word (" " + word) or a raw `{token: ID}`, checked against the vocabulary.
    public func token(_ ref: WordRef, _ what: String) throws -> Int { try resolver.single(ref, what) }

    /// A direction with its words resolved (pairs of several tokens left out under `pieces: skip`).
    public mutating func direction(_ d: Direction) throws -> ResolvedDirection {
        try resolver.direction(d, base: file, dropped: &dropped)
    }

    /// Records words the operation leaves out (listed in the intervention's record).
    public mutating func leaveOut(_ descriptions: [String]) { dropped = (dropped ?? []) + descriptions }

    /// A pronoun suite named by a path relative to the edit file; `what` names it in errors.
    public func suite(_ path: String, at place: SourcePlace, what: String) throws -> PronounSuite {
        try resolver.suite(path, base: file, place: place, what: what)
    }
}

/// What an operation sees when the plan is applied.
public struct OperationApplication {
    /// The model as the earlier interventions left it.
    public let model: LanguageModel
    public let tokenizer: GPT2Tokenizer?
    public let scope: EditScope
    /// The edited tokens (empty at `scope: vocabulary`), in first-seen order.
    public let tokens: [Int]
    /// The selected senses (after localization), in order.
    public let senses: [Int]
    /// The intervention's place.
    public let place: SourcePlace
    let labels: [Int: String]

    /// How the edit file wrote a token (its spelling), else its piece.
    public func label(_ id: Int) -> String {
        labels[id] ?? tokenizer?.displayPiece(id).map { "'\($0)'" } ?? "#\(id)"
    }
}

/// The maps an operation applies, and what the intervention's record keeps of it.
public struct OperationEffect {
    public enum Maps {
        /// One map for every selected sense of every token (and for an input embedding row).
        case uniform(SenseMap)
        /// A map per selected sense, the same for every token (erase: an eraser per sense).
        case perSense(SenseMaps)
        /// A map per token and sense (fit_scale: a scale per word); word-level edits only.
        case perToken([Int: SenseMaps])
    }
    public var maps: Maps
    /// Text appended to the record's summary.
    public var note: String
    /// fit_scale's fitted scales and erase's erasers, kept in the record and the manifest.
    var fitted: [FittedScale] = []
    var erasure: [ErasureFit] = []

    public init(_ maps: Maps, note: String = "") { self.maps = maps; self.note = note }
}
