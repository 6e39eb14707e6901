import ArgumentParser
import BackpackWorkflows
import Foundation
import BackpackModel

@main
struct Backpack: ParsableCommand {
    static let version = Toolkit.version
    static let configuration = CommandConfiguration(
        commandName: "backpack",
        abstract: "Inspect, edit and evaluate Backpack language models.",
        discussion: """
            A Backpack LM represents each token as k sense vectors; a GPT-2 trunk only weights them. \
            Without --model, commands use the embedded demo model (Models/backpack-demo). \
            --model takes a model directory or a Hugging Face repository ORG/NAME[@REVISION], read from the \
            Hugging Face cache (`backpack download ORG/NAME` fetches it; docs/HUB.md).
            """,
        version: version,
        subcommands: [Info.self, Tokenize.self, Senses.self, Localize.self, Attribute.self, Edit.self, Eval.self, Merge.self, Report.self,
                      Forward.self, Generate.self, Explore.self, Init.self, DataCommand.self, Download.self, List.self, Bench.self, Reproduce.self])

    static func main() {
        MemoryPolicy.returnLargeBuffersPromptly()
        main(nil)
    }
}
