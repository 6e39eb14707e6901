import BackpackModelFolder
import Foundation

/// Random weights with GPT-2's initialisation, for benchmarks and tests at any size: normal
/// (0, initializer_range) matrices and embeddings, residual projections (`c_proj`) scaled by
/// 1/sqrt(2 L), zero biases, unit LayerNorm gains. Deterministic in the seed.
public enum RandomInitializer {
    public static func parameters(config: BackpackConfig, seed: UInt64) -> ParameterSet {
        var rng = SeededGenerator(seed: seed)
        let std = config.initializerRange ?? 0.02
        let residualStd = std / (2 * Float(config.nLayer)).squareRoot()
        let residual = ParameterTable.residualProjections(config)
        var weights: [String: Weight] = [:]
        for spec in ParameterTable.specs(for: config) {
            let count = spec.shape.reduce(1, *)
            var values = [Float](repeating: 0, count: count)
            switch spec.layout {
            case .vector:
                if spec.name.hasSuffix(".weight") { values = [Float](repeating: 1, count: count) }  // LayerNorm gain
            case .embedding, .conv1D, .linear:
                let s = residual.contains(spec.name) ? residualStd : std
                for i in 0..<count { values[i] = rng.normal() * s }
            }
            weights[spec.name] = Weight(shape: spec.shape, values: values)
        }
        return ParameterSet(config: config, weights: weights)
    }
}
