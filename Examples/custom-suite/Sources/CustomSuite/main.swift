import BackpackEvaluation
import BackpackResults
import BackpackWorkflows
import Foundation

// Registers the kind, then evaluates a suite of that kind and the shipped pronoun-bias suite on
// a model (default: the toolkit's embedded demo model), base and each edit file given, into one
// HDF5 results file, as `backpack eval` would.
//   swift run CustomSuite [MODEL_DIR] [EDIT.yaml ...]
let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let toolkit = here.deletingLastPathComponent().deletingLastPathComponent()
let arguments = Array(CommandLine.arguments.dropFirst())
let modelPath = arguments.first ?? toolkit.appendingPathComponent("Models/backpack-demo").path
let edits = Array(arguments.dropFirst())
do {
    try SuiteKinds.register(NextWord.self)
    let out = here.appendingPathComponent("custom-results.h5")
    try? FileManager.default.removeItem(at: out)
    let request = EvaluationRequest(model: URL(fileURLWithPath: modelPath),
                                    suites: [here.appendingPathComponent("Evaluations/capitals.yaml").path,
                                             toolkit.appendingPathComponent("Evaluations/pronoun-bias.yaml").path],
                                    edits: edits, out: out)
    let outcome = try request.run()
    for v in outcome.variants {
        for s in v.suites {
            let values = s.headlineValues.map { String(format: "%@ %.4f", $0.0, $0.1) }.joined(separator: "  ")
            print("\(v.variant)  \(s.suiteName)  \(values)")
        }
    }
    print("wrote \(out.path)")
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
