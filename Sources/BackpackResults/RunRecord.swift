import Foundation

// The one record type of an evaluation run, and its writer and reader: every name of the layout
// (LAYOUT.md) is used here and in `ResultsKeys`, nowhere else. `backpack eval` builds a
// `RunRecord` and appends it; `backpack report` reads one back.

/// A per-item array of a suite's results.
public enum ResultArray: Sendable, Equatable {
    case doubles([Double])
    case ints([Int64])
    case strings([String])
    public var count: Int {
        switch self { case .doubles(let v): v.count; case .ints(let v): v.count; case .strings(let v): v.count }
    }
}

/// An aggregate or descriptive value of a suite's results.
public enum ResultScalar: Sendable, Equatable {
    case double(Double), int(Int), string(String)
    public var doubleValue: Double? {
        switch self { case .double(let d): d; case .int(let i): Double(i); case .string: nil }
    }
}

/// What a metric means to the reports, declared by the suite's kind (`SuiteKind.schema`) and
/// stored with its results (`metric_roles`): the bias that the trade-off chart plots, or the cost
/// an edit pays (a perplexity); lower is better for both.
public enum MetricRole: String, Sendable, CaseIterable {
    case bias, cost
}

/// What a headline metric is, declared by its suite's kind and stored beside it (`M_description`,
/// `M_unit`, `M_ideal`, `M_better`), so that a number read from a file or a table can be compared
/// with a paper's without reading code.
public struct MetricInfo: Sendable, Equatable {
    /// Which values are better: larger, smaller, or those nearer `ideal` (a preference of 50 %).
    public enum Better: String, Sendable, CaseIterable {
        case higher, lower
        case closerToIdeal = "closer_to_ideal"
    }
    public var name: String
    /// What it measures, one line.
    public var description: String
    /// `ratio`, `%`, `nats`, `bits/byte`, `fraction`, ...
    public var unit: String
    /// The value of a model with no bias or no error (nil: none, e.g. a perplexity).
    public var ideal: Double?
    public var better: Better
    public init(_ name: String, _ description: String, unit: String, ideal: Double?, better: Better) {
        self.name = name; self.description = description; self.unit = unit; self.ideal = ideal; self.better = better
    }

    /// `a` is better than `b` by this metric's direction.
    public func isBetter(_ a: Double, than b: Double) -> Bool {
        switch better {
        case .higher: return a > b
        case .lower: return a < b
        case .closerToIdeal: return abs(a - (ideal ?? 0)) < abs(b - (ideal ?? 0))
        }
    }
}

/// One suite's results on one model variant: `/runs/<id>/<variant>/<suite>`.
public struct SuiteResult: Sendable {
    public var suiteName: String
    public var suiteVersion: String
    public var dataSHA256: String
    /// Aggregates and descriptive attributes, in order.
    public var attributes: [(name: String, value: ResultScalar)] = []
    /// Per-item datasets, in order.
    public var datasets: [(name: String, values: ResultArray)] = []
    /// Aggregates shown in summaries; also written as scalar datasets under `aggregates/`.
    public var headline: [String] = []
    /// The headline aggregates that play a role in the reports (which is the bias, which the cost).
    public var roles: [MetricRole: String] = [:]
    /// The suite's kind (nil: a result stored before kinds were recorded).
    public var kind: String?
    /// The headline metrics' metadata, declared by the kind (empty when not known).
    public var metrics: [MetricInfo] = []
    /// The metadata of headline metric `name`.
    public func metric(_ name: String) -> MetricInfo? { metrics.first { $0.name == name } }
    /// Datasets where NaN means "no value" (looked-up statistics), not a failed computation; not
    /// stored (the finite-number check of a run reads it).
    public var missingValuesAllowed: Set<String> = []

