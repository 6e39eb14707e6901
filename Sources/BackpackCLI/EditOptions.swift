import ArgumentParser
import BackpackEditing
import BackpackModel
import BackpackTokenizer
import Foundation

/// `--edit FILE.yaml` (repeatable): edit files applied in order to the loaded model.
struct EditOptions: ParsableArguments {
    @Option(name: .customLong("edit"), help: "An edit file (schema backpack-edit/1), or one point of a sweep file as eval names it: 'FILE.yaml[scale=0.4]'. Repeatable; the edits compose: applied in order to one model.")
    var edits: [String] = []

    func files() throws -> [EditFile] { try edits.map { try EditFile.load(argument: $0) } }

    /// The model with the edits applied (the model itself when there are none).
    func apply(to model: LanguageModel, tokenizer: GPT2Tokenizer?) throws -> EditOutcome {
        let files = try files()
        if files.isEmpty { return EditOutcome(model: model, records: []) }
        return try Editor.apply(files, to: model, tokenizer: tokenizer)
    }
}

extension ModelOptions {
    /// The tokenizer when one can be found (edits by token id need none).
    func optionalTokenizer(for directory: ModelDirectory) throws -> GPT2Tokenizer? {
        if tokenizer != nil { return try loadTokenizer(for: directory) }
        return try directory.tokenizer()
    }
}
