import ArgumentParser
import BackpackModel
import Foundation

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Token ids and pieces of a text.")

    @OptionGroup var options: ModelOptions
    @Option(help: "The text to tokenize.") var text: String?
    /// The first spelling (`backpack tokenize TEXT`), kept for scripts.
    @Argument(help: .hidden) var positionalText: String?
    @Flag(help: "Print only the ids, comma-separated (for --ids).") var idsOnly = false

    func validate() throws {
        if (text == nil) == (positionalText == nil) { throw ValidationError("give the text once, with --text") }
    }

    func run() throws {
        let tokenizer = try options.loadTokenizer(for: nil)
        let ids = tokenizer.encode(text ?? positionalText ?? "")
        if idsOnly { print(ids.map(String.init).joined(separator: ",")); return }
        print("\(ids.count) tokens")
        for id in ids { print("\(String(id).padding(toLength: 7, withPad: " ", startingAt: 0)) \(show(tokenizer, id))") }
    }
}