    public init(suiteName: String, suiteVersion: String, dataSHA256: String) {
        self.suiteName = suiteName; self.suiteVersion = suiteVersion; self.dataSHA256 = dataSHA256
    }
    public subscript(_ name: String) -> ResultScalar? { attributes.first { $0.name == name }?.value }
    public func dataset(_ name: String) -> ResultArray? { datasets.first { $0.name == name }?.values }
    /// The bootstrap interval of aggregate `name` (nil: none stored).
    public func interval(_ name: String) -> (low: Double, high: Double)? {
        guard let l = self[name + ResultsKeys.ciLowSuffix]?.doubleValue, let h = self[name + ResultsKeys.ciHighSuffix]?.doubleValue else { return nil }
        return (l, h)
    }
    /// The interval of the paired difference from base of aggregate `name`, and its p (nil: none stored).
    public func difference(_ name: String) -> (low: Double, high: Double, p: Double)? {
        guard let l = self[name + ResultsKeys.diffCILowSuffix]?.doubleValue, let h = self[name + ResultsKeys.diffCIHighSuffix]?.doubleValue,
              let p = self[name + ResultsKeys.diffPSuffix]?.doubleValue else { return nil }
        return (l, h, p)
    }
    /// The headline metrics with their values, in order.
    public var headlineValues: [(String, Double)] { headline.compactMap { h in self[h]?.doubleValue.map { (h, $0) } } }
    /// The value of the metric with `role`, if the suite has one.
    public func value(_ role: MetricRole) -> (metric: String, value: Double)? {
        roles[role].flatMap { m in self[m]?.doubleValue.map { (m, $0) } }
    }

    /// `metric_roles` as stored: `role=metric`, comma-separated, in role order.
    var rolesText: String {
        roles.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue)=\($0.value)" }.joined(separator: ",")
    }

    public mutating func set(_ name: String, _ v: Double, headline: Bool = false) {
        attributes.append((name, .double(v))); if headline { self.headline.append(name) }
    }
    public mutating func set(_ name: String, _ v: Int) { attributes.append((name, .int(v))) }
    public mutating func set(_ name: String, _ v: String) { attributes.append((name, .string(v))) }
    public mutating func set(_ name: String, _ v: ResultScalar) { attributes.append((name, v)) }
    public mutating func add(_ name: String, _ v: [Double]) { datasets.append((name, .doubles(v))) }
    public mutating func add(_ name: String, ints v: [Int]) { datasets.append((name, .ints(v.map(Int64.init)))) }
    public mutating func add(_ name: String, strings v: [String]) { datasets.append((name, .strings(v))) }
}

/// Where an edited variant comes from: its edit file (the family) and, for a point of a sweep
/// (`{sweep: [...]}` in the file), the grid axes and the values chosen, as written.
public struct GridPoint: Sendable, Equatable {
    public var family: String
    public var axes: [String]
    public var values: [String]
    public init(family: String, axes: [String] = [], values: [String] = []) {
        self.family = family; self.axes = axes; self.values = values
    }
    public var isSweep: Bool { !axes.isEmpty }
    public func value(_ axis: String) -> String? { axes.firstIndex(of: axis).map { values[$0] } }

    func write(to g: H5Group) throws {
        try g.setAttribute(ResultsKeys.editFamily, family)
        if isSweep {
            try g.setAttribute(ResultsKeys.gridAxes, axes)
            try g.setAttribute(ResultsKeys.gridValues, values)
        }
    }

    /// The grid point stored on a variant group; nil when it has none (base, or older files).
    init?(reading g: H5Group) throws {
        guard g.hasAttribute(ResultsKeys.editFamily) else { return nil }
        family = try g.stringAttribute(ResultsKeys.editFamily)
        func strings(_ key: String) throws -> [String] {
            guard g.hasAttribute(key) else { return [] }
            switch try g.attribute(key) {
            case .strings(let a): return a
            case .string(let s): return [s]
            default: throw ResultsError(.typeMismatch, file: g.filePath, object: g.path, operation: "read attribute '\(key)'", detail: "expected strings")
            }
        }
        axes = try strings(ResultsKeys.gridAxes)
        values = try strings(ResultsKeys.gridValues)
        guard axes.count == values.count else {
            throw ResultsError(.typeMismatch, file: g.filePath, object: g.path, operation: "read grid",
                               detail: "\(ResultsKeys.gridAxes) has \(axes.count) items, \(ResultsKeys.gridValues) \(values.count)")
        }
    }
}

