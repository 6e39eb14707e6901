import BackpackIO
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Attribute and group names shared by writers and readers of results files (see LAYOUT.md).
public enum ResultsKeys {
    // Root group.
    public static let layoutVersion = "layout_version"
    public static let createdBy = "created_by"
    public static let created = "created"
    public static let runs = "runs"
    // /runs/<id>
    public static let toolVersion = "tool_version"
    public static let gitCommit = "git_commit"
    public static let modelPath = "model_path"
    public static let modelSHA256 = "model_sha256"
    public static let host = "host"
    public static let commandLine = "command_line"
    public static let elapsedSeconds = "elapsed_seconds"
    /// "running" while `backpack eval` adds suites one by one, "complete" at the end (absent in
    /// runs written whole, which are complete).
    public static let status = "status"
    /// What the run computes, one line each: `model <sha256>`, `variant <name> <edit sha256>`,
    /// `suite <name> <version> <suite file sha256>`, `data <suite> <file> <sha256>` per data file
    /// the suite reads; `--resume` continues only the same plan.
    public static let plan = "plan"
    /// A run computing one share of a plan (`backpack eval --shard K/N`): K (1...N) and N, ints.
    public static let shardIndex = "shard_index"
    public static let shardCount = "shard_count"
    /// A run made by `backpack merge`: one line per shard it was merged from (see LAYOUT.md).
    public static let mergedFrom = "merged_from"
    // /runs/<id>/<variant>
    public static let editText = "edit_text"
    public static let editSHA256 = "edit_sha256"
    /// The edit file a variant comes from (its name, as the variant's stem); absent for `base`.
    public static let editFamily = "edit_family"
    /// A point of a sweep: its axes and their values as written, 1-D string arrays of one length.
    public static let gridAxes = "grid_axes"
    public static let gridValues = "grid_values"
    // /runs/<id>/<variant>/<suite>
    public static let suiteName = "suite_name"
    public static let suiteVersion = "suite_version"
    public static let dataSHA256 = "data_sha256"
    /// Comma-separated names of the headline aggregates.
    public static let headline = "headline"
    /// The roles of headline aggregates in the reports: `bias=NAME`, `cost=NAME`, comma-separated.
    public static let metricRoles = "metric_roles"
    /// The suite's kind (`kind:` of its file, e.g. `sentence_pairs`): which bootstrap plan and
    /// metric definitions apply to the stored datasets.
    public static let kind = "kind"
    /// Metadata of each headline aggregate `M`, beside it: `M` + suffix (MetricInfo).
    public static let descriptionSuffix = "_description"
    public static let unitSuffix = "_unit"
    public static let idealSuffix = "_ideal"
    public static let betterSuffix = "_better"
    /// Subgroup with the headline aggregates as scalar datasets.
    public static let aggregates = "aggregates"
    /// Bootstrap (eval --bootstrap): `M` + suffix beside each headline aggregate `M` (95 %
    /// percentile interval; for a variant other than base, the paired difference from base: its
    /// interval and two-sided p), and on the suite group the unit resampled, the number of
    /// resamples and the seed.
    public static let ciLowSuffix = "_ci_low"
    public static let ciHighSuffix = "_ci_high"
    public static let diffCILowSuffix = "_diff_ci_low"
    public static let diffCIHighSuffix = "_diff_ci_high"
    public static let diffPSuffix = "_diff_p"
    /// The family-wise corrections of `M_diff_p` over the run's edited variants, per (suite,
    /// metric): Holm's adjusted p and the Benjamini-Hochberg q; and which test made `M_diff_p`
    /// (`sign_flip_exact`, `sign_flip_monte_carlo` or `paired_bootstrap`), with the number of
    /// resamples or sign vectors it used (`M_test_resamples`).
    public static let diffPHolmSuffix = "_diff_p_holm"
    public static let diffQSuffix = "_diff_q"
    public static let testSuffix = "_test"
    public static let testResamplesSuffix = "_test_resamples"
    public static let ciUnit = "ci_unit"
    public static let ciResamples = "ci_resamples"
    public static let ciSeed = "ci_seed"
    /// The sense-by-position attribution of the pronoun suites (pronoun_bias, pronoun_retention;
    /// LAYOUT.md): k, the mean |noun part| and |context part| over prompts; per prompt the noun
    /// position's k contributions (P·k) and the context's total (P); per noun their means (N·k, N).
    public static let attributionSenses = "attribution_senses"
    public static let attributionNounMeanAbs = "attribution_noun_mean_abs"
    public static let attributionContextMeanAbs = "attribution_context_mean_abs"
    public static let attributionNounSenses = "attribution_noun_senses"
    public static let attributionContext = "attribution_context"
    public static let nounAttributionSenses = "noun_attribution_senses"
    public static let nounAttributionContext = "noun_attribution_context"
}

