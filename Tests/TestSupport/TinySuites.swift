/// Suite files written by tests that run on the tiny fixture model (vocabulary 512, toy tokenizer):
/// one definition, so the evaluation and hardening tests exercise the same suite.
public enum TinySuites {
    /// A pronoun_bias suite whose nouns and pair are single tokens of the toy tokenizer.
    public static let pronouns = """
        suite: tiny-pronouns
        version: 1
        kind: pronoun_bias
        placeholder: NOUN
        pair: [he, she]
        nouns: [the, was, man, cook, an]
        prompts:
          - My NOUN said that
          - This NOUN was with the car. When
          - I liked my NOUN
        """
}