/// `/runs/<id>/<variant>`: the base model or one edit, with its suites.
public struct VariantResults: Sendable {
    public var variant: String
    public var editText: String
    public var editSHA256: String
    /// The edit file and sweep coordinates; nil for `base` (and for runs stored before grids).
    public var grid: GridPoint?
    public var suites: [SuiteResult]
    public init(variant: String, editText: String, editSHA256: String, grid: GridPoint? = nil, suites: [SuiteResult]) {
        self.variant = variant; self.editText = editText; self.editSHA256 = editSHA256; self.grid = grid; self.suites = suites
    }
}

/// `/runs/<id>`: one invocation of `backpack eval`.
public struct RunRecord: Sendable {
    public var id: String
    public var provenance: RunProvenance
    public var commandLine: String
    public var elapsedSeconds: Double
    public var variants: [VariantResults]
    /// "running" (unfinished: killed, or still being written), "complete", or "" for a run
    /// written in one piece (`append`), which has no status.
    public var status: String = ""
    /// The shard of a run made with `eval --shard K/N`; nil otherwise.
    public var shard: RunShard?
    public init(id: String = "", provenance: RunProvenance, commandLine: String, elapsedSeconds: Double, variants: [VariantResults]) {
        self.id = id; self.provenance = provenance; self.commandLine = commandLine
        self.elapsedSeconds = elapsedSeconds; self.variants = variants
    }
}

extension ResultsFile {
    /// Appends the run (crash-safe, see `append(to:runID:_:)`); returns its id.
    @discardableResult
    public static func append(_ record: RunRecord, to url: URL, runID: String? = nil,
                              lockTimeout: Double = defaultLockTimeout) throws -> String {
        try append(to: url, runID: runID, lockTimeout: lockTimeout) { run in try RunWriter.write(record, to: run) }
    }

    /// The run `/runs/<id>` with every attribute and dataset; an unfinished run also with the
    /// results stored as parts beside the file (`storePart`), each after the variant's suites.
    public func record(_ id: String) throws -> RunRecord {
        var record = try RunReader.read(try run(id), id: id)
        guard record.status == "running" else { return record }
        let group = try run(id)
        let stored: [String] = group.hasAttribute(ResultsKeys.plan) ? try group.stringAttribute(ResultsKeys.plan).split(separator: "\n").map(String.init) : []
        let order = RunPlan.names(fromStored: stored).suites
        let parts = ResultsFile.parts(of: id, for: url).parts
            .sorted { (order.firstIndex(of: $0.result.suiteName) ?? Int.max) < (order.firstIndex(of: $1.result.suiteName) ?? Int.max) }
        for p in parts {
            guard let v = record.variants.firstIndex(where: { $0.variant == p.variant }),
                  !record.variants[v].suites.contains(where: { $0.suiteName == p.result.suiteName }) else { continue }
            record.variants[v].suites.append(p.result)
        }
        return record
    }
}

extension H5Group {
    /// A result's scalar as an attribute of its own type.
    public func setAttribute(_ name: String, _ value: ResultScalar) throws {
        switch value {
        case .double(let d): try setAttribute(name, d)
        case .int(let i): try setAttribute(name, i)
        case .string(let t): try setAttribute(name, t)
        }
    }
}

enum RunWriter {
    static func write(_ record: RunRecord, to run: H5Group) throws {
        try record.provenance.write(to: run)
        try run.setAttribute(ResultsKeys.commandLine, record.commandLine)
        try run.setAttribute(ResultsKeys.elapsedSeconds, record.elapsedSeconds)
        for v in record.variants {
            let g = try run.createGroup(v.variant)
            try g.setAttribute(ResultsKeys.editText, v.editText)
            try g.setAttribute(ResultsKeys.editSHA256, v.editSHA256)
            try v.grid?.write(to: g)
            for s in v.suites { try writeSuite(s, to: g) }
        }
    }

