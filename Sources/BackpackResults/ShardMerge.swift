import Foundation

/// `backpack merge`: the runs of the shards of one plan (`backpack eval --shard K/N`) become one
/// run equal to what an unsharded `backpack eval` writes (LAYOUT.md, "Sharded runs").
public enum ShardMerge {
    /// One shard's run, as read from its results file.
    public struct Input {
        public let url: URL
        public let id: String
        public let shard: RunShard
        public let plan: [String]
        public let status: String
        public let provenance: RunProvenance
        public let commandLine: String
        public let elapsedSeconds: Double?
        /// (variant, suite) units stored, as `UnfinishedRun.key`s (in the file or, for an
        /// unfinished shard, as parts beside it).
        public let stored: Set<String>
        /// The results of an unfinished shard stored as parts, by `UnfinishedRun.key`.
        let parts: [String: SuiteResult]
        /// Attributes of each variant group.
        let variantAttributes: [String: [String: H5Value]]
    }

    /// What a merge wrote.
    public struct Outcome: Sendable {
        public let id: String
        public let shardCount: Int
        public let units: Int
        /// Units no input holds (only with `allowIncomplete`), as `variant/suite`, in plan order.
        public let missing: [String]
    }

    /// Reads the sharded run of `url`: the one with id `runID`, or the only sharded run in the file.
    public static func read(_ url: URL, runID: String?) throws -> Input {
        let file = try ResultsFile(opening: url)
        defer { try? file.file.close() }
        let path = url.path
        let id: String
        if let runID {
            guard try file.runs().contains(runID) else {
                throw ShardError(description: "\(path): no run \(runID) (runs: \(try file.runs().joined(separator: ", ")))")
            }
            id = runID
        } else {
            let sharded = try file.runs().filter { try RunShard(reading: try file.run($0)) != nil }
            guard sharded.count == 1 else {
                throw ShardError(description: sharded.isEmpty
                    ? "\(path): no sharded run (one written by `backpack eval --shard K/N`)"
                    : "\(path): \(sharded.count) sharded runs (\(sharded.joined(separator: ", "))); choose one with --run-id")
            }
            id = sharded[0]
        }
        let run = try file.run(id)
        guard let shard = try RunShard(reading: run) else {
            throw ShardError(description: "\(path): run \(id) is not a shard (no \(ResultsKeys.shardIndex) attribute)")
        }
        guard run.hasAttribute(ResultsKeys.plan) else {
            throw ShardError(description: "\(path): run \(id) has no \(ResultsKeys.plan) attribute")
        }
        func string(_ key: String) throws -> String { run.hasAttribute(key) ? try run.stringAttribute(key) : "" }
        var stored: Set<String> = []
        var variantAttributes: [String: [String: H5Value]] = [:]
        for v in try run.groupNames() {
            let g = try run.group(v)
            variantAttributes[v] = try g.attributes()
            for s in try g.groupNames() { stored.insert(UnfinishedRun.key(v, s)) }
        }
        var parts: [String: SuiteResult] = [:]
        if try string(ResultsKeys.status) == "running" {
            for p in ResultsFile.parts(of: id, for: url).parts where variantAttributes[p.variant] != nil {
                let key = UnfinishedRun.key(p.variant, p.result.suiteName)
                if stored.insert(key).inserted { parts[key] = p.result }
            }
        }
        return Input(url: url, id: id, shard: shard, plan: try string(ResultsKeys.plan).split(separator: "\n").map(String.init),
                     status: try string(ResultsKeys.status), provenance: try RunProvenance(reading: run),
                     commandLine: try string(ResultsKeys.commandLine),
                     elapsedSeconds: run.hasAttribute(ResultsKeys.elapsedSeconds) ? try run.doubleAttribute(ResultsKeys.elapsedSeconds) : nil,
                     stored: stored, parts: parts, variantAttributes: variantAttributes)
    }

