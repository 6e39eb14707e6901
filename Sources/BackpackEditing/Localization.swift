import BackpackModel
import BackpackPrompts
import BackpackTokenizer
import Foundation

/// Which senses carry a contrast such as he/she: the contribution of sense l of word w to
/// logit(a) - logit(b) is (E_a - E_b) . C(w)_l; senses are ranked by |mean over words|.
public struct LocalizationTable: Sendable, Codable {
    public let a: Int
    public let b: Int
    public let tokens: [Int]
    /// Ranked, most contributing first.
    public let senses: [LocalizedSense]
    /// perWord[w][l] = (E_a - E_b) . C(tokens[w])_l
    public let perWord: [[Double]]
}

public enum Localization {
    public static func rank(model: LanguageModel, tokens: [Int], a: Int, b: Int) -> LocalizationTable {
        let d = model.config.nEmbd, k = model.config.senses
        let ea = model.embeddingRow(a), eb = model.embeddingRow(b)
        let diff = zip(ea, eb).map { Double($0) - Double($1) }
        let vectors = model.senseVectors(tokens)
        var perWord: [[Double]] = []
        for id in tokens {
            let v = vectors[id] ?? [Float](repeating: 0, count: k * d)
            perWord.append((0..<k).map { l in
                var s = 0.0
                for i in 0..<d { s += diff[i] * Double(v[l * d + i]) }
                return s
            })
        }
        return table(perWord: perWord, senses: k, tokens: tokens, a: a, b: b)
    }

    /// Senses ranked by |mean over words| of perWord[w][l] (ties: lower index first).
    static func table(perWord: [[Double]], senses k: Int, tokens: [Int], a: Int, b: Int) -> LocalizationTable {
        let n = Double(max(tokens.count, 1))
        let senses = (0..<k).map { l in
            LocalizedSense(sense: l, mean: perWord.reduce(0) { $0 + $1[l] } / n,
                           meanAbsolute: perWord.reduce(0) { $0 + abs($1[l]) } / n)
        }.sorted { abs($0.mean) != abs($1.mean) ? abs($0.mean) > abs($1.mean) : $0.sense < $1.sense }
        return LocalizationTable(a: a, b: b, tokens: tokens, senses: senses, perWord: perWord)
    }

    /// Which senses separate two groups of words (erase's first and second pair words) along a
    /// contrast: ranked by |mean over `first` - mean over `second`| of (E_a - E_b) . C(w)_l, the
    /// class-mean difference that erasure removes, seen through logit(a) - logit(b). `mean` is that
    /// difference; `meanAbsolute` the mean of |(E_a - E_b) . C(w)_l| over both groups.
    public static func rankSeparation(model: LanguageModel, first: [Int], second: [Int], a: Int, b: Int) -> [LocalizedSense] {
        let one = rank(model: model, tokens: first, a: a, b: b), two = rank(model: model, tokens: second, a: a, b: b)
        let k = model.config.senses
        let all = one.perWord + two.perWord
        let n = Double(max(all.count, 1))
        func mean(_ rows: [[Double]], _ l: Int) -> Double { rows.reduce(0) { $0 + $1[l] } / Double(max(rows.count, 1)) }
        return (0..<k).map { l in
            LocalizedSense(sense: l, mean: mean(one.perWord, l) - mean(two.perWord, l),
                           meanAbsolute: all.reduce(0) { $0 + abs($1[l]) } / n)
        }.sorted { abs($0.mean) != abs($1.mean) ? abs($0.mean) > abs($1.mean) : $0.sense < $1.sense }
    }
}