    static func writeSuite(_ s: SuiteResult, to g: H5Group) throws {
                let sg = try g.createGroup(s.suiteName)
                try sg.setAttribute(ResultsKeys.suiteName, s.suiteName)
                try sg.setAttribute(ResultsKeys.suiteVersion, s.suiteVersion)
                try sg.setAttribute(ResultsKeys.dataSHA256, s.dataSHA256)
                try sg.setAttribute(ResultsKeys.headline, s.headline.joined(separator: ","))
                if !s.roles.isEmpty { try sg.setAttribute(ResultsKeys.metricRoles, s.rolesText) }
                if let kind = s.kind { try sg.setAttribute(ResultsKeys.kind, kind) }
                for m in s.metrics {
                    try sg.setAttribute(m.name + ResultsKeys.descriptionSuffix, m.description)
                    try sg.setAttribute(m.name + ResultsKeys.unitSuffix, m.unit)
                    try sg.setAttribute(m.name + ResultsKeys.idealSuffix, m.ideal ?? .nan)
                    try sg.setAttribute(m.name + ResultsKeys.betterSuffix, m.better.rawValue)
                }
                for (name, value) in s.attributes { try sg.setAttribute(name, value) }
                for (name, values) in s.datasets {
                    switch values {
                    case .doubles(let d): try sg.write(name, doubles: d)
                    case .ints(let i): try sg.write(name, int64s: i)
                    // HDF5 has no empty variable-length string dataset h5py reads back cleanly: an empty list is left out.
                    case .strings(let t): if !t.isEmpty { try sg.write(name, strings: t) }
                    }
                }
                let scalars = try sg.createGroup(ResultsKeys.aggregates)
                for h in s.headline { if let d = s[h]?.doubleValue { try scalars.write(h, scalar: d) } }
    }
}

enum RunReader {
    /// `metric_roles` of a suite group. Groups written before roles were stored get the roles
    /// their kinds declare, recognised by the headline names those kinds used: `bias` is the
    /// bias; the first headline ending in `perplexity` is the cost.
    static func roles(_ sg: H5Group, headline: [String]) throws -> [MetricRole: String] {
        guard sg.hasAttribute(ResultsKeys.metricRoles) else {
            var legacy: [MetricRole: String] = [:]
            if headline.contains("bias") { legacy[.bias] = "bias" }
            if let cost = headline.first(where: { $0.hasSuffix("perplexity") }) { legacy[.cost] = cost }
            return legacy
        }
        var out: [MetricRole: String] = [:]
        for item in try sg.stringAttribute(ResultsKeys.metricRoles).split(separator: ",") {
            let pair = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2, let role = MetricRole(rawValue: pair[0]) else {
                throw ResultsError(.typeMismatch, file: sg.filePath, object: sg.path, operation: "read attribute '\(ResultsKeys.metricRoles)'",
                                   detail: "expected role=metric items (roles: \(MetricRole.allCases.map(\.rawValue).joined(separator: ", "))), found '\(item)'")
            }
            out[role] = pair[1]
        }
        return out
    }

    /// Attributes of a suite group that are layout, not results.
    static let suiteKeys: Set<String> = [ResultsKeys.suiteName, ResultsKeys.suiteVersion, ResultsKeys.dataSHA256, ResultsKeys.headline, ResultsKeys.kind,
                                         ResultsKeys.metricRoles]

