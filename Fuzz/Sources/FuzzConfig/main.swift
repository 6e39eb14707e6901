import BackpackModel
import FuzzSupport

/// config.json decoding and validation (BackpackConfig.load).
func fuzzOne(_ data: UnsafeRawBufferPointer) {
    let url = FuzzIO.file("config.json", data)
    guard let c = try? BackpackConfig.load(url) else { return }
    _ = try? c.jsonData()
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
