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

@main struct Harness {
    static func main() { FuzzIO.main(fuzzOne) }
}
