import BackpackCheckpoint
import FuzzSupport

/// pytorch_model.bin: zip central directory + restricted unpickler, then every tensor read.
func fuzzOne(_ data: UnsafeRawBufferPointer) {
    let url = FuzzIO.file("pytorch_model.bin", data)
    guard let t = try? TorchCheckpoint(url: url) else { return }
    for (name, info) in t.tensors where info.count <= 1 << 20 {
        if info.dtype.isFloatingPoint { _ = try? t.floats(name) } else { _ = try? t.ints(name) }
    }
}

@main struct Harness {
    static func main() { FuzzIO.main(fuzzOne) }
}