extension Localization {
    /// The contextual ranking: the contribution of sense l of word w is its attributed share of
    /// log p(a) - log p(b) at the noun's position, averaged over the suite's prompts with w in
    /// place of the placeholder,  mean_p sum_{j: x_j = w} alpha[l, n-1, j] (E_a - E_b) . C(w)_l
    /// (SenseAttribution), so alpha (how much the prediction reads sense l of the noun) counts as
    /// well as the sense's direction. Senses are ranked by |mean over words| as in `rank`.
    public static func rankContextual(model: LanguageModel, tokens: [Int], a: Int, b: Int, suite: PronounSuite,
                                      tokenizer: GPT2Tokenizer) throws -> LocalizationTable {
        let k = model.config.senses
        let prompts = suite.prompts.map { p in tokens.map { suite.ids(prompt: p, word: [$0], tokenizer: tokenizer) } }
        if let long = prompts.joined().first(where: { $0.count > model.config.nPositions }) {
            throw EditError(file: suite.url.path, "a prompt is \(long.count) tokens, longer than n_positions (\(model.config.nPositions))")
        }
        var perWord = [[Double]](repeating: [Double](repeating: 0, count: k), count: tokens.count)
        // Prompt by prompt: one batch holds every word in one template (shared prefixes), and the
        // (k, n, d) sense tensors of a batch stay small.
        for batch in prompts {
            for (w, attribution) in try model.attributions(batch: batch, a: a, b: b).enumerated() {
                let noun = attribution.split(at: [tokens[w]]).noun
                for l in 0..<k { perWord[w][l] += noun[l] / Double(prompts.count) }
            }
        }
        return table(perWord: perWord, senses: k, tokens: tokens, a: a, b: b)
    }
}

/// Optimize-Sense10: per word, the scale s of its chosen senses minimising
/// bias(prompts) + |1 - s|, bias = mean exp(|logit_a - logit_b|) at the last position.
/// Linearity: o_last(s) = o_last + (s - 1) Δ with Δ = Σ_{l∈S} Σ_{j: ids_j = w} alpha[l, last, j] C(w)_l,
/// so one batched forward pass gives g_p = (E_a - E_b).o and h_p = (E_a - E_b).Δ per prompt and
/// each objective evaluation is O(prompts).
public enum FitScale {
    public struct Result: Sendable {
        public let scale: Double
        public let biasBefore: Double
        public let biasAfter: Double
        public let objectiveAtOne: Double
        public let objective: Double
        public let evaluations: Int
        /// Per prompt: (E_a - E_b).o at s = 1 and the slope (E_a - E_b).Δ.
        public let g: [Double]
        public let h: [Double]
    }

    public static func bias(g: [Double], h: [Double], scale s: Double) -> Double {
        zip(g, h).reduce(0) { $0 + exp(abs($1.0 + (s - 1) * $1.1)) } / Double(max(g.count, 1))
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

    public static func fit(model: LanguageModel, tokenizer: GPT2Tokenizer, suite: PronounSuite, token: Int,
                           senses: [Int], a: Int, b: Int) throws -> Result {
        try fit(model: model, tokenizer: tokenizer, suite: suite, tokens: [token], senses: senses, a: a, b: b)[0]
    }

    /// Every word's scale, each fitted on its own against the unedited model; all words' prompts
    /// share one batched forward pass (the pass, not the 1-D searches, is the cost).
    public static func fit(model: LanguageModel, tokenizer: GPT2Tokenizer, suite: PronounSuite, tokens: [Int],
                           senses: [Int], a: Int, b: Int) throws -> [Result] {
        let promptsPerToken = tokens.map { token in suite.prompts.map { suite.ids(prompt: $0, word: [token], tokenizer: tokenizer) } }
        if let long = promptsPerToken.joined().first(where: { $0.count > model.config.nPositions }) {
            throw EditError(file: suite.url.path, "a prompt is \(long.count) tokens, longer than n_positions")
        }
        let outputs = try model.forward(batch: Array(promptsPerToken.joined()),
                                        options: ForwardOptions(logits: .none, contextualization: true))
        var results: [Result] = [], offset = 0
        for (token, prompts) in zip(tokens, promptsPerToken) {
            let mine = Array(outputs[offset..<(offset + prompts.count)])
            offset += prompts.count
            let (g, h) = terms(model: model, prompts: prompts, outputs: mine, token: token, senses: senses, a: a, b: b)
            let (s, evals) = NelderMead.minimize1D(start: 1) { objective(g: g, h: h, scale: $0) }
            results.append(Result(scale: s, biasBefore: bias(g: g, h: h, scale: 1), biasAfter: bias(g: g, h: h, scale: s),
                                  objectiveAtOne: objective(g: g, h: h, scale: 1), objective: objective(g: g, h: h, scale: s),
                                  evaluations: evals, g: g, h: h))
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
