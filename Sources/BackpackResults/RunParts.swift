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
        // Creates the run's folder and marks this process as its owner (held until the run is
        // folded or the process ends), so that no other process reclaims it meanwhile.
        do {
            try PartOwner.claim(dir)
        } catch {
            throw ResultsError(.io, file: target.path, object: "/runs/\(id)", operation: "create \(dir.path)", detail: "\(error)")
        }
        let fd = open(temp.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw fail("create", errno) }
        var written = 0
        var code: Int32 = bytes.withUnsafeBytes { raw in
            while written < raw.count {
                let n = write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 { if errno == EINTR { continue }; return errno }
                written += n
            }
            return 0
        }
        // On the disk before it counts as stored (the caller counts it when this returns, and
        // `--resume` skips it): the file's data, then after the rename its folder's entry.
        if code == 0, fsync(fd) != 0 { code = errno }
        close(fd)
        if code != 0 { unlink(temp.path); throw fail(written == bytes.count ? "fsync" : "write", code) }
        if rename(temp.path, dir.appendingPathComponent(name).path) != 0 {
            let e = errno; unlink(temp.path); throw fail("rename to", e)
        }
        if let e = fsyncDirectory(dir) { throw fail("fsync the folder of", e) }
    }

    /// fsync of a folder (its entries: a renamed or created file's name); nil or errno.
    static func fsyncDirectory(_ dir: URL) -> Int32? {
        let fd = open(dir.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        return fsync(fd) == 0 ? nil : errno
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
                    for (name, value) in a.attributes { try g.setAttribute(name, value) }
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
        // The owner mark goes last, just before the folder (the run is complete, so nothing
        // writes parts of it any more); this process stops owning the run after that.
        if elapsedSeconds != nil { unlink(runDir.appendingPathComponent(PartOwner.fileName).path) }
        // The run's folder (and `.<name>.parts/`) go when empty; another run's parts stay.
        if rmdir(runDir.path) == 0 { _ = rmdir(partsDirectory(for: url.standardizedFileURL).path) }
        if elapsedSeconds != nil { PartOwner.release(runDir) }
    }
}

/// Attributes a finishing run adds from all of its results: (variant, suite, attributes).
public typealias RunAnnotation = ([VariantResults]) -> [(variant: String, suite: String, attributes: [(name: String, value: ResultScalar)])]

// MARK: Owners, and reclaiming abandoned parts

/// Who writes a run's parts: every process that stores a part of run `id` holds a shared flock
/// on `.<name>.parts/<id>/.owner` from its first part until the run is folded, or until it ends.
///
/// Why an flock and not a pid record: the kernel drops the lock when the last descriptor of the
/// process's open file goes, on exit and on SIGKILL alike, so a lock that is held always means a
/// live writer and a free one never does. A pid (even with boot id and start time) must be
/// checked against /proc, which a pid namespace (a container sharing the folder), another host on
/// a shared file system or a reused pid get wrong; a stale record would have to be guessed at. The
/// descriptor is close-on-exec, so a child process never keeps a dead writer's mark alive.
/// Shared: two processes may store parts of one run (two `--resume` of it) without waiting.
/// A reclaimer takes the lock exclusively without waiting: it gets it only when no writer lives.
enum PartOwner {
    static let fileName = ".owner"
    private static let lock = NSLock()
    nonisolated(unsafe) private static var held: [String: Int32] = [:]   // guarded by `lock`

    /// Creates `dir` (and its parents) and takes the shared owner lock, once per process.
    /// If a reclaimer removed the folder while this waited for the lock, starts again.
    static func claim(_ dir: URL) throws {
        lock.lock(); defer { lock.unlock() }
        if held[dir.path] != nil { return }
        let owner = dir.appendingPathComponent(fileName).path
        for _ in 0..<100 {
            let parts = dir.deletingLastPathComponent()
            let newParts = !FileManager.default.fileExists(atPath: parts.path)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            // The new folders' names reach the disk with the first part.
            if newParts { _ = ResultsFile.fsyncDirectory(parts.deletingLastPathComponent()) }
            _ = ResultsFile.fsyncDirectory(parts)
            let fd = open(owner, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw OutputError(file: owner, reason: String(cString: strerror(errno))) }
            while flock(fd, LOCK_SH) != 0 {
                guard errno == EINTR else {
                    let e = errno; close(fd)
                    throw OutputError(file: owner, reason: "cannot lock: \(String(cString: strerror(e)))")
                }
            }
            // The file locked must still be the one at the path (not removed by a reclaimer).
            var mine = stat(), there = stat()
            if fstat(fd, &mine) == 0, stat(owner, &there) == 0, mine.st_dev == there.st_dev, mine.st_ino == there.st_ino {
                held[dir.path] = fd
                return
            }
            close(fd)
        }
        throw OutputError(file: owner, reason: "the folder was removed again and again while it was being claimed")
    }

    /// Stops owning `dir` (after its parts were folded and removed).
    static func release(_ dir: URL) {
        lock.lock(); defer { lock.unlock() }
        if let fd = held.removeValue(forKey: dir.path) { close(fd) }
    }

