import BackpackTokenizer
import Foundation
import FuzzSupport

/// The built-in GPT-2 tokenizer (else the toy fixture) on arbitrary bytes:
/// encode never traps, and for valid UTF-8, decode(encode(s)) == s.
let tokenizer: GPT2Tokenizer = {
    if let t = try? GPT2Tokenizer.builtinGPT2() { return t }
    if let t = try? GPT2Tokenizer.load(from: FuzzIO.repository.appendingPathComponent("Tests/Fixtures/toy-tokenizer")) { return t }
    // A harness without its tokenizer cannot fuzz anything: a setup error of the checkout, not input.
    fatalError("FuzzEncode: neither the built-in GPT-2 tokenizer nor Tests/Fixtures/toy-tokenizer under \(FuzzIO.repository.path)")
}()

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    if let s = String(validating: data, as: UTF8.self) {
        let ids = tokenizer.encode(s)
        let back = tokenizer.decode(ids)
        if back != s {
            fatalError("round trip failed: \(Array(s.utf8)) -> \(ids) -> \(Array(back.utf8))")
        }
    } else {
        let ids = tokenizer.encode(String(decoding: data, as: UTF8.self))
        _ = tokenizer.decodeBytes(ids)
    }
}

@main struct Harness {
    static func main() { FuzzIO.main(fuzzOne) }
}
