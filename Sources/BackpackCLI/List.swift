import ArgumentParser
import BackpackWorkflows
import Foundation

struct List: ParsableCommand {
    enum Topic: String, ExpressibleByArgument, CaseIterable { case suites, edits, models }

    static let configuration = CommandConfiguration(
        abstract: "List the suites and edit files that ship, or the models in the Hugging Face cache.",
        discussion: "suites: Evaluations/*.yaml (name for --suite, kind, description). edits: Edits/*.yaml (name, Edits/NAME.yaml for --edit, description). models: the Hugging Face cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub), each for --model ORG/NAME[@REVISION].")

    @Argument(help: "suites, edits or models") var topic: Topic

    func run() throws {
        let items: [Catalog.Item]
        switch topic {
        case .suites, .edits:
            guard let checkout = Toolkit.checkout() else {
                throw ValidationError("the repository's Evaluations/ and Edits/ folders were not found (run from the checkout)")
            }
            items = topic == .suites ? try Catalog.suites(in: checkout.appendingPathComponent("Evaluations"))
                                     : try Catalog.edits(in: checkout.appendingPathComponent("Edits"))
        case .models:
            items = Catalog.models()
            if items.isEmpty { print("no models in the Hugging Face cache (`backpack download ORG/NAME` fetches one)") }
        }
        print(Self.render(items))
    }

    /// Name and detail in aligned columns, the description after them, wrapped at 100 columns
    /// under itself.
    static func render(_ items: [Catalog.Item]) -> String {
        let nameWidth = items.map(\.name.count).max() ?? 0, detailWidth = items.map(\.detail.count).max() ?? 0
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        let indent = nameWidth + 2 + (detailWidth > 0 ? detailWidth + 2 : 0)
        return items.map { item in
            let head = pad(item.name, nameWidth + 2) + (detailWidth > 0 ? pad(item.detail, detailWidth + 2) : "")
            return head + wrap(item.description, width: max(40, 100 - indent)).joined(separator: "\n" + String(repeating: " ", count: indent))
        }.joined(separator: "\n")
    }

    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = [], line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty && line.count + 1 + word.count > width { lines.append(line); line = "" }
            line += (line.isEmpty ? "" : " ") + word
        }
        return lines + [line]
    }
}
