import BackpackIO
import BackpackModel
import BackpackModelFolder
import BackpackResults
import BackpackTokenizer
import Foundation

/// Where a suite's data files are looked up, in order: beside the suite file, under `--data-dir`
/// (a place added, never one taken away), the repository's `Data/` (beside the suite's
/// `Evaluations/` folder, or `repositoryData`), then the fetch cache (`backpack data fetch`,
/// `make corpus`).
public struct DataLocations: Sendable {
    public var dataDirectory: URL?
    public var cacheDirectory: URL
    /// The repository's `Data/` folder when the suite file is not inside a checkout (the CLI finds it
    /// next to the executable or the working directory).
    public var repositoryData: URL?
    public init(dataDirectory: URL? = nil, cacheDirectory: URL = DataLocations.defaultCache, repositoryData: URL? = nil) {
        self.dataDirectory = dataDirectory; self.cacheDirectory = cacheDirectory; self.repositoryData = repositoryData
    }
    public static var defaultCache: URL {
        if let env = ProcessInfo.processInfo.environment["BACKPACK_CACHE"], !env.isEmpty { return URL(fileURLWithPath: env) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/backpack-edit")
    }

    /// The places `dataFile` (a path relative to a data folder) may be, in the order they are tried.
    public func candidates(_ dataFile: String, suiteFile: URL) -> [URL] {
        let suiteFolder = suiteFile.deletingLastPathComponent()
        var out = [suiteFolder.appendingPathComponent(dataFile)]
        if let dir = dataDirectory {
            out += [dir.appendingPathComponent(dataFile), dir.appendingPathComponent((dataFile as NSString).lastPathComponent)]
        }
        out.append(suiteFolder.deletingLastPathComponent().appendingPathComponent("Data").appendingPathComponent(dataFile))
        if let data = repositoryData { out.append(data.appendingPathComponent(dataFile)) }
        out.append(cacheDirectory.appendingPathComponent(dataFile))
        var seen: Set<String> = []
        return out.map(\.standardizedFileURL).filter { seen.insert($0.path).inserted }
    }
}

/// An external data set a suite reads: a path under the data directory, its canonical URL and SHA-256.
public struct ExternalData: Sendable {
    public var dataFile: String        // relative to the data directory, e.g. crows_pairs/crows_pairs_anonymized.csv
    public var url: String?
    public var sha256: String?
    public init(dataFile: String, url: String? = nil, sha256: String? = nil) {
        self.dataFile = dataFile; self.url = url; self.sha256 = sha256
    }

    /// The file to read: the first of `locations.candidates` that exists.
    public func resolve(suiteFile: URL, locations: DataLocations) throws -> URL {
        let candidates = locations.candidates(dataFile, suiteFile: suiteFile)
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) { return found }
        throw SuiteError(file: suiteFile.path, reason: "data file '\(dataFile)' not found (looked at \(candidates.map(\.path).joined(separator: ", "))); put it beside the suite file, pass --data-dir, or run `backpack data fetch` (benchmarks) or `make corpus` (the demo corpus)")
    }

    /// The file and its SHA-256, which must equal the suite's pinned `sha256` when one is given.
    public func resolveVerified(suiteFile: URL, locations: DataLocations) throws -> (url: URL, sha256: String) {
        let url = try resolve(suiteFile: suiteFile, locations: locations)
        let digest = try FileDigest.combined([url])
        if let want = sha256, want != digest {
            throw SuiteError(file: url.path, reason: "SHA-256 \(digest) differs from the suite's pinned \(want) (\(suiteFile.lastPathComponent)); bump the suite version if the data changed")
        }
        return (url, digest)
    }
}

/// A data file a prepared suite read (besides the suite file), with its SHA-256: part of a run's
/// plan, so that `eval --resume` continues a run only on the same data.
public struct DataFileDigest: Sendable, Equatable {
    /// The file as the suite names it, the same wherever it was found: an external data set's
    /// `data_file`, else the file's name.
    public var name: String
    public var sha256: String
    public init(name: String, sha256: String) { self.name = name; self.sha256 = sha256 }

    /// Whether `url` is the suite's own file (in the plan's `suite` line already).
    static func isSuiteFile(_ url: URL, _ suite: Suite) -> Bool {
        url.standardizedFileURL.path == suite.file.standardizedFileURL.path
    }
}

/// What a suite kind stores for each variant: its headline metrics (also scalar datasets under
/// `aggregates/`) with their metadata, the roles of some of them in the reports, and the per-item
/// datasets every result has (LAYOUT.md, "Suite-specific contents", lists the rest).
public struct ResultSchema: Sendable, Equatable {
    public var metrics: [MetricInfo]
    public var roles: [MetricRole: String]
    public var datasets: [String]
    /// The headline metrics' names, in order.
    public var headline: [String] { metrics.map(\.name) }
    public init(metrics: [MetricInfo], roles: [MetricRole: String] = [:], datasets: [String]) {
        self.metrics = metrics; self.roles = roles; self.datasets = datasets
    }
}