/// Provenance of a run, written as attributes of `/runs/<id>`.
public struct RunProvenance: Sendable, Equatable {
    public var toolVersion: String
    public var gitCommit: String
    public var modelPath: String
    public var modelSHA256: String
    public var host: String
    public var created: String

    public init(toolVersion: String, gitCommit: String, modelPath: String, modelSHA256: String,
                host: String = ProcessInfo.processInfo.hostName, created: String = ResultsFile.timestamp()) {
        self.toolVersion = toolVersion
        self.gitCommit = gitCommit
        self.modelPath = modelPath
        self.modelSHA256 = modelSHA256
        self.host = host
        self.created = created
    }

    /// Writes the provenance attributes onto a run group.
    public func write(to run: H5Group) throws {
        try run.setAttribute(ResultsKeys.toolVersion, toolVersion)
        try run.setAttribute(ResultsKeys.gitCommit, gitCommit)
        try run.setAttribute(ResultsKeys.modelPath, modelPath)
        try run.setAttribute(ResultsKeys.modelSHA256, modelSHA256)
        try run.setAttribute(ResultsKeys.host, host)
        try run.setAttribute(ResultsKeys.created, created)
    }

    /// Reads provenance back; missing attributes come back as "".
    public init(reading run: H5Group) throws {
        func get(_ key: String) throws -> String {
            run.hasAttribute(key) ? try run.stringAttribute(key) : ""
        }
        self.init(toolVersion: try get(ResultsKeys.toolVersion), gitCommit: try get(ResultsKeys.gitCommit),
                  modelPath: try get(ResultsKeys.modelPath), modelSHA256: try get(ResultsKeys.modelSHA256),
                  host: try get(ResultsKeys.host), created: try get(ResultsKeys.created))
    }
}

/// A dataset's name and description, as listed in a summary.
public struct DatasetEntry: Sendable, Equatable {
    public var name: String
    public var info: H5DatasetInfo
}

/// `/runs/<id>/<variant>/<suite>`: attributes (aggregates, provenance) and per-item datasets.
public struct SuiteSummary: Sendable, Equatable {
    public var name: String
    public var attributes: [String: H5Value]
    public var datasets: [DatasetEntry]
}

/// `/runs/<id>/<variant>`: the base model or one edit, with its suites.
public struct VariantSummary: Sendable, Equatable {
    public var name: String
    public var attributes: [String: H5Value]
    public var suites: [SuiteSummary]
}

/// `/runs/<id>`: one invocation, with provenance attributes and its variants.
public struct RunSummary: Sendable, Equatable {
    public var id: String
    public var attributes: [String: H5Value]
    public var variants: [VariantSummary]
}

/// The results file: one HDF5 file holding `/runs/<id>/<variant>/<suite>` (see LAYOUT.md).
///
/// Writing goes through `append`, which never modifies the target in place. Reading opens the file
/// read-only. Like the rest of this module, use from one thread at a time.
public struct ResultsFile {
    public static let layoutVersion = "1"
    public static let defaultCreatedBy = "backpack-edit"

    /// The open file (read-only).
    public let file: H5File
    public var url: URL { file.url }

    /// Opens a results file read-only and checks its `layout_version`.
    public init(opening url: URL) throws {
        let file = try H5File.open(url, writable: false)
        try ResultsFile.checkLayout(file.root)
        self.file = file
    }

    /// Run ids, oldest first (creation order).
    public func runs() throws -> [String] {
        guard file.root.contains(ResultsKeys.runs) else { return [] }
        return try file.root.group(ResultsKeys.runs).groupNames()
    }

    /// The group `/runs/<id>`.
    public func run(_ id: String) throws -> H5Group {
        try file.root.group(ResultsKeys.runs).group(id)
    }

    /// The group `/runs/<id>/<variant>/<suite>`, for reading its datasets.
    public func suite(run id: String, variant: String, suite: String) throws -> H5Group {
        try run(id).group(variant).group(suite)
    }

    /// Attributes and dataset descriptions of every run, variant and suite (no dataset values).
    public func summary() throws -> [RunSummary] {
        try runs().map { id in
            let run = try run(id)
            let variants = try run.groupNames().map { variantName in
                let variant = try run.group(variantName)
                let suites = try variant.groupNames().map { suiteName in
                    let suite = try variant.group(suiteName)
                    let datasets = try suite.datasetNames().map { DatasetEntry(name: $0, info: try suite.datasetInfo($0)) }
                    return SuiteSummary(name: suiteName, attributes: try suite.attributes(), datasets: datasets)
                }
                return VariantSummary(name: variantName, attributes: try variant.attributes(), suites: suites)
            }
            return RunSummary(id: id, attributes: try run.attributes(), variants: variants)
        }
    }

