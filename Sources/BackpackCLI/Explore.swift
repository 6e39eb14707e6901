import ArgumentParser
import BackpackExplorer
import Foundation

struct Explore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A local web page to explore senses, attribution and live edits (docs/EXPLORE.md).",
        discussion: """
            Starts a web server on this machine and prints, as its first line, the URL to open: \
            http://HOST:PORT/?token=TOKEN. Every API call needs the token; the server answers only requests whose \
            Host names it and whose Origin, if any, is its own page. Stop it with Ctrl-C.
            """)

    @OptionGroup var options: ModelOptions
    @Option(name: .customLong("edit"), help: "An edit file shown on the page as a switch (by its file name). Repeatable; switched-on files compose in order with the sliders.")
    var edits: [String] = []
    @Option(help: "The port (0: a free one).") var port = 0
    @Option(help: "The address to bind. Anything but a loopback address exposes the page and the model to the network (the token still guards the API).")
    var host = "127.0.0.1"
    @Option(help: "Where \"Save as edit file\" writes; \".\" is the working directory.") var editsDir = "."
    @Option(help: "The results file the page's evaluations append to (as backpack eval --out).") var out = "backpack-results.h5"
    @Option(help: "Computations run at once (further requests wait; 503 when 32 wait).") var slots = 2

    func validate() throws {
        if !(0...65535).contains(port) { throw ValidationError("--port: expected 0 to 65535, got \(port)") }
        if !(1...64).contains(slots) { throw ValidationError("--slots: expected 1 to 64, got \(slots)") }
    }

    func run() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: editsDir, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--edits-dir: \(editsDir) is not a folder")
        }
        let explorer = try Explorer(model: try options.url(), tokenizer: options.tokenizer, edits: edits,
                                    editsDirectory: URL(fileURLWithPath: editsDir).standardizedFileURL,
                                    resultsFile: URL(fileURLWithPath: out).standardizedFileURL)
        let server = ExplorerServer(explorer: explorer, host: host, port: port, slots: slots)
        try server.runBlocking { server in
            // Written straight to the descriptor: the first line must reach a pipe at once.
            FileHandle.standardOutput.write(Data((server.url + "\n" + "model \(explorer.modelURL.path); edits: \(explorer.edits.map(\.name).joined(separator: ", ").nonEmpty ?? "none"); saving to \(explorer.editsDirectory.path); results in \(explorer.resultsFile.path). Ctrl-C stops.\n").utf8))
        }
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
