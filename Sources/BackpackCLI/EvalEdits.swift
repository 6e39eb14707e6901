import BackpackCheckpoint
import BackpackEditing
import BackpackEvaluation
import BackpackModel
import BackpackTokenizer
import Foundation

/// Turns an --edit file into a variant: the edit applied alone to the base model. Word-level
/// edits share the base model's cache of sense vectors.
enum EvalEdits {
    static func variant(path: String, base: LanguageModel, tokenizer: GPT2Tokenizer, existing: [String]) throws -> Variant {
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: url.path) else { throw ModelError(file: path, reason: "no such edit file") }
        let file = try EditFile.load(url)
        let outcome = try Editor.apply([file], to: base, tokenizer: tokenizer)
        return Variant(name: name(for: url, existing: existing), model: outcome.model, editText: file.text,
                       editSHA256: file.sha256)
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
