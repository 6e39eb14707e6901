import ArgumentParser
import BackpackEvaluation
import BackpackWorkflows
import Foundation

struct Reproduce: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Reproduce published results.", subcommands: [ReproducePaper.self])
}

struct ReproducePaper: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paper",
        abstract: "Table 5 (pronoun bias) and Table 2 (LAMBADA, WikiText) of the Backpack paper on stanfordnlp/backpack-gpt2, beside the published numbers.",
        discussion: """
            Downloads stanfordnlp/backpack-gpt2 and openai-community/gpt2 (Hugging Face cache; HF_ENDPOINT, \
            HF_HUB_CACHE) and the LAMBADA and WikiText files (fetch cache; BACKPACK_DATA_ENDPOINT for a mirror), \
            each only when not cached yet, then evaluates three runs into OUT/results.h5, as `backpack eval` would: \
            pronoun-bias on the Backpack unmodified, Remove-Sense10 and Optimize-Sense10; lambada and \
            wikitext on the unmodified Backpack; pronoun-bias on GPT-2 small with the nullspace baseline \
            (an extra row, not the paper's Transformer). Writes OUT/table.md (printed too) and an HTML \
            report per run. When a download fails: one line naming it, exit status 3, nothing written. \
            See docs/REPRODUCE.md.
            """)

    @Option(name: .long, help: "Output folder (replaced atomically when complete).") var out: String = "paper-reproduction"
    @Option(name: .long, help: "Data cache (default ~/.cache/backpack-edit, or BACKPACK_CACHE).") var cacheDir: String?
    @Option(name: .long, help: "Suite of the LAMBADA row (name or YAML file).") var lambadaSuite: String = "lambada"
    @Option(name: .long, help: "Suite of the WikiText row (name or YAML file).") var wikitextSuite: String = "wikitext"
    @Option(name: .long, help: "Seconds before giving up on a data download.") var timeout: Int = 60

    func run() throws {
        var reproduction = PaperReproduction(out: URL(fileURLWithPath: out),
                                             cache: cacheDir.map { URL(fileURLWithPath: $0) } ?? DataLocations.defaultCache)
        reproduction.lambadaSuite = lambadaSuite
        reproduction.wikitextSuite = wikitextSuite
        reproduction.timeout = timeout
        let table: String
        do {
            table = try reproduction.run { EvalSupport.progress($0) }
        } catch let error as PaperReproduction.Unfetched {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(3)
        }
        print(table, terminator: "")
        let files = ["results.h5", "table.md"] + PaperReproduction.reports.map(\.1)
        FileHandle.standardError.write(Data("wrote \(reproduction.out.path): \(files.joined(separator: ", "))\n".utf8))
    }
}
