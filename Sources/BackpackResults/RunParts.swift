import BackpackIO
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// A run written suite by suite keeps each stored result in a part file (ResultPart.swift) until
// it finishes: `.<name>.parts/<run id>/` beside the results file. `finishRun` (and `foldParts`)
// adds them to the HDF5 file in one rewrite with the lock, copy and rename of `append`; until
// then readers of this module (`record`, `latestUnfinishedRun`, `backpack merge`) see the run's
// groups in the file plus its intact parts. LAYOUT.md, "Runs written suite by suite", says why.

extension ResultsFile {
    /// `.<name>.parts/` beside the results file: one folder per run that has unfolded parts.
    public static func partsDirectory(for url: URL) -> URL {
        let target = url.standardizedFileURL
        return target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).parts")
    }

    static func partsDirectory(for url: URL, run id: String) -> URL {
        partsDirectory(for: url).appendingPathComponent(id)
    }

    /// Stores one finished suite of a running run (begun with `beginRun`) as a part file beside
    /// the results file: written to a temporary name and renamed, so it is absent or complete.
    /// Costs the result's own size; the results file is not touched.
    public static func storePart(_ result: SuiteResult, variant: String, run id: String, for url: URL) throws {
        let target = url.standardizedFileURL
        try validateRunID(id, target.path)
        let dir = partsDirectory(for: target, run: id)
        let bytes = try ResultPart(run: id, variant: variant, result: result).encoded()
        let name = ResultPart.fileName(variant: variant, suite: result.suiteName)
        let temp = dir.appendingPathComponent(".tmp-\(randomHex(8))")
        func fail(_ operation: String, _ code: Int32) -> ResultsError {
            let message = String(cString: strerror(code))
            let detail = OutputCheck.spaceReason(message).map { "\($0); \(message)" } ?? message
            return ResultsError(.io, file: target.path, object: "/runs/\(id)/\(variant)/\(result.suiteName)",
                                operation: "\(operation) \(dir.path)/\(name)", detail: detail)
        }
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw ResultsError(.io, file: target.path, object: "/runs/\(id)", operation: "create \(dir.path)", detail: "\(error)")
        }
        let fd = open(temp.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw fail("create", errno) }
        var written = 0
        let code: Int32 = bytes.withUnsafeBytes { raw in
            while written < raw.count {
                let n = write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 { if errno == EINTR { continue }; return errno }
                written += n
            }
            return 0
        }
        close(fd)
        if code != 0 { unlink(temp.path); throw fail("write", code) }
        if rename(temp.path, dir.appendingPathComponent(name).path) != 0 {
            let e = errno; unlink(temp.path); throw fail("rename to", e)
        }
    }

    /// The intact parts of run `id` beside `url` (by file name), and the files that are not
    /// (damaged, or not parts of this run), each with why.
    public static func parts(of id: String, for url: URL) -> (parts: [ResultPart], files: [URL], damaged: [(URL, String)]) {
        let dir = partsDirectory(for: url.standardizedFileURL, run: id)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
            .filter { $0.hasPrefix("r-") && $0.hasSuffix(".part") }.sorted()
        var parts: [ResultPart] = [], files: [URL] = [], damaged: [(URL, String)] = []
        for name in names {
            let file = dir.appendingPathComponent(name)
            do {
                let part = try ResultPart.decode(Array(try Data(contentsOf: file)), file: file.path)
                guard part.run == id, name == ResultPart.fileName(variant: part.variant, suite: part.result.suiteName) else {
                    damaged.append((file, "holds run \(part.run), \(part.variant)/\(part.result.suiteName)")); continue
                }
                parts.append(part); files.append(file)
            } catch {
                damaged.append((file, "\(error)"))
            }
        }
        return (parts, files, damaged)
    }

    /// Adds run `id`'s parts to the results file in one rewrite (lock, copy, rename), suites in
    /// plan order, and marks the run complete with `finish` (its elapsed seconds); then removes
    /// the parts it added. A part whose group the file already has (a fold killed after its
    /// rename) is only removed. Damaged parts are removed too: `--resume` computes them again.
    public static func foldParts(_ id: String, in url: URL, finish elapsedSeconds: Double? = nil,
                                 annotate: RunAnnotation? = nil, lockTimeout: Double = defaultLockTimeout) throws {
        var folded: [URL] = []
        var damaged: [URL] = []
        try update(url, runID: id, lockTimeout: lockTimeout) { run in
            // Listed with the lock held: a part stored later is left for the next fold.
            let found = parts(of: id, for: url)
            damaged = found.damaged.map { $0.0 }
            let stored: [String] = run.hasAttribute(ResultsKeys.plan) ? try run.stringAttribute(ResultsKeys.plan).split(separator: "\n").map(String.init) : []
            let plan = RunPlan.names(fromStored: stored)
            func rank(_ p: ResultPart) -> (Int, Int, String, String) {
                (plan.suites.firstIndex(of: p.result.suiteName) ?? Int.max, plan.variants.firstIndex(of: p.variant) ?? Int.max,
                 p.result.suiteName, p.variant)
            }
            let ordered = zip(found.parts, found.files).sorted { rank($0.0) < rank($1.0) }
            for (part, file) in ordered {
                guard run.contains(part.variant) else {
                    throw ResultsError(.notFound, file: url.path, object: "/runs/\(id)/\(part.variant)", operation: "add result part \(file.path)",
                                       detail: "the run has no variant '\(part.variant)'")
                }
                let g = try run.group(part.variant)
                if !g.contains(part.result.suiteName) { try RunWriter.writeSuite(part.result, to: g) }
                folded.append(file)
            }
            // Attributes computed from the whole run (the paired tests against base), before it is complete.
            if let annotate {
                for a in annotate(try RunReader.read(run, id: id).variants) {
                    let g = try run.group(a.variant).group(a.suite)
                    for (name, value) in a.attributes {
                        switch value {
                        case .double(let d): try g.setAttribute(name, d)
                        case .int(let i): try g.setAttribute(name, i)
                        case .string(let t): try g.setAttribute(name, t)
                        }
                    }
                }
            }
            if let elapsedSeconds {
                try run.setAttribute(ResultsKeys.elapsedSeconds, elapsedSeconds)
                try run.setAttribute(ResultsKeys.status, "complete")
            }
        }
        for f in folded + damaged { unlink(f.path) }
        // A finished run's folder holds only what a killed writer left half-written (`.tmp-*`).
        let runDir = partsDirectory(for: url.standardizedFileURL, run: id)
        if elapsedSeconds != nil {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: runDir.path)) ?? [] where name.hasPrefix(".tmp-") {
                unlink(runDir.appendingPathComponent(name).path)
            }
        }
        // The run's folder (and `.<name>.parts/`) go when empty; another run's parts stay.
        if rmdir(runDir.path) == 0 { _ = rmdir(partsDirectory(for: url.standardizedFileURL).path) }
    }
}

/// Attributes a finishing run adds from all of its results: (variant, suite, attributes).
public typealias RunAnnotation = ([VariantResults]) -> [(variant: String, suite: String, attributes: [(name: String, value: ResultScalar)])]
