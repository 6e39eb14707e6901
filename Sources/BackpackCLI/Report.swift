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
    @Flag(name: .long, help: .hidden) var inProcess = false

    /// The file may come from anyone, and libhdf5 is not hardened against damaged files: on some it
    /// crashes (docs/HARDENING.md, finding 9). The file is therefore read by a child process (this
    /// program again, with --in-process); a crash of the child is reported as a damaged file, exit 1.
    func run() throws {
        if let html { try OutputCheck.file(URL(fileURLWithPath: html)) }
        if !inProcess { try Self.runInChild(file: file); return }
        let results = try ResultsFile(opening: URL(fileURLWithPath: file))
        let runs = try results.runs()
        if list { for r in runs { print(r) }; return }
        guard let id = runID ?? runs.last else {
            throw ResultsError(.notFound, file: file, object: "/runs", operation: "report", detail: "the file has no runs")
        }
        guard runs.contains(id) else {
            throw ResultsError(.notFound, file: file, object: "/runs/\(id)", operation: "report", detail: "runs: \(runs.joined(separator: ", "))")
        }
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

    static func runInChild(file: String) throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        child.arguments = Array(CommandLine.arguments.dropFirst()) + ["--in-process"]
        child.standardInput = FileHandle.nullDevice
        try child.run()
        child.waitUntilExit()
        if child.terminationReason == .uncaughtSignal {
            throw ResultsError(.hdf5, file: file, object: "/", operation: "read results file",
                               detail: "libhdf5 crashed reading it (signal \(child.terminationStatus)): the file is damaged or not a results file")
        }
        if child.terminationStatus != 0 { throw ExitCode(child.terminationStatus) }
    }
}
