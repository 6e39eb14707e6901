import BackpackExplorer
import BackpackJSON
import BackpackModel
import BackpackTokenizer
import Foundation

extension Benchmark {
    /// Issue 29's targets: the server time of one update of `backpack explore` on a 32-token
    /// text (at most 100 ms on the demo model, 1 s on a 170M one). A slider move keeps the text
    /// (its contextualization is reused) and changes one (token, sense) scale: predictions for
    /// base and intervention plus the attribution of both. A text edit pays the trunk again.
    func explorer(model: LanguageModel, at url: URL, tokenizer: GPT2Tokenizer, into out: inout BenchLines) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("backpack-bench-explore-\(UUID().uuidString.prefix(8))")
        let explorer = try Explorer(model: model, at: url, tokenizer: tokenizer, editsDirectory: folder, resultsFile: folder.appendingPathComponent("r.h5"))
        let passage = "The nurse said that the doctor would be late, because the surgery that morning had taken far longer than anyone on the ward had expected it to take, and"
        // The first 32 tokens of the passage, as text that encodes back to 32 tokens.
        var cut = 32, text = "", ids: [Int] = []
        repeat {
            text = tokenizer.decode(Array(tokenizer.encode(passage).prefix(cut)))
            ids = tokenizer.encode(text)
            cut += 1
        } while ids.count < 32 && cut < 40
        let noun = ids[1], k = model.isBackpack ? model.config.senses : 0
        func update(_ scale: Double, text: String) throws {
            let item = JSONValue.object([("tokens", .array([.integer(noun)])), ("senses", .array([.integer(min(10, max(k - 1, 0)))])),
                                         ("scale", .double(scale))])
            let interventions = try RequestInterventions.parse(.array([item]), loaded: [])
            _ = try explorer.predict(text: text, topK: 10, interventions: interventions)
            if model.isBackpack { _ = try explorer.attribute(text: text, pair: ["he", "she"], interventions: interventions) }
        }
        try update(0.5, text: text)
        var slider: [Double] = [], edit: [Double] = []
        for i in 0..<max(runs * 4, 20) {
            let t0 = Date()
            try update(Double(i) / 10 + 0.05, text: text)
            slider.append(Date().timeIntervalSince(t0))
        }
        for i in 0..<max(runs, 5) {
            let t0 = Date()
            try update(0.5, text: text + String(repeating: " and", count: i % 3 + 1) + " \(i)")
            edit.append(Date().timeIntervalSince(t0))
        }
        func median(_ x: [Double]) -> Double { let s = x.sorted(); return s[s.count / 2] }
        say(String(format: "explore update (%d-token text): slider move median %.1f ms, max %.1f ms; text edit median %.1f ms (target <= 100 ms on the demo model, <= 1 s at 170M)",
                   ids.count, 1000 * median(slider), 1000 * (slider.max() ?? 0), 1000 * median(edit)))
        out.add(["name": "explore_update", "tokens": ids.count, "seconds": median(slider), "samples": slider, "stat": "median",
                 "text_edit_seconds": median(edit), "text_edit_samples": edit])
    }
}
