import Foundation
import Testing
import TestSupport
@testable import BackpackCheckpoint

/// One file of Tests/HardeningTests/Corpus (made by Tools/hostile-checkpoints/make_corpus.py)
/// and the error substring MANIFEST.json expects (nil: harmless, may load).
struct CorpusCase: CustomTestStringConvertible, Sendable {
    let file: String
    let expect: String?
    let why: String
    var testDescription: String { file }
    var url: URL { HostileCorpus.folder.appendingPathComponent(file) }
}

enum HostileCorpus {
    static let folder = TestPaths.repoRoot.appendingPathComponent("Tests/HardeningTests/Corpus")

    static let cases: [CorpusCase] = {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("MANIFEST.json")),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: [String: Any]] else { return [] }
        return json.keys.sorted().map { k in
            CorpusCase(file: k, expect: json[k]?["expect"] as? String, why: json[k]?["why"] as? String ?? "")
        }
    }()

    /// Shared between the two tests: one line per file for docs/HARDENING.md.
    static func report(_ full: String) {
        let line = full.count > 400 ? String(full.prefix(400)) + "…" : full
        guard let path = ProcessInfo.processInfo.environment["HARDENING_REPORT"], !path.isEmpty else { return }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { return }
        _ = (line + "\n").withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }
}

@Suite(.timeLimit(.minutes(2))) struct HostileCorpusTests {
    @Test func manifestCoversTheCorpus() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: HostileCorpus.folder.path).filter { $0.hasSuffix(".bin") }
        #expect(HostileCorpus.cases.count >= 100, "MANIFEST.json missing or small")
        #expect(Set(files) == Set(HostileCorpus.cases.map(\.file)))
        var total = 0
        for f in files { total += (try FileManager.default.attributesOfItem(atPath: HostileCorpus.folder.appendingPathComponent(f).path)[.size] as? Int) ?? 0 }
        #expect(total < 1 << 20, "corpus is \(total) bytes; keep it under 1 MB")
    }

    /// TorchCheckpoint refuses each file with an error naming the reason; nothing is executed.
    @Test(arguments: HostileCorpus.cases)
    func torchCheckpointRefuses(_ c: CorpusCase) throws {
        let before = Markers.present()
        defer { #expect(Markers.present().subtracting(before).isEmpty, "\(c.file): a payload created a marker file") }
        let start = Date()
        do {
            let t = try TorchCheckpoint(url: c.url)
            for (name, info) in t.tensors where info.dtype.isFloatingPoint { _ = try t.floats(name) }
            #expect(c.expect == nil, "\(c.file) (\(c.why)) opened without error")
            HostileCorpus.report("api\t\(c.file)\t\(c.why)\t(loads: harmless)")
        } catch let e as CheckpointError {
            if let expect = c.expect {
                #expect(e.reason.contains(expect), "\(c.file): \(e.reason)")
            }
            #expect(e.file == c.url.path)
            HostileCorpus.report("api\t\(c.file)\t\(c.why)\t\(e.reason)")
        }
        print(String(format: "%@: %.3f s", c.file, Date().timeIntervalSince(start)))
    }

    /// `backpack info DIR` (config.json + the hostile pytorch_model.bin) exits with status 1 and
    /// the reason, never by a signal, and executes nothing.
    @Test(arguments: HostileCorpus.cases)
    func cliRefuses(_ c: CorpusCase) throws {
        let dir = try TestPaths.temporaryDirectory("hostile")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: TestPaths.tinyModel.appendingPathComponent("config.json"),
                                         to: dir.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: c.url, to: dir.appendingPathComponent("pytorch_model.bin"))
        let before = Markers.present()
        let r = try Child.backpack(["info", dir.path])
        #expect(Markers.present().subtracting(before).isEmpty, "\(c.file): a payload created a marker file")
        #expect(r.signal == nil, "\(c.file): backpack info ended by signal \(r.signal ?? 0)\n\(r)")
        #expect(r.status == 1, "\(c.file): \(r)")
        if let expect = c.expect {
            #expect(r.err.contains(expect), "\(c.file): \(r.err)")
        }
        #expect(r.err.contains("pytorch_model.bin"), "\(c.file): the error does not name the file: \(r.err)")
        #expect(Child.rssIsSmall(r), "\(c.file): peak RSS \(r.maxRSSKiB) KiB (baseline \(Child.baselineRSSKiB) KiB)")
        let line = r.err.split(separator: "\n").first.map(String.init) ?? ""
        HostileCorpus.report("cli\t\(c.file)\t\(c.why)\t\(line.replacingOccurrences(of: dir.path, with: "DIR"))")
    }
}
