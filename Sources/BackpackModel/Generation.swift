import Foundation

/// Incremental decoding: keys and values of the trunk and the sense-weight keys of past positions
/// are kept (sense vectors come from the model's per-id cache), so each new token costs one
/// position of the trunk.
public final class GenerationSession: @unchecked Sendable {
    public let model: LanguageModel
    public private(set) var ids: [Int] = []
    private let kv: KVCache
    private let senseKeys: Buffer            // (n_positions, d): key half of the sense-weight layer

    public init(model: LanguageModel) {
        self.model = model
        let c = model.config
        kv = KVCache(layers: c.nLayer, capacity: c.nPositions, d: c.nEmbd)
        senseKeys = Buffer(c.nPositions * c.nEmbd)
    }

    /// Feeds tokens (the prompt, then each sampled token); returns the logits after the last (V).
    public func feed(_ new: [Int]) throws -> [Float] {
        try model.validate(new, startPosition: ids.count, source: "generation")
        let d = model.config.nEmbd
        let past = ids.count, m = new.count
        let hc = model.trunk([new], startPosition: past, cache: kv)     // (m, d)
        ids += new
        if let sw = model.senseWeights {
            let qk = sw.queriesAndKeys(hc.pointer, rows: m)               // (m, 2d)
            for i in 0..<m { (senseKeys.pointer + (past + i) * d).update(from: qk.pointer + i * 2 * d + d, count: d) }
            // Only the last position's weights are needed: alpha (k, 1, past+m)
            let alpha = sw.alpha(queries: qk.pointer + (m - 1) * 2 * d, qStride: 2 * d, keys: senseKeys.pointer,
                                 kStride: d, m: 1, past: ids.count - 1)
            // The forward pass's sense sum and output product, for one row.
            let (o, _) = model.senseSum(ids, alpha: alpha, rows: 1, table: model.senseVectors(ids))   // (1, d)
            return model.unembed(o.array)
        }
        // plain GPT-2: logits = LN_f(z) E^T of the last position
        return model.unembed(Array(UnsafeBufferPointer(start: hc.pointer + (m - 1) * d, count: d)))
    }
}

/// Temperature and top-k sampling with a seeded generator (same seed, same text).
public struct Sampler: Sendable {
    public var temperature: Float
    public var topK: Int?
    private var rng: SeededGenerator

    public init(temperature: Float = 1, topK: Int? = nil, seed: UInt64 = 0) {
        self.temperature = temperature; self.topK = topK; rng = SeededGenerator(seed: seed)
    }

    /// Greedy when temperature is 0.
    public mutating func sample(_ logits: [Float]) -> Int {
        if temperature <= 0 { return logits.indices.max { logits[$0] < logits[$1] } ?? 0 }
        var order = Array(logits.indices)
        if let k = topK, k > 0, k < logits.count {
            order.sort { logits[$0] > logits[$1] }
            order = Array(order.prefix(k))
        }
        let maxLogit = order.map { logits[$0] }.max() ?? 0
        let weights = order.map { exp(Double((logits[$0] - maxLogit) / temperature)) }
        let total = weights.reduce(0, +)
        var u = Double(rng.next() >> 11) / Double(1 << 53) * total
        for (i, w) in zip(order, weights) { u -= w; if u <= 0 { return i } }
        return order.last ?? 0
    }
}

/// xoshiro256** seeded by SplitMix64: reproducible across platforms, unlike the system generator.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)
    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }
    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3; s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }
    /// A standard normal draw (Box-Muller).
    public mutating func normal() -> Float {
        let u1 = (Double(next() >> 11) + 1) / Double(1 << 53)
        let u2 = Double(next() >> 11) / Double(1 << 53)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}
