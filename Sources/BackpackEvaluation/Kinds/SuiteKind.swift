import BackpackModel
import BackpackModelFolder
import BackpackResults
import BackpackTokenizer
import Foundation

/// One kind of evaluation suite (`kind:` in `Evaluations/NAME.yaml`): everything the toolkit knows
/// about it lives in the conforming type, so that adding a kind is one file plus one line in
/// `SuiteKinds.builtIn`, or, from another package, one call to `SuiteKinds.register`
/// (docs/EXTENDING.md). A value of the type is the decoded suite file (its kind-specific keys).
public protocol SuiteKind: Sendable {
    /// The `kind:` value in a suite file, e.g. `crows_pairs`.
    static var name: String { get }
    /// The keys the kind reads besides the common ones (`suite`, `version`, `kind`,
    /// `description`, `source`); any other key is refused as a typo.
    static var keys: Set<String> { get }
    /// What every result of the kind stores: headline metrics (with what each measures, its
    /// ideal value and which direction is better), their roles in the reports, per-item datasets.
    static var schema: ResultSchema { get }
    /// Decodes the kind's keys; errors name file:line:column and what was expected.
    init(_ document: SuiteDocument) throws
    /// Reads and tokenizes the suite's data once; the result evaluates any variant of the model.
    func prepare(_ suite: Suite, _ context: PreparationContext) throws -> PreparedSuite
    /// The bootstrap's independent unit and the headline metrics as a function of a multiset of
    /// units, from a stored result's per-item datasets alone (so that a result read back from a
    /// file is resampled as the one just computed); nil when the result lacks them.
    static func resamplingPlan(_ result: SuiteResult) -> ResamplingPlan?
}

extension SuiteKind {
    public static func resamplingPlan(_ result: SuiteResult) -> ResamplingPlan? { nil }
}

/// What preparing a suite needs besides the suite: the tokenizer, the model's shape and where
/// data files are looked up.
public struct PreparationContext: Sendable {
    public var tokenizer: GPT2Tokenizer
    public var model: BackpackConfig
    public var locations: DataLocations
    public init(tokenizer: GPT2Tokenizer, model: BackpackConfig, locations: DataLocations = .init()) {
        self.tokenizer = tokenizer; self.model = model; self.locations = locations
    }
}

/// The suite kinds a suite file may name: the built-in table and those registered at run time.
public enum SuiteKinds {
    /// The kinds that ship, one file each under Kinds/.
    public static let builtIn: [any SuiteKind.Type] = [
        PronounBiasConfig.self,
        PronounRetentionConfig.self,
        WinogenderConfig.self,
        CrowsPairsConfig.self,
        StereoSetConfig.self,
        PerplexityConfig.self,
        LambadaConfig.self,
        WikitextConfig.self,
        SentencePairsConfig.self,
        MultipleChoiceConfig.self,
    ]

    private static let registered = LockedKinds()

    /// Every kind a suite file may name: the built-in ones, then the registered ones in order.
    public static var all: [any SuiteKind.Type] { builtIn + registered.kinds }

    /// Adds a kind (a package that depends on this one calls it before loading suites). A name
    /// already taken is refused, so that a suite file always means one thing.
    public static func register(_ kind: any SuiteKind.Type) throws {
        try registered.add(kind, builtIn: builtIn)
    }

    /// The kind a suite file names.
    public static func named(_ name: String) -> (any SuiteKind.Type)? { all.first { $0.name == name } }

    /// The kind of a stored result: the `kind` it was stored with; for a result stored before kinds
    /// were recorded, the kind whose headline metrics it has.
    public static func of(_ result: SuiteResult) -> (any SuiteKind.Type)? {
        if let k = result.kind { return named(k) }
        return all.first { $0.schema.headline == result.headline }
    }
}

/// A kind name that is already taken.
public struct SuiteKindRegistrationError: Error, CustomStringConvertible, Sendable {
    public var name: String
    public var description: String { "suite kind '\(name)' is already registered; choose another name" }
}

/// The registered kinds behind a lock: registration may happen from any thread.
private final class LockedKinds: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [any SuiteKind.Type] = []
    var kinds: [any SuiteKind.Type] { lock.withLock { list } }
    func add(_ kind: any SuiteKind.Type, builtIn: [any SuiteKind.Type]) throws {
        try lock.withLock {
            if (builtIn + list).contains(where: { $0.name == kind.name }) { throw SuiteKindRegistrationError(name: kind.name) }
            list.append(kind)
        }
    }
}
