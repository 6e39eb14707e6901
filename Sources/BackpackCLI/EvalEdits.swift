import BackpackCheckpoint
import BackpackEvaluation
import BackpackModel
import BackpackTokenizer
import Foundation

/// Turns an --edit file into a variant. The editing engine (BackpackEditing.Editor) is wired here
/// once it is merged; until then an edit is refused with a clear message.
enum EvalEdits {
    static func variant(path: String, base: LanguageModel, tokenizer: GPT2Tokenizer, existing: [String]) throws -> Variant {
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: url.path) else { throw ModelError(file: path, reason: "no such edit file") }
        throw ModelError(file: path, reason: "applying edits needs the editing engine (BackpackEditing.Editor), which this build does not have yet")
    }

    /// A variant name from the edit file name, made unique.
    static func name(for url: URL, existing: [String]) -> String {
        var stem = url.deletingPathExtension().lastPathComponent.replacingOccurrences(of: "/", with: "-")
        if stem.isEmpty || stem == "base" { stem = "edit" }
        var name = stem, i = 2
        while existing.contains(name) { name = "\(stem)-\(i)"; i += 1 }
        return name
    }
}