/// Keys every suite file has, whatever its kind.
let commonSuiteKeys: Set<String> = ["suite", "version", "kind", "description", "source"]
/// Keys of a suite that reads one external data file (ExternalData).
let externalDataKeys: Set<String> = ["data_file", "url", "sha256"]

/// A suite as declared in `Evaluations/NAME.yaml`.
public struct Suite: Sendable {
    public var name: String
    public var version: String
    /// The kind's type (its name, keys, schema and bootstrap plan).
    public var kind: any SuiteKind.Type
    public var description: String
    public var source: String
    public var file: URL
    /// The kind's keys, decoded.
    public var config: any SuiteKind
    /// The YAML `kind:` value (e.g. `crows_pairs`).
    public var kindName: String { kind.name }

    public static func load(_ url: URL) throws -> Suite {
        try SuiteError.wrapping { try read(url) }
    }

    static func read(_ url: URL) throws -> Suite {
        let doc = try SuiteDocument(url: url)
        let kindText = try doc.string("kind")
        guard let kind = SuiteKinds.named(kindText) else {
            throw doc.error(doc.node("kind"), "unknown kind '\(kindText)' (valid kinds: \(SuiteKinds.all.map { $0.name }.joined(separator: ", ")))")
        }
        try doc.checkKeys(allowed: commonSuiteKeys.union(kind.keys))
        let name = try doc.string("suite")
        if name.isEmpty || name.contains("/") { throw doc.error(doc.node("suite"), "suite name must be non-empty and contain no '/'") }
        let version = try doc.string("version")
        let config = try kind.init(doc)
        return Suite(name: name, version: version, kind: kind, description: try doc.optionalString("description") ?? "",
                     source: try doc.optionalString("source") ?? "", file: url, config: config)
    }

    /// A suite by name (`Evaluations/NAME.yaml` under `evaluationsDirectory`) or by path to a YAML file.
    public static func resolve(_ nameOrFile: String, evaluationsDirectory: URL?) throws -> Suite {
        let fm = FileManager.default
        if nameOrFile.hasSuffix(".yaml") || nameOrFile.hasSuffix(".yml") || nameOrFile.contains("/") {
            let url = URL(fileURLWithPath: nameOrFile)
            guard fm.fileExists(atPath: url.path) else { throw SuiteError(file: nameOrFile, reason: "no such suite file") }
            return try load(url)
        }
        guard let dir = evaluationsDirectory else {
            throw SuiteError(file: nameOrFile, reason: "suite '\(nameOrFile)' not found: no Evaluations/ directory located; pass a path to the YAML file")
        }
        let url = dir.appendingPathComponent(nameOrFile + ".yaml")
        guard fm.fileExists(atPath: url.path) else {
            let known = ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".yaml") }
                .map { String($0.dropLast(5)) }.sorted()
            throw SuiteError(file: url.path, reason: "no suite '\(nameOrFile)' (available: \(known.joined(separator: ", ")))")
        }
        return try load(url)
    }

    /// Tokenizes and reads data; the result evaluates any model variant.
    public func prepare(tokenizer: GPT2Tokenizer, config model: BackpackConfig, locations: DataLocations = .init()) throws -> PreparedSuite {
        try config.prepare(self, PreparationContext(tokenizer: tokenizer, model: model, locations: locations))
    }
}

extension ExternalData {
    init(_ doc: SuiteDocument) throws {
        dataFile = try doc.string("data_file")
        url = try doc.optionalString("url")
        sha256 = try doc.optionalString("sha256")?.lowercased()
        if let sha256, sha256.count != 64 || !sha256.allSatisfy(\.isHexDigit) {
            throw doc.error(doc.node("sha256"), "'sha256' must be 64 hex digits")
        }
    }
}

/// A suite with its data read and tokenized once; evaluates variants of the model.
public protocol PreparedSuite: Sendable {
    var suite: Suite { get }
    /// Number of forward-pass items (for progress).
    var itemCount: Int { get }
    /// SHA-256 of the suite's input data (stored as `data_sha256`).
    var dataSHA256: String { get }
    /// Every data file read besides the suite file, each with its SHA-256 (the run's plan).
    var dataFiles: [DataFileDigest] { get }
    /// One result per variant, in order, each equal (up to float32 rounding of the logits) to
    /// evaluating that variant alone: batch by batch, every variant runs before the next batch,
    /// sharing what the variants have in common (VariantSet).
    func evaluate(_ variants: VariantSet, progress: @Sendable (String) -> Void) throws -> [SuiteResult]
}

extension PreparedSuite {
    public func evaluate(_ models: [LanguageModel], progress: @Sendable (String) -> Void) throws -> [SuiteResult] {
        try evaluate(VariantSet(models), progress: progress)
    }

    /// One model alone.
    public func evaluate(_ model: LanguageModel, progress: @Sendable (String) -> Void) throws -> SuiteResult {
        try evaluate(VariantSet([model]), progress: progress)[0]
    }
}