    /// The owner lock of `dir` taken exclusively if no process holds it: its descriptor (close it
    /// to release), or nil while a writer lives. A folder without an owner file is taken with one
    /// made for the purpose when `create`, else nil.
    static func takeIfAbandoned(_ dir: URL, create: Bool) -> Int32? {
        let fd = open(dir.appendingPathComponent(fileName).path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0o644)
        guard fd >= 0 else { return nil }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 { close(fd); return nil }
        return fd
    }
}

/// Part files removed by `reclaimAbandonedParts`: one run's folder (or its half-written files).
public struct ReclaimedParts: Sendable, CustomStringConvertible {
    public let run: String
    /// Intact-looking part files (`r-*.part`) and other files (`.tmp-*` half-written parts) removed.
    public let parts: Int
    public let otherFiles: Int
    public let bytes: Int64
    public let reason: String
    public let folder: String
    public var description: String {
        "reclaimed run \(run): removed \(parts) result part(s)\(otherFiles > 0 ? " and \(otherFiles) half-written file(s)" : ""), \(bytes) bytes, from \(folder) (\(reason))"
    }
}

extension ResultsFile {
    /// Removes the part files that no command can use any more: those of runs that were
    /// abandoned. A run's part folder `.<name>.parts/<id>/` is abandoned when no process holds its
    /// owner lock (`PartOwner`) and the results file can never fold it:
    ///   - the file has no run `id` (the file was deleted or replaced since), or
    ///   - run `id` is finished (status "complete", or written whole): its results are in the
    ///     file already (a fold killed after its rename leaves such parts).
    /// A run whose status is "running" keeps every stored part whoever owns it: `--resume`
    /// continues the latest running run, and an older one becomes the latest again once the newer
    /// ones finish, so any running run may still be resumed. Only its half-written `.tmp-*` files
    /// (never a stored result) are removed, and only while no process owns it.
    ///
    /// Decided with the results file's lock held (taken without waiting: if another process is
    /// writing the file, nothing is reclaimed this time), so that no run is begun or finished
    /// meanwhile. A file that cannot be read reclaims nothing. Each reclaimed run is reported
    /// through `report` (one line, stderr by default).
    @discardableResult
    public static func reclaimAbandonedParts(for url: URL,
                                             report: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) -> [ReclaimedParts] {
        let target = url.standardizedFileURL
        let root = partsDirectory(for: target)
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: root.path), !names.isEmpty else {
            _ = rmdir(root.path)
            return []
        }
        guard let fileLock = try? FileLock.acquire(lockURL(for: target), for: target.path, timeout: 0, waiting: { _ in }) else { return [] }
        defer { fileLock.release() }
        // Run id -> running?
        var running: [String: Bool] = [:]
        if fm.fileExists(atPath: target.path) {
            do {
                let file = try ResultsFile(opening: target)
                for id in try file.runs() {
                    let run = try file.run(id)
                    running[id] = try run.hasAttribute(ResultsKeys.status) && run.stringAttribute(ResultsKeys.status) == "running"
                }
                try file.file.close()
            } catch {
                return []
            }
        }
        var reclaimed: [ReclaimedParts] = []
        for id in names.sorted() {
            let dir = root.appendingPathComponent(id)
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else { continue }
            let isRunning = running[id] == true
            guard let ownerFD = takeOwnerIfAbandoned(dir, create: !isRunning) else { continue }
            defer { close(ownerFD) }
            let files = ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0 != PartOwner.fileName }
            let removing = isRunning ? files.filter { $0.hasPrefix(".tmp-") } : files
            guard !removing.isEmpty || !isRunning else { continue }
            var parts = 0, others = 0, bytes: Int64 = 0
            for name in removing {
                let path = dir.appendingPathComponent(name).path
                var st = stat()
                let size = lstat(path, &st) == 0 ? Int64(st.st_size) : 0
                let ok = (st.st_mode & S_IFMT) == S_IFDIR ? ((try? fm.removeItem(atPath: path)) != nil) : unlink(path) == 0
                guard ok else { continue }
                bytes += size
                if name.hasPrefix("r-") && name.hasSuffix(".part") { parts += 1 } else { others += 1 }
            }
            let reason: String
            if isRunning {
                let kept = files.count - removing.count
                reason = "run \(id) is unfinished and no process owns it: its \(kept) stored part(s) are kept for --resume"
            } else {
                unlink(dir.appendingPathComponent(PartOwner.fileName).path)
                _ = rmdir(dir.path)
                reason = running[id] == nil ? "\(target.lastPathComponent) has no such run and no process owns it"
                    : "the run is finished, its results are in \(target.lastPathComponent), and no process owns it"
            }
            let r = ReclaimedParts(run: id, parts: parts, otherFiles: others, bytes: bytes, reason: reason, folder: dir.path)
            reclaimed.append(r)
            report(r.description)
        }
        _ = rmdir(root.path)
        return reclaimed
    }

    private static func takeOwnerIfAbandoned(_ dir: URL, create: Bool) -> Int32? {
        PartOwner.takeIfAbandoned(dir, create: create)
    }
}
