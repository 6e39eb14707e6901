import BackpackEditing
import Foundation
import FuzzSupport

/// Edit files (EditFile.parse) and prompt suites (PronounSuite.load) from arbitrary text.
func fuzzOne(_ data: UnsafeRawBufferPointer) {
    let text = String(decoding: data, as: UTF8.self)
    let url = FuzzIO.file("edit.yaml", data)
    _ = try? EditFile.parse(text, url: url)
    _ = try? PronounSuite.load(url)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main struct Harness {
    static func main() {
        #if FUZZING
        FuzzIO.runFuzzer(LLVMFuzzerTestOneInput)
        #else
        FuzzIO.replay(CommandLine.arguments.dropFirst(), fuzzOne)
        #endif
    }
}
