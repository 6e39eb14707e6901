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

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#else
@main struct Replay {
    static func main() { FuzzIO.replay(CommandLine.arguments.dropFirst(), fuzzOne) }
}
#endif
