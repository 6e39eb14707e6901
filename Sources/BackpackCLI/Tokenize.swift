import ArgumentParser
import BackpackModel
import Foundation

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Token ids and pieces of a text.")

    @OptionGroup var options: ModelOptions
    @Argument(help: "The text to tokenize.") var text: String
    @Flag(help: "Print only the ids, comma-separated (for --ids).") var idsOnly = false

    func run() throws {
        let tokenizer = try options.loadTokenizer(for: nil)
        let ids = tokenizer.encode(text)
        if idsOnly { print(ids.map(String.init).joined(separator: ",")); return }
        print("\(ids.count) tokens")
        for id in ids { print("\(String(id).padding(toLength: 7, withPad: " ", startingAt: 0)) \(show(tokenizer, id))") }
    }
}
