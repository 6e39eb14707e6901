import BackpackIO
import BackpackModel
import Foundation

/// The JSON lines of one bench process (format: Tools/bench/compare.py's docstring): a meta line
/// describing the machine, then one line per measurement.
public struct BenchLines {
    public var meta: [String: Any]
    public var lines: [[String: Any]] = []

    public init() {
        meta = ["side": "swift", "name": "meta", "host": MachineProbe.name(), "started_unix": Date().timeIntervalSince1970,
                "blas": BLAS.backendDescription, "threads": BLAS.threads, "loadavg_start": MachineProbe.loadAverage(),
                "cpu": MachineProbe.cpuName(), "env": ProcessInfo.processInfo.environment.filter {
                    ["BACKPACK_BLAS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS"].contains($0.key) }]
    }

    public mutating func add(_ line: [String: Any]) { lines.append(["side": "swift"].merging(line) { a, _ in a }) }

    /// A timed measurement: "seconds" is the best sample.
    @discardableResult
    public mutating func measurement(_ name: String, tokens: Int, samples: [Double], warmup: Int,
                                     extra: [String: Any] = [:]) -> (best: Double, median: Double) {
        let sorted = samples.sorted()
        let best = sorted[0]
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        var line: [String: Any] = ["name": name, "tokens": tokens, "seconds": best, "median_seconds": median, "samples": samples,
                                   "warmup": warmup, "runs": samples.count, "stat": "best"]
        if best > 0 { line["tokens_per_s"] = Double(tokens) / best }
        add(line.merging(extra) { a, _ in a })
        return (best, median)
    }

    /// Meta line (with the load average at the end) first, then the measurements; written to a
    /// temporary file and renamed.
    public func write(to url: URL) throws {
        var m = meta
        m["loadavg_end"] = MachineProbe.loadAverage()
        m["finished_unix"] = Date().timeIntervalSince1970
        var text = ""
        for line in [m] + lines {
            let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
            text += String(decoding: data, as: UTF8.self) + "\n"
        }
        try AtomicOutput.file(url, data: Data(text.utf8))
    }
}

/// What the machine says about itself, for the meta line and the memory measurement.
public enum MachineProbe {
    /// The machine's name as Python's platform.node() gives it (uname's nodename), so that
    /// compare.py sees one host for both sides.
    public static func name() -> String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: &u.nodename) { raw in String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }

    public static func loadAverage() -> [Double] {
        var load = [Double](repeating: 0, count: 3)
        _ = getloadavg(&load, 3)
        return load
    }

    /// /proc/cpuinfo's model name (Linux), else "unknown".
    public static func cpuName() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        }
        return "unknown"
    }

    /// VmHWM from /proc/self/status (Linux), in bytes; 0 where it cannot be read.
    public static func peakRSSBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }
}
