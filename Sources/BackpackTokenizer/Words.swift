// The project's one word-to-token rule. A word inside running text is preceded by a space, and
// GPT-2's BPE makes " word" one token for common words (the paper keeps a profession only when
// " " + noun is a single token). Edits, suites, localization and the command line all ask here.

extension GPT2Tokenizer {
    /// The tokens of `word` as it appears after a space in running text (" " + word).
    public func wordTokens(_ word: String) -> [Int] { encode(" " + word) }

    /// The one token of " " + word, or nil when it is several (or none).
    public func singleToken(_ word: String) -> Int? {
        let ids = wordTokens(word)
        return ids.count == 1 ? ids[0] : nil
    }
}
