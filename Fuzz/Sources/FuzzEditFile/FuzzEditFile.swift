import BackpackEditing
import BackpackPrompts
import Foundation
import FuzzSupport

/// Edit files (EditFile.parse) and prompt suites (PronounSuite.load) from arbitrary text.
func fuzzOne(_ data: UnsafeRawBufferPointer) {
    let text = String(decoding: data, as: UTF8.self)
    let url = FuzzIO.file("edit.yaml", data)
    _ = try? EditFile.parse(text, url: url)
    _ = try? PronounSuite.load(url)
}

@main struct Harness {
    static func main() { FuzzIO.main(fuzzOne) }
}
