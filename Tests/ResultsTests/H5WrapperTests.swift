import Foundation
import Testing
@testable import BackpackResults
import TestSupport

/// HDF5 (serial) is process-global state: keep every test that touches it in serialized suites.
@Suite("HDF5 wrapper", .serialized)
struct H5WrapperTests {
    @Test func attributesRoundTrip() throws {
        let dir = try TestPaths.temporaryDirectory("h5attr")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("a.h5")
        let text = "naïve — 日本語 🎒 \"quoted\""
        do {
            let file = try H5File.create(url)
            let g = try file.root.createGroup("g")
            try g.setAttribute("s", text)
            try g.setAttribute("empty", "")
            try g.setAttribute("d", 3.25)
            try g.setAttribute("nan", Double.nan)
            try g.setAttribute("i", -42)
            try g.setAttribute("big", Int.max)
            try g.setAttribute("ds", [1.5, -2.0, 1e-300])
            try g.setAttribute("is", [1, 2, 3, Int.min])
            try g.setAttribute("no_doubles", [Double]())
            try g.setAttribute("replaced", "old")
            try g.setAttribute("replaced", 7)  // replacing changes the type too
            try g.setAttribute("ünïcode name", "x")
            try file.close()
        }
        let file = try H5File.open(url, writable: false)
        let g = try file.root.group("g")
        #expect(try g.stringAttribute("s") == text)
        #expect(try g.stringAttribute("empty") == "")
        #expect(try g.doubleAttribute("d") == 3.25)
        #expect(try g.doubleAttribute("nan").isNaN)
        #expect(try g.intAttribute("i") == -42)
        #expect(try g.intAttribute("big") == Int.max)
        #expect(try g.doubleAttribute("i") == -42)  // ints read as doubles
        #expect(try g.doubleArrayAttribute("ds") == [1.5, -2.0, 1e-300])
        #expect(try g.intArrayAttribute("is") == [1, 2, 3, Int.min])
        #expect(try g.doubleArrayAttribute("no_doubles") == [])
        #expect(try g.intAttribute("replaced") == 7)
        #expect(try g.stringAttribute("ünïcode name") == "x")
        #expect(try g.attribute("ds") == .doubles([1.5, -2.0, 1e-300]))
        #expect(try g.attribute("s") == .string(text))
        #expect(try g.attributeNames() == ["big", "d", "ds", "empty", "i", "is", "nan", "no_doubles", "replaced",
                                           "s", "ünïcode name"])
        #expect(g.hasAttribute("d"))
        #expect(!g.hasAttribute("nope"))
        #expect(file.openObjectCount == 2)  // root and g: nothing leaked by the reads
    }

    @Test func attributeErrors() throws {
        let dir = try TestPaths.temporaryDirectory("h5attrerr")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("a.h5")
        let file = try H5File.create(url)
        try file.root.setAttribute("s", "text")
        let mismatch = #expect(throws: ResultsError.self) { try file.root.intAttribute("s") }
        #expect(mismatch?.kind == .typeMismatch)
        let missing = #expect(throws: ResultsError.self) { try file.root.stringAttribute("missing") }
        #expect(missing?.kind == .notFound)
        #expect(missing?.description.contains(url.path) == true)
        #expect(missing?.description.contains("missing") == true)
        #expect(throws: ResultsError.self) { try file.root.setAttribute("nul", "a\0b") }
    }

    @Test func numericDatasetsRoundTrip() throws {
        let dir = try TestPaths.temporaryDirectory("h5num")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("n.h5")
        let floats: [Float] = (0..<12).map { Float($0) * 0.5 - 1 }
        let doubles: [Double] = [1, 2, 3, 4, 5, .pi]
        let ints: [Int64] = [Int64.min, -1, 0, 1, 2, 3, 4, Int64.max]
        do {
            let file = try H5File.create(url)
            let g = try file.root.createGroup("data")
            try g.write("f", floats: floats, shape: [3, 4])
            try g.write("d", doubles: doubles, shape: [2, 3])
            try g.write("i", int64s: ints, shape: [2, 2, 2])
            try g.write("flat", doubles: [1, 2, 3])
            try g.write("scalar", scalar: 0.125)
            try g.write("empty", floats: [], shape: [0, 5])
            try g.write("nested/deeper/x", int64s: [9])
            try file.close()
        }
        let file = try H5File.open(url, writable: false)
        let g = try file.root.group("data")
        let f = try g.readFloats("f")
        #expect(f.values == floats)
        #expect(f.shape == [3, 4])
        let d = try g.readDoubles("d")
        #expect(d.values == doubles)
        #expect(d.shape == [2, 3])
        let i = try g.readInt64s("i")
        #expect(i.values == ints)
        #expect(i.shape == [2, 2, 2])
        #expect(try g.readDoubles("flat").shape == [3])
        #expect(try g.readScalar("scalar") == 0.125)
        #expect(try g.readDoubles("scalar").shape == [])
        let e = try g.readFloats("empty")
        #expect(e.values.isEmpty)
        #expect(e.shape == [0, 5])
        #expect(try g.readInt64s("nested/deeper/x").values == [9])
        // Floats can be read as doubles; integers as floats; floats are not truncated to ints.
        #expect(try g.readDoubles("f").values == floats.map(Double.init))
        #expect(try g.readDoubles("i").values.count == 8)
        let refused = #expect(throws: ResultsError.self) { try g.readInt64s("d") }
        #expect(refused?.kind == .typeMismatch)

        let info = try g.datasetInfo("f")
        #expect(info.element == .float(bytes: 4))
        #expect(info.chunks == nil)
        #expect(info.filters.isEmpty)
        #expect(try g.datasetInfo("d").element == .float(bytes: 8))
        #expect(try g.datasetInfo("i").element == .integer(bytes: 8, signed: true))
        #expect(try g.datasetNames() == ["d", "empty", "f", "flat", "i", "scalar"]
                || g.datasetNames() == ["f", "d", "i", "flat", "scalar", "empty"])
        #expect(file.openObjectCount == 2)
    }

    @Test func largeDatasetsAreChunkedAndCompressed() throws {
        let dir = try TestPaths.temporaryDirectory("h5big")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("big.h5")
        let rows = 400, cols = 250  // 100,000 elements
        let floats: [Float] = (0..<(rows * cols)).map { Float($0 % 97) / 7 }
        let ints: [Int64] = (0..<5000).map { Int64($0 / 10) }
        do {
            let file = try H5File.create(url)
            try file.root.write("f", floats: floats, shape: [rows, cols])
            try file.root.write("i", int64s: ints)
            try file.root.write("threshold", doubles: [Double](repeating: 1, count: 1024))
            try file.root.write("below", doubles: [Double](repeating: 1, count: 1023))
            try file.close()
        }
        let file = try H5File.open(url, writable: false)
        let f = try file.root.readFloats("f")
        #expect(f.values == floats)
        #expect(f.shape == [rows, cols])
        #expect(try file.root.readInt64s("i").values == ints)
        let info = try file.root.datasetInfo("f")
        #expect(info.chunks != nil)
        #expect(info.filters == [2, 1])  // shuffle, then deflate
        #expect(info.isCompressed)
        #expect(try file.root.datasetInfo("threshold").isCompressed)
        #expect(try !file.root.datasetInfo("below").isCompressed)
        // Highly repetitive data: the file is much smaller than the raw 400 KB of floats.
        let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int ?? 0
        #expect(size > 0 && size < rows * cols * 4 / 2)
    }

    @Test func chunkShapesStayBounded() {
        #expect(H5Group.chunkShape(for: [2000], elementSize: 4) == [2000])
        let c = H5Group.chunkShape(for: [100_000, 768], elementSize: 4)
        #expect(c.reduce(1, *) * 4 <= 256 * 1024)
        #expect(c.allSatisfy { $0 >= 1 })
        #expect(H5Group.chunkShape(for: [1, 1_000_000], elementSize: 8).reduce(1, *) * 8 <= 256 * 1024)
    }

    @Test func utf8StringsRoundTrip() throws {
        let dir = try TestPaths.temporaryDirectory("h5str")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("s.h5")
        let strings = ["hello", "naïve café", "日本語のテキスト", "", "emoji 🎒🧪", "Ελληνικά", "tab\tnew\nline"]
        let many = (0..<3000).map { "prompt \($0) — ü" }
        do {
            let file = try H5File.create(url)
            try file.root.write("s", strings: strings)
            try file.root.write("none", strings: [])
            try file.root.write("many", strings: many)
            let bad = #expect(throws: ResultsError.self) { try file.root.write("bad", strings: ["a", "b\0c"]) }
            #expect(bad?.kind == .invalidArgument)
            try file.close()
        }
        let file = try H5File.open(url, writable: false)
        #expect(try file.root.readStrings("s") == strings)
        #expect(try file.root.readStrings("none") == [])
        #expect(try file.root.readStrings("many") == many)
        #expect(try file.root.datasetInfo("s").element == .string(variableLength: true))
        #expect(!file.root.contains("bad"))
        let notStrings = #expect(throws: ResultsError.self) { try file.root.readFloats("s") }
        #expect(notStrings?.kind == .typeMismatch)
    }

    @Test func groupsAndLinks() throws {
        let dir = try TestPaths.temporaryDirectory("h5grp")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("g.h5")
        let file = try H5File.create(url)
        let root = file.root
        for name in ["zeta", "alpha", "mu"] { _ = try root.createGroup(name) }
        _ = try root.createGroup("a/b/c")
        try root.write("data", doubles: [1])
        #expect(try root.children() == ["zeta", "alpha", "mu", "a", "data"])  // creation order
        #expect(try root.groupNames() == ["zeta", "alpha", "mu", "a"])
        #expect(try root.datasetNames() == ["data"])
        #expect(root.contains("a/b/c"))
        #expect(!root.contains("a/x/c"))
        #expect(!root.contains("data/x"))
        #expect(!root.contains(""))
        #expect(try root.kind(of: "data") == .dataset)
        #expect(try root.kind(of: "a/b") == .group)
        #expect(try root.kind(of: "nope") == nil)
        let c = try root.group("a").group("b/c")
        #expect(c.path == "/a/b/c")
        let missing = #expect(throws: ResultsError.self) { try root.group("a/missing") }
        #expect(missing?.kind == .notFound)
        #expect(missing?.object == "/a/missing")
        #expect(missing?.file == url.path)
        let dup = #expect(throws: ResultsError.self) { try root.createGroup("alpha") }
        #expect(dup?.kind == .alreadyExists)
        let dupData = #expect(throws: ResultsError.self) { try root.write("data", doubles: [2]) }
        #expect(dupData?.kind == .alreadyExists)
        let notGroup = #expect(throws: ResultsError.self) { try root.group("data") }
        #expect(notGroup?.kind == .typeMismatch)
        let badShape = #expect(throws: ResultsError.self) { try root.write("x", floats: [1, 2, 3], shape: [2, 2]) }
        #expect(badShape?.kind == .invalidArgument)
        // Groups written by HDF5 without creation-order tracking list by name.
        #expect(try c.children() == [])
    }

    @Test func openErrorsNameTheFile() throws {
        let dir = try TestPaths.temporaryDirectory("h5open")
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("missing.h5")
        let e1 = #expect(throws: ResultsError.self) { try H5File.open(missing, writable: false) }
        #expect(e1?.kind == .notFound)
        #expect(e1?.description.contains(missing.path) == true)

        let text = dir.appendingPathComponent("notes.h5")
        try Data("this is not HDF5\n".utf8).write(to: text)
        let e2 = #expect(throws: ResultsError.self) { try H5File.open(text, writable: true) }
        #expect(e2?.description.contains(text.path) == true)
        #expect(e2?.description.contains("not an HDF5 file") == true)

        // A failing HDF5 call carries HDF5's own error stack message.
        let nowhere = dir.appendingPathComponent("no/such/dir/x.h5")
        let e3 = #expect(throws: ResultsError.self) { try H5File.create(nowhere) }
        #expect(e3?.kind == .hdf5)
        #expect(e3?.operation == "H5Fcreate")
        #expect(e3?.detail.isEmpty == false)
        #expect(e3?.description.contains(nowhere.path) == true)

        // create refuses to clobber unless asked.
        let existing = dir.appendingPathComponent("exists.h5")
        try H5File.create(existing).close()
        let e4 = #expect(throws: ResultsError.self) { try H5File.create(existing) }
        #expect(e4?.kind == .alreadyExists)
        try H5File.create(existing, overwrite: true).close()
    }

    @Test func closeIsIdempotentAndReadOnlyRefusesWrites() throws {
        let dir = try TestPaths.temporaryDirectory("h5close")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("c.h5")
        let file = try H5File.create(url)
        try file.root.setAttribute("x", 1)
        try file.close()
        try file.close()
        let ro = try H5File.open(url, writable: false)
        let e = #expect(throws: ResultsError.self) { try ro.root.setAttribute("y", 2) }
        #expect(e?.kind == .hdf5)
        #expect(e?.detail.isEmpty == false)
        #expect(try ro.root.intAttribute("x") == 1)
    }

    /// A process started while a results file is open must not inherit its descriptor: HDF5's
    /// lock on the file belongs to the open file, so a child holding a copy would keep the file
    /// locked after it is closed here, until the child exits (Foundation's Process closes the
    /// descriptors a child would inherit; HardeningTests' posix_spawn does it by hand).
    @Test func aChildProcessDoesNotHoldTheFileLocked() throws {
        let dir = try TestPaths.temporaryDirectory("h5child")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("c.h5")
        let file = try H5File.create(url)
        try file.root.setAttribute("x", 1)
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["30"]
        try child.run()
        defer { kill(child.processIdentifier, SIGKILL); child.waitUntilExit() }   // SIGTERM may be masked in a test process's children
        try file.close()
        // Writable: HDF5 takes an exclusive lock, refused while any copy of the old descriptor lives.
        let again = try H5File.open(url, writable: true)
        try again.root.setAttribute("y", 2)
        try again.close()
        #expect(child.isRunning, "the child exited before the file was opened again: nothing was tested")
    }

    /// Reading takes no HDF5 lock: another process holding an exclusive flock on the file (as a
    /// writer's descriptor that outlived it did) does not stop a read-only open. Writing still
    /// locks (a writable open is refused while the flock is held).
    @Test func readingIgnoresAnotherProcesssLock() throws {
        let dir = try TestPaths.temporaryDirectory("h5flock")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("c.h5")
        do {
            let file = try H5File.create(url)
            try file.root.setAttribute("x", 7)
            try file.close()
        }
        let ready = dir.appendingPathComponent("locked")
        let holder = Process()
        // One process holds the lock (flock(1) on the shell's descriptor 9, kept by exec): killing it frees the file.
        holder.executableURL = URL(fileURLWithPath: "/bin/sh")
        holder.arguments = ["-c", "exec 9<'\(url.path)'; flock -x 9; touch '\(ready.path)'; exec sleep 30"]
        try holder.run()
        defer { kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() }
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: ready.path) && Date() < deadline { usleep(10_000) }
        try #require(FileManager.default.fileExists(atPath: ready.path), "flock did not take the lock")
        let reader = try H5File.open(url, writable: false)
        #expect(try reader.root.intAttribute("x") == 7)
        try reader.close()
        #expect(throws: ResultsError.self) { try H5File.open(url, writable: true) }
        #expect(holder.isRunning, "the lock holder exited early: nothing was tested")
    }

    @Test func concurrentReadersAreSerialisedByTheLock() throws {
        let dir = try TestPaths.temporaryDirectory("h5conc")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("c.h5")
        let values: [Double] = (0..<5000).map { Double($0) }
        do {
            let file = try H5File.create(url)
            try file.root.write("v", doubles: values)
            try file.close()
        }
        let path = url.path
        let failures = Counter()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            do {
                let file = try H5File.open(URL(fileURLWithPath: path), writable: false)
                for _ in 0..<5 where try file.root.readDoubles("v").values.count != 5000 { failures.increment() }
            } catch {
                failures.increment()
            }
        }
        #expect(failures.value == 0)
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