    /// Run ids in the file at `url`, oldest first.
    public static func runs(in url: URL) throws -> [String] {
        try ResultsFile(opening: url).runs()
    }

    /// Summary of the file at `url`.
    public static func summary(of url: URL) throws -> [RunSummary] {
        try ResultsFile(opening: url).summary()
    }

    /// Adds a run `/runs/<id>` and lets `body` fill it; returns the id.
    ///
    /// Crash-safe: the existing file (if any) is copied to `.<name>.tmp-<random>` beside it, the
    /// run is added to the copy, the copy is closed and fsynced, then renamed over the target. The
    /// target is therefore always either the old or the new complete file. If anything throws
    /// (including `body`), the temporary file is removed and the target is untouched.
    /// `body` must not keep the group (or anything opened from it) beyond the call.
    ///
    /// A new file gets root attributes `layout_version` ("1"), `created_by` and `created`; the run
    /// group gets `created` (the body may overwrite it). An existing id is refused.
    /// Concurrent appends from several processes are serialized by an exclusive flock on
    /// `.<name>.lock` beside the file, held around the whole copy-add-rename: every run lands.
    /// A writer that finds the lock taken says so once on stderr and gives up after
    /// `lockTimeout` seconds. Readers need no lock: they only ever see a renamed, complete file.
    @discardableResult
    public static func append(to url: URL, runID: String? = nil, createdBy: String = defaultCreatedBy,
                              lockTimeout: Double = defaultLockTimeout,
                              _ body: (H5Group) throws -> Void) throws -> String {
        let target = url.standardizedFileURL
        let display = target.path
        let id = runID ?? makeRunID()
        try validateRunID(id, display)
        try rewrite(target, createdBy: createdBy, lockTimeout: lockTimeout, operation: "append run '\(id)'") { root in
            let runs = root.contains(ResultsKeys.runs)
                ? try root.group(ResultsKeys.runs) : try root.createGroup(ResultsKeys.runs)
            if runs.contains(id) {
                throw ResultsError(.alreadyExists, file: display, object: "/runs/\(id)", operation: "append run")
            }
            let run = try runs.createGroup(id)
            try run.setAttribute(ResultsKeys.created, timestamp())
            try body(run)
        }
        return id
    }

    /// Changes the existing run `/runs/<id>` (an unfinished run gets its suites this way), with
    /// the same lock, copy and rename as `append`: the file is the previous or the new version.
    public static func update(_ url: URL, runID id: String, lockTimeout: Double = defaultLockTimeout,
                              _ body: (H5Group) throws -> Void) throws {
        let target = url.standardizedFileURL
        try rewrite(target, createdBy: defaultCreatedBy, lockTimeout: lockTimeout, operation: "update run '\(id)'", mustExist: true) { root in
            guard root.contains(ResultsKeys.runs), try root.group(ResultsKeys.runs).contains(id) else {
                throw ResultsError(.notFound, file: target.path, object: "/runs/\(id)", operation: "update run")
            }
            try body(try root.group(ResultsKeys.runs).group(id))
        }
    }

    /// Lock, copy the target to a temporary sibling (or create it), let `body` change the copy's
    /// root, close and fsync it, rename it over the target.
    private static func rewrite(_ target: URL, createdBy: String, lockTimeout: Double, operation: String, mustExist: Bool = false,
                                _ body: (H5Group) throws -> Void) throws {
        let display = target.path
        let lock = try FileLock.acquire(lockURL(for: target), for: display, timeout: lockTimeout)
        defer { lock.release() }

        let fm = FileManager.default
        let directory = target.deletingLastPathComponent()
        let temp = directory.appendingPathComponent(".\(target.lastPathComponent).tmp-\(randomHex(8))")
        var committed = false
        defer {
            if !committed { try? fm.removeItem(at: temp) }
        }

        let existed = fm.fileExists(atPath: target.path)
        if mustExist && !existed {
            throw ResultsError(.notFound, file: display, object: "/", operation: operation, detail: "the results file does not exist")
        }
        if existed {
            do {
                try fm.copyItem(at: target, to: temp)
            } catch {
                throw ResultsError(.io, file: display, object: "/", operation: "copy to \(temp.lastPathComponent)",
                                   detail: "\(error)")
            }
        }
        do {
            // All HDF5 handles are released when this call returns.
            try fill(temp: temp, display: display, existed: existed, createdBy: createdBy, body)
            try fsyncPath(temp, display: display, directory: false)
        } catch {
            // A full disk surfaces as an HDF5 write error deep in the stack: say it plainly.
            if let reason = OutputCheck.spaceReason("\(error)") {
                throw ResultsError(.io, file: display, object: "/", operation: operation, detail: "\(reason); \(error)")
            }
            throw error
        }
        if rename(temp.path, target.path) != 0 {
            let message = String(cString: strerror(errno))
            throw ResultsError(.io, file: display, object: "/", operation: "rename \(temp.lastPathComponent)",
                               detail: message)
        }
        committed = true
        try? fsyncPath(directory, display: display, directory: true)
    }

