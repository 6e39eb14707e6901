import Foundation

/// SwiftPM resource bundles, found without `Bundle.module`: its accessor stops the process when
/// the bundle is missing (a binary copied without its `*.resources` folder). The one lookup for
/// every module that ships files (GPT-2's BPE, the Hugging Face modeling code).
public enum ResourceBundle {
    /// Where a bundle named `name` (e.g. `backpack-edit_BackpackTokenizer.resources`) may be: beside
    /// the main bundle or the executable (or the test bundle), in that order.
    public static func candidates(_ name: String) -> [URL] {
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        return [Bundle.main.bundleURL, executable, Bundle.main.bundleURL.deletingLastPathComponent()]
            .map { $0.appendingPathComponent(name) }
    }

    /// The first candidate folder holding every one of `files` (paths relative to the bundle).
    public static func locate(_ name: String, holding files: [String]) -> URL? {
        candidates(name).first { dir in
            files.allSatisfy { FileManager.default.fileExists(atPath: dir.appendingPathComponent($0).path) }
        }
    }
}
