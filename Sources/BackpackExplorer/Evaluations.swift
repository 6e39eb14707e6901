import BackpackEvaluation
import BackpackIO
import BackpackResults
import BackpackWorkflows
import Foundation

// The page's "Evaluate": suites run on the base model and the current intervention, as one
// `backpack eval` run (EvaluationRequest) appended to the explorer's results file, in the
// background, one job at a time. The intervention goes to the run as the edit file that "Save as
// edit file" would write (in a private temporary folder), so the stored run names its edit text
// and SHA-256 like any other.

public final class EvaluationJobs: @unchecked Sendable {
    /// A metric of the finished run: the base model's value and the intervention's, with the
    /// 95 % intervals, Δ, its paired test's p and the corrected p (`backpack report --format csv`'s columns).
    public struct Metric: Codable, Sendable {
        public let suite: String
        public let metric: String
        public let description: String
        public let unit: String
        public let better: String
        public let base: Double?
        public let baseCI: [Double]?
        public let edited: Double?
        public let editedCI: [Double]?
        public let diff: Double?
        public let diffCI: [Double]?
        public let p: Double?
        public let pHolm: Double?
        public let q: Double?
        public let test: String
        enum CodingKeys: String, CodingKey {
            case suite, metric, description, unit, better, base, edited, diff, p, q, test
            case baseCI = "base_ci", editedCI = "edited_ci", diffCI = "diff_ci", pHolm = "p_holm"
        }
    }

    public struct Status: Codable, Sendable {
        public let id: String
        /// queued, running, done or failed.
        public var state: String
        public let suites: [String]
        public let name: String
        public var progress: [String]
        public var metrics: [Metric]?
        /// The results file and the run id the evaluation was stored as.
        public var out: String?
        public var run: String?
        public var error: String?
        public var finished: Bool { state == "done" || state == "failed" }
    }

    public static let maxQueued = 4
    let explorer: Explorer
    let resamples: Int
    private var jobs: [String: Status] = [:]
    private var order: [String] = []
    private let lock = NSLock()
    private let queue = DispatchQueue(label: "backpack-explore.evaluations")

    public init(explorer: Explorer, resamples: Int = BootstrapSettings.defaultResamples) {
        self.explorer = explorer; self.resamples = resamples
    }

    /// The suites a request may name: those of the checkout's Evaluations/ folder, by name.
    public func availableSuites() -> [String] {
        guard let dir = Toolkit.evaluationsDirectory(), let items = try? Catalog.suites(in: dir) else { return [] }
        return items.filter { $0.detail != "invalid" }.map(\.name)
    }

    public func status(_ id: String) -> Status? { lock.withLock { jobs[id] } }

    /// Queues an evaluation; throws 429 when `maxQueued` are waiting or running.
    public func start(suites: [String], name: String, interventions: RequestInterventions) throws -> Status {
        let available = availableSuites()
        if available.isEmpty { throw ExplorerError(status: 422, field: nil, "no Evaluations/ folder was found beside this build of backpack, so there is nothing to evaluate") }
        if suites.isEmpty { throw ExplorerError(field: "suites", "expected at least one suite name: \(available.joined(separator: ", "))") }
        for (i, s) in suites.enumerated() where !available.contains(s) {
            throw ExplorerError(field: "suites[\(i)]", "unknown suite '\(s)'; expected one of \(available.joined(separator: ", "))")
        }
        if Set(suites).count != suites.count { throw ExplorerError(field: "suites", "a suite is named twice") }
        let yaml = interventions.editFile(name: name, description: "The intervention evaluated in backpack explore.")
        let status: Status = try lock.withLock {
            let active = jobs.values.filter { !$0.finished }.count
            if active >= Self.maxQueued {
                throw ExplorerError(status: 429, field: nil, "\(active) evaluations are queued or running; expected at most \(Self.maxQueued): wait for one to finish")
            }
            let id = String(UUID().uuidString.prefix(8)).lowercased()
            let s = Status(id: id, state: "queued", suites: suites, name: name, progress: [])
            jobs[id] = s; order.append(id)
            // Keep the last 64 jobs' statuses.
            while order.count > 64, let old = order.first, jobs[old]?.finished ?? true { order.removeFirst(); jobs[old] = nil }
            return s
        }
        queue.async { self.run(status.id, yaml: interventions.isEmpty ? nil : yaml) }
        return status
    }

    private func update(_ id: String, _ change: (inout Status) -> Void) {
        lock.withLock { if var s = jobs[id] { change(&s); jobs[id] = s } }
    }

    private func run(_ id: String, yaml: String?) {
        guard let job = status(id) else { return }
        update(id) { $0.state = "running" }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("backpack-explore-\(id)")
        defer { try? FileManager.default.removeItem(at: folder) }
        do {
            var edits: [String] = []
            if let yaml {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                let file = folder.appendingPathComponent(job.name + ".yaml")
                try AtomicOutput.file(file, data: Data(yaml.utf8))
                edits = [file.path]
            }
            var options = EvaluationRun.Options()
            options.bootstrap = BootstrapSettings(resamples: resamples)
            let request = EvaluationRequest(model: explorer.modelURL, tokenizer: explorer.tokenizerPath, suites: job.suites, edits: edits,
                                            out: explorer.resultsFile, options: options,
                                            commandLine: "backpack explore (evaluate \(job.suites.joined(separator: ",")) on \(job.name))")
            let outcome = try request.run(progress: { line in self.update(id) { $0.progress.append(line) } })
            guard let run = outcome.id else { throw ExplorerError(status: 500, field: nil, "the run was not stored") }
            let record = try ResultsFile(opening: explorer.resultsFile).record(run)
            let rows = try TidyExport.rows(record, unitCount: { ResamplingPlan.make($0)?.unitCount })
            let metrics = Self.metrics(rows)
            update(id) {
                $0.metrics = metrics; $0.out = self.explorer.resultsFile.path; $0.run = run
                $0.progress.append("stored run \(run) in \(self.explorer.resultsFile.path)")
                $0.state = "done"
            }
        } catch {
            update(id) { $0.error = "\(error)"; $0.state = "failed" }
        }
    }

    /// One row per (suite, metric): base beside the intervention (the run's second variant).
    static func metrics(_ rows: [TidyRow]) -> [Metric] {
        var out: [Metric] = []
        let bases = rows.filter { $0.variant == "base" }
        for b in bases {
            let e = rows.first { $0.variant != "base" && $0.suite == b.suite && $0.metric == b.metric }
            func ci(_ lo: Double?, _ hi: Double?) -> [Double]? { if let lo, let hi { return [lo, hi] }; return nil }
            out.append(Metric(suite: b.suite, metric: b.metric, description: b.description, unit: b.unit, better: b.better,
                              base: b.value, baseCI: ci(b.ciLow, b.ciHigh), edited: e?.value, editedCI: ci(e?.ciLow, e?.ciHigh),
                              diff: e?.diff, diffCI: ci(e?.diffCILow, e?.diffCIHigh), p: e?.p, pHolm: e?.pHolm, q: e?.q,
                              test: e?.test ?? ""))
        }
        return out
    }
}
