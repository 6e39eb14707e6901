import BackpackModelFolder
import FuzzSupport

/// config.json decoding and validation (BackpackConfig.load).
func fuzzOne(_ data: UnsafeRawBufferPointer) {
    let url = FuzzIO.file("config.json", data)
    guard let c = try? BackpackConfig.load(url) else { return }
    _ = try? c.jsonData()
}

@main struct Harness {
    static func main() { FuzzIO.main(fuzzOne) }
}