    /// Checks that `inputs` are the shards of one plan and merges them into a new run of `out`
    /// (appended like `backpack eval`, with the lock, copy and rename of `ResultsFile.append`).
    /// Inputs are only read. Without `allowIncomplete`, every shard must be present and complete;
    /// with it, the missing units are left out and the run keeps status "running", so that
    /// `backpack eval --resume` (unsharded, same inputs) computes them.
    public static func merge(_ urls: [URL], to out: URL, runID: String? = nil, commandLine: String, host: String = ProcessInfo.processInfo.hostName,
                             allowIncomplete: Bool = false, lockTimeout: Double = ResultsFile.defaultLockTimeout) throws -> Outcome {
        guard !urls.isEmpty else { throw ShardError(description: "no shard files to merge") }
        let inputs = try urls.map { try read($0, runID: runID) }
        let first = inputs[0]
        let count = first.shard.count
        for b in inputs.dropFirst() {
            let a = first
            let (onlyA, onlyB) = (a.plan.filter { !b.plan.contains($0) }, b.plan.filter { !a.plan.contains($0) })
            if !onlyA.isEmpty || !onlyB.isEmpty || a.plan != b.plan {
                let what = onlyA.isEmpty && onlyB.isEmpty ? "the same items in another order"
                    : "\(a.url.path) has [\(onlyA.joined(separator: "; "))], \(b.url.path) has [\(onlyB.joined(separator: "; "))]"
                throw ShardError(description: "\(b.url.path): run \(b.id) is a shard of another plan than \(a.url.path) (run \(a.id)): \(what)")
            }
            if b.shard.count != count {
                throw ShardError(description: "\(b.url.path) is shard \(b.shard), but \(a.url.path) is shard \(a.shard) (the shards of one run have one N)")
            }
            if b.id != a.id {
                throw ShardError(description: "\(b.url.path): run id \(b.id), but \(a.url.path) has \(a.id) (shards of one run share its id)")
            }
            for (key, name) in [(ResultsKeys.toolVersion, \RunProvenance.toolVersion), (ResultsKeys.gitCommit, \RunProvenance.gitCommit)]
            where a.provenance[keyPath: name] != b.provenance[keyPath: name] {
                throw ShardError(description: "\(b.url.path): \(key) \(b.provenance[keyPath: name]), but \(a.url.path) has \(a.provenance[keyPath: name]) (shards must be computed by the same tool)")
            }
        }
        var byIndex: [Int: Input] = [:]
        for i in inputs {
            if let other = byIndex[i.shard.index] {
                throw ShardError(description: "\(i.url.path) and \(other.url.path) are both shard \(i.shard) (run \(i.id))")
            }
            byIndex[i.shard.index] = i
        }
        let (variants, suites) = RunPlan.names(fromStored: first.plan)
        let units = RunShard.units(variants: variants, suites: suites).map { UnfinishedRun.key($0.variant, $0.suite) }
        for i in inputs {
            let share = i.shard.share(variants: variants, suites: suites)
            if let foreign = i.stored.subtracting(share).sorted().first {
                throw ShardError(description: "\(i.url.path): shard \(i.shard) holds \(foreign), which is not in its share of the plan")
            }
            if Set(i.variantAttributes.keys) != Set(variants) {
                throw ShardError(description: "\(i.url.path): run \(i.id) has variant groups [\(i.variantAttributes.keys.sorted().joined(separator: ", "))], its plan [\(variants.joined(separator: ", "))]")
            }
            for v in variants where i.variantAttributes[v] != first.variantAttributes[v] {
                throw ShardError(description: "\(i.url.path): the attributes of variant \(v) differ from those in \(first.url.path)")
            }
            if !allowIncomplete && i.status != "complete" {
                throw ShardError(description: "\(i.url.path): shard \(i.shard) is unfinished (status \"\(i.status)\", \(i.stored.count) of \(share.count) results stored); "
                    + "continue it with the same `backpack eval ... --shard \(i.shard) --resume`, or merge what there is with --allow-incomplete")
            }
        }
        let absent = (1...count).filter { byIndex[$0] == nil }
        let holder = Dictionary(inputs.flatMap { i in i.stored.map { ($0, i) } }, uniquingKeysWith: { a, _ in a })
        let missing = units.filter { holder[$0] == nil }
        if !allowIncomplete && !absent.isEmpty {
            throw ShardError(description: "missing shard(s) \(absent.map { "\($0)/\(count)" }.joined(separator: ", ")) of run \(first.id) "
                + "(\(missing.count) of \(units.count) results: \(missing.prefix(8).joined(separator: ", "))\(missing.count > 8 ? ", ..." : "")); "
                + "give every shard's file, or merge what there is with --allow-incomplete")
        }
        guard missing.count < units.count else { throw ShardError(description: "the shards of run \(first.id) hold no results yet") }
        if FileManager.default.fileExists(atPath: out.path), try ResultsFile.runs(in: out).contains(first.id) {
            throw ShardError(description: "\(out.path) already has run \(first.id); merge into another --out")
        }

        let ordered = inputs.sorted { $0.shard.index < $1.shard.index }
        let opened = try Dictionary(uniqueKeysWithValues: ordered.map { ($0.shard.index, try ResultsFile(opening: $0.url)) })
        defer { for f in opened.values { try? f.file.close() } }
        let complete = missing.isEmpty
        let reference = ordered[0]
        let provenance = RunProvenance(toolVersion: reference.provenance.toolVersion, gitCommit: reference.provenance.gitCommit,
                                       modelPath: reference.provenance.modelPath, modelSHA256: reference.provenance.modelSHA256, host: host)
        let from = ordered.map { i in
            "shard \(i.shard) \(i.url.path) run \(i.id) (host \(i.provenance.host), created \(i.provenance.created), "
                + "elapsed \(i.elapsedSeconds.map { String(format: "%.3f", $0) } ?? "-") s, status \(i.status)): "
                + i.commandLine.replacingOccurrences(of: "\n", with: "\\n")
        }
        try ResultsFile.append(to: out, runID: first.id, lockTimeout: lockTimeout) { run in
            // The attributes of `beginRun` and `finishRun`, in the same form.
            try provenance.write(to: run)
            try run.setAttribute(ResultsKeys.commandLine, commandLine)
            try run.setAttribute(ResultsKeys.status, complete ? "complete" : "running")
            try run.setAttribute(ResultsKeys.plan, first.plan.joined(separator: "\n"))
            try run.setAttribute(ResultsKeys.mergedFrom, from.joined(separator: "\n"))
            // The shards' machine time (not wall time): what one unsharded run would have taken, roughly.
            if complete { try run.setAttribute(ResultsKeys.elapsedSeconds, ordered.compactMap(\.elapsedSeconds).reduce(0, +)) }
            // Variants in plan order, each with its suites in plan order: the order of an unsharded run.
            for v in variants {
                let g = try run.createGroup(v)
                for (key, value) in (first.variantAttributes[v] ?? [:]).sorted(by: { $0.key < $1.key }) {
                    try g.setAttribute(key, value: value)
                }
                for s in suites {
                    let key = UnfinishedRun.key(v, s)
                    guard let i = holder[key], let file = opened[i.shard.index] else { continue }
                    // A part is written by the writer that adds it to its own file when the shard finishes.
                    if let part = i.parts[key] { try RunWriter.writeSuite(part, to: g) } else { try g.copy(s, from: try file.run(i.id).group(v)) }
                }
            }
        }
        return Outcome(id: first.id, shardCount: count, units: units.count, missing: missing)
    }
}
