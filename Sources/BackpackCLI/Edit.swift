import ArgumentParser
import BackpackEditing
import BackpackModel
import BackpackIO
import BackpackResults
import Foundation

struct Edit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply edit files to a model and save the edited checkpoint.",
        discussion: """
            The --edit files compose: they are applied in order to one model. Writes a Hugging Face model folder: \
            DIR/config.json (the base's keys verbatim, auto_map set to the shipped modeling code, model_type \
            backpack-gpt2, what the edit adds under backpack_edit), model.safetensors (vocabulary-wide edits folded \
            into the weights), sense_overrides.safetensors (word-level edits: token.<id> of shape (k, d)), \
            configuration_backpack_gpt2.py and modeling_backpack_gpt2.py (load with \
            AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)), edit-manifest.json (the edit files \
            verbatim with SHA-256, the base weights' SHA-256, fitted values, tool version, UTC time), a model card \
            README.md and the tokenizer files. DIR is built beside its final place and renamed; the input directory \
            is never written. Every edit file is validated before anything is computed; --check stops there.
            """)

    @OptionGroup var options: ModelOptions
    @OptionGroup var editOptions: EditOptions
    @Option(help: "Output model directory (not needed with --check).") var out: String?
    @Flag(help: "Only validate the edit files against the model (erase: fit the erasers, print each sense's rank and variance removed); write nothing.") var check = false
    @Option(name: .customLong("base-model-id"), help: "Hub id of the base model for the model card (e.g. stanfordnlp/backpack-gpt2).")
    var baseModelID: String?
    @Option(help: "Results file (.h5) of `backpack eval`: its latest run's before/after table goes into the model card.")
    var results: String?

    func validate() throws {
        if editOptions.edits.isEmpty { throw ValidationError("give at least one --edit FILE.yaml") }
        if out == nil && !check { throw ValidationError("give the output model directory with --out DIR (or --check to only validate)") }
    }

    func run() throws {
        // --check writes nothing; otherwise the output is checked before anything is loaded.
        let target = out.map { URL(fileURLWithPath: $0) }
        if !check, let target { try OutputCheck.directory(target) }
        let dir = try options.directory()
        if let target { try AtomicOutput.checkNotInput(target, inputs: [dir.url]) }
        let tokenizer = try options.optionalTokenizer(for: dir)
        let files = try editOptions.files()
        // resolved once: --check stops after the plan, an edit applies the same plan
        let plan = try Editor.plan(files, config: dir.config, tokenizer: tokenizer)
        if check {
            print("ok: \(files.count) edit file(s), \(plan.steps.count) intervention(s) valid for \(dir.url.path)")
            // an eraser is fitted from the weights: --check fits it (in memory) to show what it would remove
            if plan.steps.contains(where: { $0.operation == "erase" }) {
                for r in try plan.apply(to: try dir.load()).records where !r.erasure.isEmpty {
                    print("\(URL(fileURLWithPath: r.file).lastPathComponent) #\(r.index)\(r.name.map { " (\($0))" } ?? ""): erase, \(r.scope.rawValue) scope")
                    for e in r.erasure { print("  \(e)") }
                    for s in r.skipped { print("  skipped \(s)") }
                }
            }
            return
        }
        guard let target else { return }   // validate() requires --out without --check
        let evaluation = try results.map { try Self.evaluation(URL(fileURLWithPath: $0)) }
        let outcome = try plan.apply(to: try dir.load())
        try EditedCheckpoint.write(outcome, files: files, base: dir, to: target, toolVersion: Backpack.version,
                                     tokenizerSource: options.tokenizer.map { URL(fileURLWithPath: $0) },
                                     card: .init(baseModelID: baseModelID, evaluation: evaluation))
        for r in outcome.records {
            print("\(URL(fileURLWithPath: r.file).lastPathComponent) #\(r.index)\(r.name.map { " (\($0))" } ?? ""): \(r.summary)")
            for s in r.skipped { print("  skipped \(s)") }
        }
        print("wrote \(target.path)")
    }

    /// The latest run of a results file, as `backpack report` reads and prints it.
    static func evaluation(_ url: URL) throws -> EditedCheckpoint.Evaluation {
        let file = try ResultsFile(opening: url)
        guard let id = try file.runs().last else { throw ValidationError("\(url.path): no runs to put in the model card") }
        let table = SummaryTable.render(try file.record(id).variants)
        return .init(file: url.lastPathComponent, runID: id, table: table)
    }
}
