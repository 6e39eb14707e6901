import BackpackCheckpoint
import FuzzSupport

/// The safetensors header (length prefix + JSON) and, when it opens, every tensor read.
func fuzzOne(_ data: UnsafeRawBufferPointer) {
    let url = FuzzIO.file("input.safetensors", data)
    guard let f = try? SafetensorsFile(url: url) else { return }
    for (name, info) in f.tensors where info.count <= 1 << 20 {
        if info.dtype.isFloatingPoint { _ = try? f.floats(name) } else { _ = try? f.ints(name) }
    }
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