    private static func fill(temp: URL, display: String, existed: Bool, createdBy: String,
                             _ body: (H5Group) throws -> Void) throws {
        let file: H5File
        if existed {
            file = try H5File.open(temp, displayPath: display, writable: true)
            try checkLayout(file.root)
        } else {
            file = try H5File.create(temp, displayPath: display, overwrite: false)
            try file.root.setAttribute(ResultsKeys.layoutVersion, layoutVersion)
            try file.root.setAttribute(ResultsKeys.createdBy, createdBy)
            try file.root.setAttribute(ResultsKeys.created, timestamp())
        }
        try body(file.root)
        try file.close()
    }

    /// How long `append` waits for another writer by default (seconds).
    public static let defaultLockTimeout: Double = 600

    /// The lock file of a results file: `.<name>.lock` beside it.
    public static func lockURL(for url: URL) -> URL {
        let target = url.standardizedFileURL
        return target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).lock")
    }

    /// Checks, before any work, that a run can be appended to `url`: the output checks of
    /// `OutputCheck.file`, an existing file is a results file of this layout, and the lock file
    /// can be made (whether another writer holds it is found out, and waited for, at append).
    public static func checkOutput(_ url: URL) throws {
        try OutputCheck.file(url)
        let target = url.standardizedFileURL
        if FileManager.default.fileExists(atPath: target.path) {
            do {
                let existing = try ResultsFile(opening: target)
                try existing.file.close()
            } catch {
                throw OutputError(file: target.path, reason: "exists and is not a backpack results file (HDF5 with layout_version \(layoutVersion)); it is left alone, choose another --out: \(error)")
            }
        }
        let lock = lockURL(for: target)
        let fd = open(lock.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw OutputError(file: target.path, reason: "cannot create the lock file \(lock.path): \(String(cString: strerror(errno)))")
        }
        close(fd)
    }

    static func checkLayout(_ root: H5Group) throws {
        guard root.hasAttribute(ResultsKeys.layoutVersion) else {
            throw ResultsError(.unsupportedLayout, file: root.filePath, object: "/", operation: "open results file",
                               detail: "no layout_version attribute: not a backpack results file")
        }
        let version = try root.stringAttribute(ResultsKeys.layoutVersion)
        guard version == layoutVersion else {
            throw ResultsError(.unsupportedLayout, file: root.filePath, object: "/", operation: "open results file",
                               detail: "layout_version \(version), this tool reads \(layoutVersion)")
        }
    }

    static func validateRunID(_ id: String, _ display: String) throws {
        let bad = id.isEmpty || id == "." || id == ".." || id.contains("/") || id.contains("\0")
        if bad {
            throw ResultsError(.invalidArgument, file: display, object: "/runs/\(id)", operation: "append run",
                               detail: "run id must be non-empty, without '/' or NUL")
        }
    }

    /// A fresh run id: UTC time plus 6 random hex digits, e.g. `2026-11-26T19-45-03Z-3fa9c1`.
    public static func makeRunID(date: Date = Date()) -> String {
        let stamp = timestamp(date).replacingOccurrences(of: ":", with: "-")
        return "\(stamp)-\(randomHex(6))"
    }

    /// ISO 8601 UTC timestamp with seconds, e.g. `2026-11-26T19:45:03Z`.
    public static func timestamp(_ date: Date = Date()) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", c.year ?? 0, c.month ?? 0, c.day ?? 0,
                      c.hour ?? 0, c.minute ?? 0, c.second ?? 0)
    }

    static func randomHex(_ digits: Int) -> String {
        var s = ""
        var generator = SystemRandomNumberGenerator()
        while s.count < digits { s += String(UInt64.random(in: 0...UInt64.max, using: &generator), radix: 16) }
        return String(s.suffix(digits))
    }

    private static func fsyncPath(_ url: URL, display: String, directory: Bool) throws {
        let fd = open(url.path, directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY)
        guard fd >= 0 else {
            throw ResultsError(.io, file: display, object: "/", operation: "open \(url.lastPathComponent) for fsync",
                               detail: String(cString: strerror(errno)))
        }
        defer { _ = close(fd) }
        if fsync(fd) != 0 {
            throw ResultsError(.io, file: display, object: "/", operation: "fsync \(url.lastPathComponent)",
                               detail: String(cString: strerror(errno)))
        }
    }
}
