import BackpackEditing
import BackpackEvaluation
import BackpackModel
import BackpackModelFolder
import BackpackResults
import BackpackTokenizer
import BackpackYAML
import Foundation

/// An edit file as variants of a base model (what `eval`, `attribute` and `bench` do with each
/// --edit): the edit applied alone to the base model, or, for a file with sweeps, one variant per
/// grid point (`stem[axis=value,...]`). Word-level edits share the base model's cache of sense
/// vectors. (`edit`, `generate` and `forward` instead compose their --edit files into one model.)
public enum EditVariants {
    public static func variants(path: String, base: LanguageModel, tokenizer: GPT2Tokenizer, existing: [String]) throws -> [Variant] {
        let url = EditFile.argument(path).url
        guard FileManager.default.fileExists(atPath: url.path) else { throw ModelError(file: url.path, reason: "no such edit file") }
        // Every point is parsed before any is applied, so a bad value anywhere fails at once.
        let points = try EditFile.loadGrid(argument: path)
        let family = name(for: url, existing: existing)
        return try points.map { file in
            let outcome = try Editor.apply([file], to: base, tokenizer: tokenizer)
            let grid = GridPoint(family: family, axes: file.grid.map(\.axis), values: file.grid.map(\.value))
            return Variant(name: YAMLSweep.pointName(family, file.grid), model: outcome.model, editText: file.text,
                           editSHA256: file.sha256, grid: grid)
        }
    }

    /// The base model (named `base`) followed by every file's variants, in order.
    public static func withBase(_ base: LanguageModel, edits paths: [String], tokenizer: GPT2Tokenizer) throws -> [Variant] {
        var variants = [Variant(name: "base", model: base)]
        for path in paths {
            variants += try Self.variants(path: path, base: base, tokenizer: tokenizer, existing: variants.map(\.name))
        }
        return variants
    }

    /// A variant name from the edit file name, made unique (also among the grid points of
    /// files given earlier, whose names start with their file's stem).
    static func name(for url: URL, existing: [String]) -> String {
        var stem = url.deletingPathExtension().lastPathComponent.replacingOccurrences(of: "/", with: "-")
        if stem.isEmpty || stem == "base" { stem = "edit" }
        func taken(_ n: String) -> Bool { existing.contains { $0 == n || $0.hasPrefix(n + "[") } }
        var name = stem, i = 2
        while taken(name) { name = "\(stem)-\(i)"; i += 1 }
        return name
    }
}
