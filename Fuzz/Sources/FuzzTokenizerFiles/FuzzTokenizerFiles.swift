import BackpackTokenizer
import FuzzSupport

/// Tokenizer files. The first byte picks the format: 0 tokenizer.json, 1 vocab.json + merges.txt
/// (split at the first NUL byte), 2 .tiktoken, 3 GPT2Tokenizer.load(path:) on a .json.
/// A tokenizer that loads must round-trip a few strings it can spell.
func fuzzOne(_ data: UnsafeRawBufferPointer) {
    guard let mode = data.first else { return }
    let rest = UnsafeRawBufferPointer(rebasing: data.dropFirst())
    let tok: GPT2Tokenizer?
    switch mode % 4 {
    case 0: tok = try? GPT2Tokenizer(tokenizerJSON: FuzzIO.file("tokenizer.json", rest))
    case 1:
        let cut = rest.firstIndex(of: 0) ?? rest.endIndex
        let v = FuzzIO.file("vocab.json", UnsafeRawBufferPointer(rebasing: rest[rest.startIndex..<cut]))
        let m = FuzzIO.file("merges.txt", UnsafeRawBufferPointer(rebasing: rest[min(cut + 1, rest.endIndex)...]))
        tok = try? GPT2Tokenizer(vocabulary: v, merges: m)
    case 2: tok = try? GPT2Tokenizer(tiktoken: FuzzIO.file("toy.tiktoken", rest))
    default: tok = try? GPT2Tokenizer.load(path: FuzzIO.file("other.json", rest))
    }
    guard let tok else { return }
    for text in ["", "a", "the cat", " hello world\n", "<|endoftext|>x"] {
        let ids = tok.encode(text)
        for id in ids { _ = tok.piece(id); _ = tok.displayPiece(id) }
        _ = tok.decode(ids)
    }
    _ = tok.decode([-1, 0, 1, Int.max, Int.min])
}

@main struct Harness {
    static func main() { FuzzIO.main(fuzzOne) }
}
