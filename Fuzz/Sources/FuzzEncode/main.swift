import BackpackTokenizer
import Foundation
import FuzzSupport

/// The GPT-2 tokenizer (shared/data/gpt2, else the toy fixture) on arbitrary bytes:
/// encode never traps, and for valid UTF-8, decode(encode(s)) == s.
let tokenizer: GPT2Tokenizer = {
    for dir in [FuzzIO.shared.appendingPathComponent("data/gpt2"), FuzzIO.shared.appendingPathComponent("fixtures/toy-tokenizer")] {
        if let t = try? GPT2Tokenizer.load(from: dir) { return t }
    }
    fatalError("FuzzEncode: no tokenizer under \(FuzzIO.shared.path) (set BACKPACK_SHARED)")
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
