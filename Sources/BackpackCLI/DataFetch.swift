import ArgumentParser
import BackpackEvaluation
import BackpackHub
import BackpackWorkflows
import Foundation

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Manage external evaluation data sets.",
                                                    subcommands: [DataFetch.self])
}

struct DataFetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Download a suite's data set from the URL its suite file names, verify its SHA-256 and cache it under ~/.cache/backpack-edit/.",
        discussion: "The suite file (Evaluations/NAME.yaml) is the one list of sources: its data_file, url and sha256. A zip archive's member named like data_file is extracted and checked.")

    @Argument(help: "Suite name (Evaluations/NAME.yaml, e.g. crows-pairs, lambada or wikitext) or suite file.") var suite: String
    @Option(name: .long, help: "Cache directory (default ~/.cache/backpack-edit, or BACKPACK_CACHE).") var cacheDir: String?
    @Option(name: .long, help: "Download from this URL instead of the suite's (mirrors, tests; BACKPACK_DATA_ENDPOINT replaces the scheme and host of every suite's URL).") var url: String?
    @Option(name: .long, help: "Seconds before giving up on the download.") var timeout: Int = 60

    func run() throws {
        let data = try SuiteDataFetch(try Suite.resolve(suite, evaluationsDirectory: Toolkit.evaluationsDirectory()))
        let cache = cacheDir.map { URL(fileURLWithPath: $0) } ?? DataLocations.defaultCache
        try data.fetch(from: try url ?? data.address(), cache: cache, timeout: timeout, progress: ProgressDisplay()) { print($0) }
    }
}
