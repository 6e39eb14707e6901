import ArgumentParser
import BackpackIO
import BackpackResults
import Foundation

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a results file: before/after tables, optionally a self-contained HTML page with charts.")

    @Argument(help: "Results file (.h5) written by `backpack eval`.") var file: String
    @Option(name: .customLong("run"), help: "Run id (default: the latest run).") var runID: String?
    @Option(name: .long, help: "Write an HTML report here (atomically).") var html: String?
    @Flag(name: .long, help: "List the runs and exit.") var list = false
    @Flag(name: .long, help: "Print the chosen run as JSON.") var json = false

    func run() throws {
        if let html { try OutputCheck.file(URL(fileURLWithPath: html)) }
        let results = try ResultsFile(opening: URL(fileURLWithPath: file))
        let runs = try results.runs()
        if list { for r in runs { print(r) }; return }
        guard let id = runID ?? runs.last else { throw ValidationError("\(file): no runs") }
        guard runs.contains(id) else { throw ValidationError("\(file): no run '\(id)' (runs: \(runs.joined(separator: ", ")))") }
        let record = try results.record(id)
        if json {
            print(try RunJSON.json(runID: id, record.variants, runs: runs))
        } else {
            print("run \(id)  (\(runs.count) run(s) in \(file))")
            for (k, v) in ReportHTML.provenance(record) { print("  \(k): \(v)") }
            print(SummaryTable.render(record.variants))
        }
        if let html {
            try AtomicOutput.file(URL(fileURLWithPath: html), data: Data(ReportHTML.render(record).utf8))
            FileHandle.standardError.write(Data("wrote \(html)\n".utf8))
        }
    }
}
