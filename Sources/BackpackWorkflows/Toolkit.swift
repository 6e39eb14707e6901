import BackpackModel
import BackpackModelFolder
import BackpackTokenizer
import Foundation

/// This installation of the toolkit: its version, where the folders it ships are (Evaluations/,
/// Edits/, Data/, found from the working directory or the executable), and what a run records
/// about the program that made it (version, git commit, command line).
public enum Toolkit {
    public static let version = "0.1.0"

    /// Evaluations/ in the working directory or above it, or above the executable.
    public static func evaluationsDirectory() -> URL? {
        let fm = FileManager.default
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for start in [URL(fileURLWithPath: fm.currentDirectoryPath), exe] {
            var d = start
            for _ in 0..<6 {
                let c = d.appendingPathComponent("Evaluations")
                var isDir: ObjCBool = false
                if fm.fileExists(atPath: c.path, isDirectory: &isDir), isDir.boolValue { return c }
                d = d.deletingLastPathComponent()
            }
        }
        return nil
    }

    /// The checkout that holds Evaluations/ (its Edits/ and Data/ are beside it).
    public static func checkout() -> URL? { evaluationsDirectory()?.deletingLastPathComponent() }

    /// The commit of the checkout the executable was built in, or "unknown".
    public static func gitCommit() -> String {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git", "-C", exe.path, "rev-parse", "HEAD"]
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return "unknown" }
        p.waitUntilExit()
        let text = String(data: pipe.fileHandleForReading.readDataToEndOfFile(), encoding: .utf8)?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return p.terminationStatus == 0 && text.count == 40 ? text : "unknown"
    }

    /// This process's command line as a shell would take it back (stored with every run).
    public static func commandLine(_ arguments: [String] = CommandLine.arguments) -> String {
        arguments.map(shellQuote).joined(separator: " ")
    }

    public static func shellQuote(_ s: String) -> String {
        if !s.isEmpty && s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,@+".contains($0) }) { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// The tokenizer at `path` when one is given, else the model folder's own (or GPT-2's built-in
    /// one for GPT-2's vocabulary); an error naming the folder when there is none.
    public static func tokenizer(for directory: ModelDirectory, path: String? = nil) throws -> GPT2Tokenizer {
        if let path { return try GPT2Tokenizer.load(path: URL(fileURLWithPath: path)) }
        guard let found = try directory.tokenizer() else {
            throw ModelError(file: directory.url.path, reason: "no tokenizer in the model directory (tokenizer.json or vocab.json + merges.txt) and the vocabulary (\(directory.config.vocabSize)) is not GPT-2's; pass --tokenizer PATH")
        }
        return found
    }
}