    static func read(_ run: H5Group, id: String) throws -> RunRecord {
        func string(_ g: H5Group, _ key: String) throws -> String { g.hasAttribute(key) ? try g.stringAttribute(key) : "" }
        let elapsed = run.hasAttribute(ResultsKeys.elapsedSeconds) ? try run.doubleAttribute(ResultsKeys.elapsedSeconds) : .nan
        var variants: [VariantResults] = []
        for name in try run.groupNames() {
            let vg = try run.group(name)
            var suites: [SuiteResult] = []
            for sname in try vg.groupNames() {
                let sg = try vg.group(sname)
                var s = SuiteResult(suiteName: try string(sg, ResultsKeys.suiteName), suiteVersion: try string(sg, ResultsKeys.suiteVersion),
                                    dataSHA256: try string(sg, ResultsKeys.dataSHA256))
                if s.suiteName.isEmpty { s.suiteName = sname }
                s.headline = try string(sg, ResultsKeys.headline).split(separator: ",").map(String.init)
                s.roles = try roles(sg, headline: s.headline)
                if sg.hasAttribute(ResultsKeys.kind) { s.kind = try sg.stringAttribute(ResultsKeys.kind) }
                var metadata: Set<String> = []
                for h in s.headline where sg.hasAttribute(h + ResultsKeys.betterSuffix) {
                    let names = [ResultsKeys.descriptionSuffix, ResultsKeys.unitSuffix, ResultsKeys.idealSuffix, ResultsKeys.betterSuffix].map { h + $0 }
                    metadata.formUnion(names)
                    let text = try sg.stringAttribute(names[3])
                    guard let better = MetricInfo.Better(rawValue: text) else {
                        throw ResultsError(.typeMismatch, file: sg.filePath, object: sg.path, operation: "read attribute '\(names[3])'",
                                           detail: "expected one of \(MetricInfo.Better.allCases.map(\.rawValue).joined(separator: ", ")), found '\(text)'")
                    }
                    let ideal = try sg.doubleAttribute(names[2])
                    s.metrics.append(MetricInfo(h, try sg.stringAttribute(names[0]), unit: try sg.stringAttribute(names[1]),
                                                ideal: ideal.isNaN ? nil : ideal, better: better))
                }
                // Attributes come back in name order (HDF5 does not keep their creation order here).
                for key in try sg.attributeNames() where !suiteKeys.contains(key) && !metadata.contains(key) {
                    switch try sg.attribute(key) {
                    case .double(let d): s.attributes.append((key, .double(d)))
                    case .int(let i): s.attributes.append((key, .int(i)))
                    case .string(let t): s.attributes.append((key, .string(t)))
                    default: continue
                    }
                }
                for dname in try sg.datasetNames() {
                    switch try sg.datasetInfo(dname).element {
                    case .float: s.datasets.append((dname, .doubles(try sg.readDoubles(dname).values)))
                    case .integer: s.datasets.append((dname, .ints(try sg.readInt64s(dname).values)))
                    case .string: s.datasets.append((dname, .strings(try sg.readStrings(dname))))
                    default: continue
                    }
                }
                suites.append(s)
            }
            variants.append(VariantResults(variant: name, editText: try string(vg, ResultsKeys.editText),
                                           editSHA256: try string(vg, ResultsKeys.editSHA256), grid: try GridPoint(reading: vg),
                                           suites: suites))
        }
        var record = RunRecord(id: id, provenance: try RunProvenance(reading: run), commandLine: try string(run, ResultsKeys.commandLine),
                               elapsedSeconds: elapsed, variants: variants)
        record.status = try string(run, ResultsKeys.status)
        record.shard = try RunShard(reading: run)
        return record
    }
}

/// What one `backpack eval` computes: the model, the variants (with their edits) and the suites
/// (their files and every data file they read), each by SHA-256. Stored as `plan` on a run that is
/// written suite by suite, so that `--resume` continues only a run of the same plan.
public struct RunPlan: Sendable, Equatable {
    public var modelSHA256: String
    public var variants: [(name: String, editText: String, editSHA256: String)]
    public var suites: [(name: String, version: String, dataSHA256: String)]
    /// The grid point of each edited variant, by name (stored on its group; not part of `lines`:
    /// a point's edit text, and so its SHA-256, already names its coordinates).
    public var grids: [String: GridPoint]
    /// The data files each suite reads besides its suite file (by suite name): a name that is the
    /// same on every machine (the suite's `data_file`, or the file name) and the file's SHA-256.
    public var data: [String: [(file: String, sha256: String)]]
    public init(modelSHA256: String, variants: [(name: String, editText: String, editSHA256: String)],
                suites: [(name: String, version: String, dataSHA256: String)], grids: [String: GridPoint] = [:],
                data: [String: [(file: String, sha256: String)]] = [:]) {
        self.modelSHA256 = modelSHA256; self.variants = variants; self.suites = suites; self.grids = grids; self.data = data
    }
    public static func == (a: RunPlan, b: RunPlan) -> Bool { a.lines == b.lines }

