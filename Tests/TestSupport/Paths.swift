import Foundation

/// Where the tests find the repository, `../shared` and the built `backpack` binary.
/// `BACKPACK_SHARED` overrides the shared folder (CI lays it beside the clone).
public enum TestPaths {
    public static let repoRoot: URL = {
        // .../Tests/TestSupport/Paths.swift -> repository root
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }()

    public static let shared: URL = {
        if let env = ProcessInfo.processInfo.environment["BACKPACK_SHARED"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        return repoRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }()

    public static var fixtures: URL { shared.appendingPathComponent("fixtures") }
    public static var tinyModel: URL { fixtures.appendingPathComponent("tiny") }
    public static var tinyLegacyBin: URL { fixtures.appendingPathComponent("tiny-legacy-bin") }
    public static var toyTokenizer: URL { fixtures.appendingPathComponent("toy-tokenizer") }
    public static var data: URL { shared.appendingPathComponent("data") }
    public static var gpt2Tokenizer: URL { data.appendingPathComponent("gpt2") }

    /// A fresh temporary directory, removed by the caller when it is done.
    public static func temporaryDirectory(_ tag: String = "test") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("backpack-\(tag)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The `backpack` executable that `swift build` placed beside the test bundle.
    public static var backpackBinary: URL {
        let bundle = Bundle.main.bundleURL
        for dir in [bundle, bundle.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("backpack")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return repoRoot.appendingPathComponent(".build/debug/backpack")
    }
}
