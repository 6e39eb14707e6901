import ArgumentParser
import BackpackEditing
import BackpackModel
import BackpackIO
import Foundation

struct Edit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply edit files to a model and save the edited checkpoint.",
        discussion: """
            Writes DIR/config.json, model.safetensors (vocabulary-wide edits folded into the weights),
            sense_overrides.safetensors (word-level edits: token.<id> of shape (k, d)), edit-manifest.json
            (the edit files verbatim with SHA-256, the base weights' SHA-256, fitted values, tool version,
            UTC time) and the tokenizer files. DIR is built beside its final place and renamed; the input
            directory is never written. Every edit file is validated before anything is computed.
            """)

    @OptionGroup var options: ModelOptions
    @OptionGroup var editOptions: EditOptions
    @Option(help: "Output model directory.") var out: String
    @Flag(help: "Only validate the edit files against the model; write nothing.") var check = false

    func validate() throws {
        if editOptions.edits.isEmpty { throw ValidationError("give at least one --edit FILE.yaml") }
    }

    func run() throws {
        let dir = try options.directory()
        let target = URL(fileURLWithPath: out)
        try AtomicOutput.checkNotInput(target, inputs: [dir.url])
        let tokenizer = try options.optionalTokenizer(for: dir)
        let files = try editOptions.files()
        // resolved once: --check stops after the plan, an edit applies the same plan
        let plan = try Editor.plan(files, config: dir.config, tokenizer: tokenizer)
        if check { print("ok: \(files.count) edit file(s), \(plan.steps.count) intervention(s) valid for \(dir.url.path)"); return }
        let outcome = try plan.apply(to: try dir.load())
        try EditedCheckpoint.write(outcome, files: files, base: dir, to: target, toolVersion: Backpack.version,
                                     tokenizerSource: options.tokenizer.map { URL(fileURLWithPath: $0) })
        for r in outcome.records {
            print("\(URL(fileURLWithPath: r.file).lastPathComponent) #\(r.index)\(r.name.map { " (\($0))" } ?? ""): \(r.summary)")
            for s in r.skipped { print("  skipped \(s)") }
        }
        print("wrote \(target.path)")
    }
}
