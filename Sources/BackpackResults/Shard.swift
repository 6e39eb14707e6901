import Foundation

// Splitting one run over machines (`backpack eval --shard K/N`, `backpack merge`).
//
// The unit of work is a (variant, suite) pair: a suite's results aggregate over all its items
// (means, correlations, rolling windows), so its items are never split. Units are dealt
// round-robin in the order the runner computes them (suite-major: every variant of the first
// suite, then of the second, ...): unit u goes to shard (u mod N) + 1. Each shard therefore gets
// every suite with about V/N of its V variants, which it evaluates together (the trunk once per
// batch for the variants that share it), and the shards' work is even however much the suites'
// costs differ (1508 CrowS-Pairs pairs against a few dozen pronoun prompts). Contiguous runs of
// the same order would share the trunk among more variants but give one shard all of an
// expensive suite. The deal depends only on the plan's variant and suite names and their order.

/// One share of a run: shard `index` (1...count) of `count`.
public struct RunShard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        try RunShard.check(index: index, count: count)
        self.index = index; self.count = count
    }

    /// Parses `K/N` (whole numbers, 1 <= K <= N).
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0].trimmingCharacters(in: .whitespaces)),
              let n = Int(parts[1].trimmingCharacters(in: .whitespaces)) else {
            throw ShardError(description: "--shard \(text): expected K/N with whole numbers 1 <= K <= N, e.g. 3/8")
        }
        do { try RunShard.check(index: k, count: n) } catch let e as ShardError {
            throw ShardError(description: "--shard \(text): " + e.description)
        }
        self.index = k; self.count = n
    }

    private static func check(index: Int, count: Int) throws {
        guard count >= 1 else { throw ShardError(description: "the shard count must be at least 1") }
        guard (1...count).contains(index) else {
            throw ShardError(description: "shards are numbered 1 to \(count)"
                + (index == 0 ? " (a 0-based index such as Kubernetes' JOB_COMPLETION_INDEX needs + 1: $((JOB_COMPLETION_INDEX + 1))/\(count))" : ""))
        }
    }

    public var description: String { "\(index)/\(count)" }

    /// The (variant, suite) units of a plan in the runner's order: suite-major.
    public static func units(variants: [String], suites: [String]) -> [(variant: String, suite: String)] {
        suites.flatMap { s in variants.map { (variant: $0, suite: s) } }
    }

    /// The shard (1...count) that computes each unit, in `units` order.
    public static func owners(variants: [String], suites: [String], count: Int) -> [Int] {
        units(variants: variants, suites: suites).indices.map { $0 % count + 1 }
    }

    /// This shard's units, as `UnfinishedRun.key`s.
    public func share(variants: [String], suites: [String]) -> Set<String> {
        let all = RunShard.units(variants: variants, suites: suites)
        let owners = RunShard.owners(variants: variants, suites: suites, count: count)
        return Set(zip(all, owners).filter { $0.1 == index }.map { UnfinishedRun.key($0.0.variant, $0.0.suite) })
    }

    /// Stores `shard_index` and `shard_count` on a run group.
    func write(to run: H5Group) throws {
        try run.setAttribute(ResultsKeys.shardIndex, index)
        try run.setAttribute(ResultsKeys.shardCount, count)
    }

    /// The shard a run group computes, nil for a run that is not a shard.
    public init?(reading run: H5Group) throws {
        guard run.hasAttribute(ResultsKeys.shardIndex) || run.hasAttribute(ResultsKeys.shardCount) else { return nil }
        let index = try run.intAttribute(ResultsKeys.shardIndex), count = try run.intAttribute(ResultsKeys.shardCount)
        do { try RunShard.check(index: index, count: count) } catch let e as ShardError {
            throw ResultsError(.invalidArgument, file: run.filePath, object: run.path, operation: "read shard",
                               detail: "\(ResultsKeys.shardIndex) \(index), \(ResultsKeys.shardCount) \(count): \(e.description)")
        }
        self.index = index; self.count = count
    }
}

extension RunPlan {
    /// Variant and suite names of a stored plan (`lines`), in order. A name may contain spaces:
    /// the fields after it (edit digest; version and data digest) never do.
    public static func names(fromStored lines: [String]) -> (variants: [String], suites: [String]) {
        func name(_ line: String, prefix: String, trailing: Int) -> String? {
            guard line.hasPrefix(prefix) else { return nil }
            var fields = line.dropFirst(prefix.count).split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count > trailing else { return nil }
            fields.removeLast(trailing)
            return fields.joined(separator: " ")
        }
        return (lines.compactMap { name($0, prefix: "variant ", trailing: 1) },
                lines.compactMap { name($0, prefix: "suite ", trailing: 2) })
    }

    /// Variant and suite names, in order.
    public var names: (variants: [String], suites: [String]) { (variants.map(\.name), suites.map(\.name)) }
}

/// A bad `--shard`, or shards that cannot be merged; says which file and what differs.
public struct ShardError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(description: String) { self.description = description }
}
