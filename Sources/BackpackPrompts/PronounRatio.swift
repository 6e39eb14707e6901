import Foundation

/// The paper's per-prompt bias of a pronoun prompt, max(p_a/p_b, p_b/p_a): 1 when the model
/// is indifferent. Its one definition, read by the pronoun-bias evaluation (`Metrics.pronounRatio`)
/// and by fit_scale's objective alike.
public enum PronounRatio {
    /// exp(|d|) for d = log p_a - log p_b (equally, logit_a - logit_b: the softmax's normaliser cancels).
    public static func of(logDifference d: Double) -> Double { Foundation.exp(abs(d)) }
}
