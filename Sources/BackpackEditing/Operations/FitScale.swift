import BackpackModel
import BackpackPrompts
import BackpackTokenizer
import BackpackYAML
import Foundation

/// `fit_scale: {suite: FILE, pair: [he, she]}` (Optimize-Sense10): per word, the scale s of its
/// selected senses minimising bias(prompts) + |1 - s|, bias = mean exp(|logit_a - logit_b|) at
/// the last position of each prompt; then C(w)_l' = s C(w)_l. Without `words:` it edits the
/// suite's `nouns`.
///
/// Linearity: o_last(s) = o_last + (s - 1) Δ with Δ = Σ_{l∈S} Σ_{j: ids_j = w} alpha[l, last, j] C(w)_l,
/// so one batched forward pass gives g_p = (E_a - E_b).o and h_p = (E_a - E_b).Δ per prompt and
/// each objective evaluation is O(prompts).
public struct FitScale: EditOperation {
    public static let name = "fit_scale"
    public static let keys = ["suite", "pair"]
    public static let scopes: Set<EditScope> = [.words]
    public static let scopeNote: String? = "it fits one scale per word"
    public static let hasOwnWords = true

    /// The pronoun suite's path, relative to the edit file.
    public let suite: String
    public let a: WordRef
    public let b: WordRef
    public let place: SourcePlace

    public init(yaml node: YAMLNode, reader r: YAMLReader) throws {
        let m = try r.mapping(node, Self.name, allowed: Self.keys, form: "{suite: ../Evaluations/pronoun-fit.yaml, pair: [he, she]}")
        guard let s = m["suite"] else { throw EditError(r.place(node), "fit_scale: missing `suite:` (a pronoun suite YAML with prompts, placeholder, nouns)") }
        (a, b) = try m["pair"].map { try r.pair($0, "fit_scale pair") } ?? (.word("he", r.place(node)), .word("she", r.place(node)))
        suite = try r.path(s, "suite")
        place = r.place(s)
    }

    public func resolve(_ context: inout OperationResolution) throws -> any ResolvedEditOperation {
        guard context.tokenizer != nil else { throw EditError(place, "fit_scale needs a tokenizer (its prompts are text)") }
        let loaded = try context.suite(suite, at: place, what: "fit_scale suite")
        return Resolved(suite: loaded, a: try context.token(a, "fit_scale pair word"), b: try context.token(b, "fit_scale pair word"))
    }

    struct Resolved: ResolvedEditOperation {
        let suite: PronounSuite
        let a: Int
        let b: Int

        func ownWords(at place: SourcePlace) throws -> [WordRef] {
            guard !suite.nouns.isEmpty else { throw EditError(place, "fit_scale without `words:` uses the suite's `nouns`, and the suite has none") }
            return suite.nouns
        }

        func effect(_ context: OperationApplication) throws -> OperationEffect {
            guard let tokenizer = context.tokenizer else { throw EditError(context.place, "fit_scale needs a tokenizer") }
            let fits = try FitScale.fit(model: context.model, tokenizer: tokenizer, suite: suite, tokens: context.tokens,
                                        words: context.tokens.map(context.label), senses: context.senses, a: a, b: b)
            var maps: [Int: SenseMaps] = [:]
            for fit in fits { maps[fit.token] = context.senses.map { ($0, .scale(Float(fit.scale))) } }
            var effect = OperationEffect(.perToken(maps), note: ": " + fits.map { "\($0.word) s=\(String(format: "%.4f", $0.scale))" }.joined(separator: ", "))
            effect.fitted = fits
            return effect
        }
    }

    public static func bias(g: [Double], h: [Double], scale s: Double) -> Double {
        zip(g, h).reduce(0) { $0 + PronounRatio.of(logDifference: $1.0 + (s - 1) * $1.1) } / Double(max(g.count, 1))
    }

    public static func objective(g: [Double], h: [Double], scale s: Double) -> Double {
        bias(g: g, h: h, scale: s) + abs(1 - s)
    }

    /// The prompts' (g, h) terms for one token.
    public static func terms(model: LanguageModel, prompts: [[Int]], token: Int, senses: [Int], a: Int, b: Int) throws -> (g: [Double], h: [Double]) {
        let outputs = try model.forward(batch: prompts, options: ForwardOptions(logits: .none, contextualization: true))
        return terms(model: model, prompts: prompts, outputs: outputs, token: token, senses: senses, a: a, b: b)
    }