    /// One line per item, as stored: `model`, each `variant`, each `suite` followed by a `data
    /// <suite> <file> <sha256>` line per data file it reads.
    public var lines: [String] {
        ["model \(modelSHA256)"] + variants.map { "variant \($0.name) \($0.editSHA256.isEmpty ? "-" : $0.editSHA256)" }
            + suites.flatMap { s in
                ["suite \(s.name) \(s.version) \(s.dataSHA256)"] + (data[s.name] ?? []).map { "data \(s.name) \($0.file) \($0.sha256)" }
            }
    }

    /// Why a stored plan is not this one ("" when they match): the lines only one side has.
    public func difference(fromStored stored: [String]) -> String {
        let mine = lines
        let onlyStored = stored.filter { !mine.contains($0) }, onlyMine = mine.filter { !stored.contains($0) }
        if onlyStored.isEmpty && onlyMine.isEmpty { return stored == mine ? "" : "the same items in another order" }
        return "the unfinished run has [\(onlyStored.joined(separator: "; "))], this invocation has [\(onlyMine.joined(separator: "; "))]"
    }
}

/// A run written suite by suite that has not finished.
public struct UnfinishedRun: Sendable {
    public var id: String
    public var plan: [String]
    /// (variant, suite) pairs already stored, in the file or as parts beside it.
    public var finished: Set<String>
    /// The share of the plan this run computes (`--shard`), nil for a whole run.
    public var shard: RunShard? = nil
    public static func key(_ variant: String, _ suite: String) -> String { variant + "/" + suite }
}

extension ResultsFile {
    /// Starts a run that gets its suites one by one (`storePart`) and is marked complete by
    /// `finishRun`: status "running", the plan, the provenance and one group per variant (a
    /// shard's run too: the merge takes the variants' attributes from any shard).
    @discardableResult
    public static func beginRun(_ plan: RunPlan, provenance: RunProvenance, commandLine: String, to url: URL,
                                runID: String? = nil, shard: RunShard? = nil,
                                lockTimeout: Double = defaultLockTimeout) throws -> String {
        try append(to: url, runID: runID, lockTimeout: lockTimeout) { run in
            try provenance.write(to: run)
            try run.setAttribute(ResultsKeys.commandLine, commandLine)
            try run.setAttribute(ResultsKeys.status, "running")
            try run.setAttribute(ResultsKeys.plan, plan.lines.joined(separator: "\n"))
            try shard?.write(to: run)
            for v in plan.variants {
                let g = try run.createGroup(v.name)
                try g.setAttribute(ResultsKeys.editText, v.editText)
                try g.setAttribute(ResultsKeys.editSHA256, v.editSHA256)
                try plan.grids[v.name]?.write(to: g)
            }
        }
    }

    /// Marks a running run complete, adding the results stored as parts (`storePart`) to the
    /// file in the same rewrite (`foldParts`).
    public static func finishRun(_ id: String, elapsedSeconds: Double, in url: URL,
                                 lockTimeout: Double = defaultLockTimeout) throws {
        try foldParts(id, in: url, finish: elapsedSeconds, lockTimeout: lockTimeout)
    }

    /// The latest run whose status is "running", if any.
    public func latestUnfinishedRun() throws -> UnfinishedRun? {
        for id in try runs().reversed() {
            let run = try run(id)
            guard run.hasAttribute(ResultsKeys.status), try run.stringAttribute(ResultsKeys.status) == "running" else { continue }
            let plan = run.hasAttribute(ResultsKeys.plan) ? try run.stringAttribute(ResultsKeys.plan).split(separator: "\n").map(String.init) : []
            var finished: Set<String> = []
            for v in try run.groupNames() {
                for s in try run.group(v).groupNames() { finished.insert(UnfinishedRun.key(v, s)) }
            }
            for p in ResultsFile.parts(of: id, for: url).parts { finished.insert(UnfinishedRun.key(p.variant, p.result.suiteName)) }
            return UnfinishedRun(id: id, plan: plan, finished: finished, shard: try RunShard(reading: run))
        }
        return nil
    }
}