    /// The (g, h) terms from forward outputs (o and alpha) of the prompts.
    static func terms(model: LanguageModel, prompts: [[Int]], outputs: [ForwardOutput], token: Int, senses: [Int],
                      a: Int, b: Int) -> (g: [Double], h: [Double]) {
        let d = model.config.nEmbd
        let c = model.senseVectors([token])[token] ?? []
        let diff = zip(model.embeddingRow(a), model.embeddingRow(b)).map { Double($0) - Double($1) }
        var g: [Double] = [], h: [Double] = []
        for (ids, out) in zip(prompts, outputs) {
            let n = ids.count, last = n - 1
            guard let alpha = out.contextualization else { continue }
            var go = 0.0
            for i in 0..<d { go += diff[i] * Double(out.hidden[last * d + i]) }
            var ho = 0.0
            for l in senses {
                var weight = 0.0
                for j in 0..<n where ids[j] == token { weight += Double(alpha[(l * n + last) * n + j]) }
                if weight == 0 { continue }
                var proj = 0.0
                for i in 0..<d { proj += diff[i] * Double(c[l * d + i]) }
                ho += weight * proj
            }
            g.append(go); h.append(ho)
        }
        return (g, h)
    }

    /// Every word's scale, each fitted on its own against the unedited model; all words' prompts
    /// share one batched forward pass (the pass, not the 1-D searches, is the cost). `words`
    /// names the tokens in the records.
    public static func fit(model: LanguageModel, tokenizer: GPT2Tokenizer, suite: PronounSuite, tokens: [Int], words: [String],
                           senses: [Int], a: Int, b: Int) throws -> [FittedScale] {
        let promptsPerToken = tokens.map { token in suite.prompts.map { suite.ids(prompt: $0, word: [token], tokenizer: tokenizer) } }
        if let long = promptsPerToken.joined().first(where: { $0.count > model.config.nPositions }) {
            throw EditError(file: suite.url.path, "a prompt is \(long.count) tokens, longer than n_positions")
        }
        let outputs = try model.forward(batch: Array(promptsPerToken.joined()),
                                        options: ForwardOptions(logits: .none, contextualization: true))
        var results: [FittedScale] = [], offset = 0
        for (token, (word, prompts)) in zip(tokens, zip(words, promptsPerToken)) {
            let mine = Array(outputs[offset..<(offset + prompts.count)])
            offset += prompts.count
            let (g, h) = terms(model: model, prompts: prompts, outputs: mine, token: token, senses: senses, a: a, b: b)
            let (s, evals) = NelderMead.minimize1D(start: 1) { objective(g: g, h: h, scale: $0) }
            results.append(FittedScale(token: token, word: word, scale: s, biasBefore: bias(g: g, h: h, scale: 1),
                                       biasAfter: bias(g: g, h: h, scale: s), objectiveAtOne: objective(g: g, h: h, scale: 1),
                                       objective: objective(g: g, h: h, scale: s), evaluations: evals))
        }
        return results
    }
}

/// scipy.optimize.minimize(method="Nelder-Mead") for one variable, with scipy's defaults:
/// initial simplex x0 and x0 * 1.05 (0.00025 if x0 = 0), xatol = fatol = 1e-4, 200 iterations,
/// reflection 1, expansion 2, contraction 0.5, shrink 0.5. Deterministic.
public enum NelderMead {

    public static func minimize1D(start x0: Double, xatol: Double = 1e-4, fatol: Double = 1e-4, maxIterations: Int = 200,
                                  _ f: (Double) -> Double) -> (x: Double, evaluations: Int) {
        var evaluations = 0
        func F(_ x: Double) -> Double { evaluations += 1; let v = f(x); return v.isNaN ? .infinity : v }
        var sim = [x0, x0 != 0 ? x0 * 1.05 : 0.00025]
        var fsim = [F(sim[0]), F(sim[1])]
        func sort() { if fsim[1] < fsim[0] { sim.swapAt(0, 1); fsim.swapAt(0, 1) } }
        sort()
        let maxEvaluations = maxIterations
        var iterations = 1
        while evaluations < maxEvaluations && iterations < maxIterations {
            if abs(sim[1] - sim[0]) <= xatol && abs(fsim[0] - fsim[1]) <= fatol { break }
            let xbar = sim[0]
            let xr = 2 * xbar - sim[1]
            let fxr = F(xr)
            var shrink = false
            if fxr < fsim[0] {
                let xe = 3 * xbar - 2 * sim[1]
                let fxe = F(xe)
                if fxe < fxr { sim[1] = xe; fsim[1] = fxe } else { sim[1] = xr; fsim[1] = fxr }
            } else if fxr < fsim[0] {
                sim[1] = xr; fsim[1] = fxr  // (N = 1: fsim[-2] is fsim[0])
            } else {
                if fxr < fsim[1] {
                    let xc = 1.5 * xbar - 0.5 * sim[1]
                    let fxc = F(xc)
                    if fxc <= fxr { sim[1] = xc; fsim[1] = fxc } else { shrink = true }
                } else {
                    let xcc = 0.5 * xbar + 0.5 * sim[1]
                    let fxcc = F(xcc)
                    if fxcc < fsim[1] { sim[1] = xcc; fsim[1] = fxcc } else { shrink = true }
                }
                if shrink { sim[1] = sim[0] + 0.5 * (sim[1] - sim[0]); fsim[1] = F(sim[1]) }
            }
            iterations += 1
            sort()
        }
        return (sim[0], evaluations)
    }
}
