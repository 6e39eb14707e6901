import BackpackCheckpoint
import BackpackModelFolder
import Foundation

/// A float32 parameter with a stable address: either a view into a memory-mapped checkpoint
/// (kept alive by `owner`) or memory of its own (converted from F16/BF16, or edited).
public struct Weight: @unchecked Sendable {
    public let shape: [Int]
    /// The values in place (memory-mapped or owned); unsafe pointers stay inside this module.
    let pointer: UnsafePointer<Float>
    public var count: Int { shape.reduce(1, *) }
    private let storage: Storage

    final class Storage: @unchecked Sendable {
        let owned: UnsafeMutablePointer<Float>?
        let owner: AnyObject?
        init(owned: UnsafeMutablePointer<Float>?, owner: AnyObject?) { self.owned = owned; self.owner = owner }
        deinit { owned?.deallocate() }
    }

    public init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "programmer error: values do not fill the shape")
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { p.initialize(from: base, count: values.count) }
        }
        self.shape = shape
        pointer = UnsafePointer(p)
        storage = Storage(owned: p, owner: nil)
    }

    /// A view into memory owned by `owner` (for example a mapped checkpoint).
    init(shape: [Int], borrowing pointer: UnsafePointer<Float>, owner: AnyObject) {
        self.shape = shape
        self.pointer = pointer
        storage = Storage(owned: nil, owner: owner)
    }

    public var values: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
    public var buffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: pointer, count: count) }
}

/// How a parameter is stored in the checkpoint. GPT-2's `Conv1D` keeps (in, out) so that
/// y = x W + b; `nn.Linear` keeps (out, in). This list is the one place that says which is which.
public enum ParameterLayout: Sendable { case vector, embedding, conv1D, linear }

public struct ParameterSpec: Sendable {
    public let name: String
    public let shape: [Int]
    public let layout: ParameterLayout
}

/// The exact set of parameters an architecture needs, with the checkpoint's names and shapes.
public enum ParameterTable {
    public static func trunkPrefix(_ config: BackpackConfig) -> String {
        config.architecture == .backpack ? "backpack.gpt2_model." : "transformer."
    }

    // Named tensors and modules. Code outside this table asks for a name here rather than
    // spelling it, so a checkpoint naming change is made in one place.

    /// The token embedding E (V, d): the trunk's input, the sense network's input and, when tied,
    /// the output embedding.
    public static func tokenEmbedding(_ config: BackpackConfig) -> String { trunkPrefix(config) + "wte.weight" }
    /// The position embedding P (n_positions, d).
    public static func positionEmbedding(_ config: BackpackConfig) -> String { trunkPrefix(config) + "wpe.weight" }
    /// The untied output embedding (V, d); present only when `tie_word_embeddings` is false.
    public static let outputEmbedding = "lm_head.weight"
    /// Module name of trunk block `index` (its parameters are `<name>.ln_1.weight`, ...).
    public static func block(_ config: BackpackConfig, _ index: Int) -> BlockNames {
        BlockNames(prefix: trunkPrefix(config) + "h.\(index).")
    }
    /// Module name of the trunk's final LayerNorm.
    public static func finalNorm(_ config: BackpackConfig) -> String { trunkPrefix(config) + "ln_f" }
    /// Module names of the sense network C(x) and the sense weight network (Backpack only).
    public static let senseNetwork = SenseNetworkNames()
    /// The sense network's last layer (final_mlp.c_proj, Conv1D (sense_inner, k*d)): the weight
    /// and bias a vocabulary-wide sense edit folds into.
    public static func senseOutputProjection(_ config: BackpackConfig) -> (weight: String, bias: String) {
        let name = senseNetwork.finalMLP.proj
        return (name + ".weight", name + ".bias")
    }

    /// The weights of the layers that write into a residual stream (every block's attention and
    /// MLP output projections, and the sense network block's MLP projection), which GPT-2's
    /// initialisation scales by 1/sqrt(2 L).
    public static func residualProjections(_ config: BackpackConfig) -> Set<String> {
        var names = Set<String>()
        for i in 0..<config.nLayer {
            let h = block(config, i)
            names.insert(h.attentionProjection + ".weight")
            names.insert(h.mlp.proj + ".weight")
        }
        if config.architecture == .backpack { names.insert(senseNetwork.blockMLP.proj + ".weight") }
        return names
    }

    /// Module names of one trunk block.
    public struct BlockNames: Sendable {
        public let ln1: String, attention: String, attentionProjection: String, ln2: String, mlp: MLPNames
        init(prefix h: String) {
            ln1 = h + "ln_1"; attention = h + "attn.c_attn"; attentionProjection = h + "attn.c_proj"
            ln2 = h + "ln_2"; mlp = MLPNames(h + "mlp")
        }
    }

    /// Module names of a two-layer MLP (c_fc then c_proj).
    public struct MLPNames: Sendable {
        public let fc: String, proj: String
        public init(_ name: String) { fc = name + ".c_fc"; proj = name + ".c_proj" }
    }

    /// Module names of the sense network and the sense weight network.
    public struct SenseNetworkNames: Sendable {
        public let ln = "backpack.sense_network.ln"
        public let blockLn1 = "backpack.sense_network.block.ln_1"
        public let blockMLP = MLPNames("backpack.sense_network.block.mlp")
        public let blockLn2 = "backpack.sense_network.block.ln_2"
        public let finalMLP = MLPNames("backpack.sense_network.final_mlp")
        /// The sense weight network's key-query layer (nn.Linear, (2d, d)).
        public let weightNetwork = "backpack.sense_weight_net.c_attn"
        /// Every sense network parameter starts with this (for grouping).
        public let prefix = "backpack.sense_network."
        public let weightNetworkPrefix = "backpack.sense_weight_net."
    }

    public static func specs(for config: BackpackConfig) -> [ParameterSpec] {
        let d = config.nEmbd, V = config.vocabSize, P = config.nPositions, inner = config.innerDim
        var specs: [ParameterSpec] = [
            .init(name: tokenEmbedding(config), shape: [V, d], layout: .embedding),
            .init(name: positionEmbedding(config), shape: [P, d], layout: .embedding),
        ]
        func ln(_ name: String) {
            specs.append(.init(name: name + ".weight", shape: [d], layout: .vector))
            specs.append(.init(name: name + ".bias", shape: [d], layout: .vector))
        }
        func conv(_ name: String, _ inputs: Int, _ outputs: Int) {
            specs.append(.init(name: name + ".weight", shape: [inputs, outputs], layout: .conv1D))
            specs.append(.init(name: name + ".bias", shape: [outputs], layout: .vector))
        }
        for i in 0..<config.nLayer {
            let h = block(config, i)
            ln(h.ln1)
            conv(h.attention, d, 3 * d)
            conv(h.attentionProjection, d, d)
            ln(h.ln2)
            conv(h.mlp.fc, d, inner)
            conv(h.mlp.proj, inner, d)
        }
        ln(finalNorm(config))
        if !config.tied { specs.append(.init(name: outputEmbedding, shape: [V, d], layout: .embedding)) }
        if config.architecture == .backpack {
            let s = senseNetwork
            ln(s.ln)
            ln(s.blockLn1)
            conv(s.blockMLP.fc, d, 4 * d)
            conv(s.blockMLP.proj, 4 * d, d)
            ln(s.blockLn2)
            conv(s.finalMLP.fc, d, config.senseInnerDim)
            conv(s.finalMLP.proj, config.senseInnerDim, config.senses * d)
            specs.append(.init(name: s.weightNetwork + ".weight", shape: [2 * d, d], layout: .linear))
            specs.append(.init(name: s.weightNetwork + ".bias", shape: [2 * d], layout: .vector))
        }
        return specs
    }

    /// Other names the same tensor may carry in a checkpoint (tied or shared).
    public static func aliases(for config: BackpackConfig) -> [String: String] {
        let wte = tokenEmbedding(config)
        var aliases: [String: String] = config.tied ? [outputEmbedding: wte] : [:]
        if config.architecture == .backpack {
            aliases["backpack.word_embeddings.weight"] = wte
            aliases["backpack.position_embeddings.weight"] = positionEmbedding(config)
        } else {
            // Some GPT-2 files (the original conversion) carry no "transformer." prefix.
            aliases["wte.weight"] = wte
        }
        return aliases
    }

    /// Buffers that are not parameters (the causal mask of each attention layer).
    static func isIgnoredBuffer(_ name: String) -> Bool {
        name.hasSuffix(".attn.bias") || name.hasSuffix(".attn.masked_bias")
    }
}

/// Every parameter of a model, by checkpoint name, verified against the architecture.
public struct ParameterSet: Sendable {
    public var config: BackpackConfig
    public var weights: [String: Weight]

    public init(config: BackpackConfig, weights: [String: Weight]) {
        self.config = config
        self.weights = weights
    }

    public subscript(_ name: String) -> Weight {
        guard let w = weights[name] else { preconditionFailure("programmer error: parameter \(name) missing after verification") }
        return w
    }

    /// Loads and verifies exhaustively: every needed tensor present with its shape; aliases and
    /// mask buffers accepted; anything else, or anything missing, is an error listing the keys.
    public static func load(from archive: TensorArchive, config: BackpackConfig, file: String) throws -> ParameterSet {
        let specs = ParameterTable.specs(for: config)
        let aliases = ParameterTable.aliases(for: config)
        let available = archive.tensors
        // Plain GPT-2 files without the "transformer." prefix: map "h.0.ln_1.weight" -> "transformer.h.0.ln_1.weight".
        var rename: [String: String] = [:]
        if config.architecture == .gpt2 {
            for name in available.keys where !name.hasPrefix("transformer.") && !name.hasPrefix("lm_head.")
                && available["transformer." + name] == nil {
                rename["transformer." + name] = name
            }
        }
        func source(_ name: String) -> String? {
            if available[name] != nil { return name }
            if let r = rename[name] { return r }
            return aliases.first(where: { $0.value == name && available[$0.key] != nil })?.key
        }
        var missing: [String] = [], wrongShape: [String] = []
        var used = Set<String>()
        var weights: [String: Weight] = [:]
        for spec in specs {
            guard let src = source(spec.name), let info = available[src] else { missing.append(spec.name); continue }
            used.insert(src)
            if info.shape != spec.shape {
                wrongShape.append("\(src): expected shape \(spec.shape), found \(info.shape)")
                continue
            }
            weights[spec.name] = try loadWeight(archive, name: src, shape: spec.shape)
        }
        var unexpected: [String] = []
        for (name, info) in available where !used.contains(name) {
            if ParameterTable.isIgnoredBuffer(name) { continue }
            if let target = aliases[name] ?? rename.first(where: { $0.value == name })?.key {
                if let spec = specs.first(where: { $0.name == target }), info.shape != spec.shape {
                    wrongShape.append("\(name) (alias of \(target)): expected shape \(spec.shape), found \(info.shape)")
                }
                continue
            }
            unexpected.append(name)
        }
        // Long lists (a config claiming 1024 layers) are cut: the first names say what is wrong.
        func list(_ names: [String], _ separator: String) -> String {
            let sorted = names.sorted()
            let shown = sorted.prefix(12).joined(separator: separator)
            return sorted.count > 12 ? shown + "\(separator)... (\(sorted.count) in all)" : shown
        }
        var problems: [String] = []
        if !missing.isEmpty { problems.append("missing tensors: \(list(missing, ", "))") }
        if !wrongShape.isEmpty { problems.append("shape mismatches: \(list(wrongShape, "; "))") }
        if !unexpected.isEmpty {
            problems.append("unexpected tensors for a \(config.architecture.rawValue): \(list(unexpected, ", "))")
        }
        if !problems.isEmpty { throw ModelError(file: file, reason: problems.joined(separator: "; ")) }
        return ParameterSet(config: config, weights: weights)
    }

    private static func loadWeight(_ archive: TensorArchive, name: String, shape: [Int]) throws -> Weight {
        if let mapped = archive as? any MappedFloatArchive, let pointer = try mapped.mappedFloat32(name) {
            return Weight(shape: shape, borrowing: pointer, owner: archive)
        }
        return Weight(shape: shape, values: try archive.floats(name))
    }

    /// Every parameter under its checkpoint name, in the checkpoint's layout (for saving).
    public func tensors() -> [(name: String, shape: [Int], values: [Float])] {
        ParameterTable.specs(for: config).map { spec in (spec.name, spec.shape, self[spec.name].values) }
    }

    /// Number of parameters by part (trunk, sense network, sense weights, embeddings).
    public func counts() -> [(part: String, count: Int)] {
        var parts: [String: Int] = [:]
        for spec in ParameterTable.specs(for: config) {
            let part: String
            if spec.name == ParameterTable.tokenEmbedding(config) { part = config.tied ? "token embedding E (tied with the output)" : "input token embedding" }
            else if spec.name == ParameterTable.outputEmbedding { part = "output embedding (untied)" }
            else if spec.name == ParameterTable.positionEmbedding(config) { part = "position embedding" }
            else if spec.name.hasPrefix(ParameterTable.senseNetwork.prefix) { part = "sense network" }
            else if spec.name.hasPrefix(ParameterTable.senseNetwork.weightNetworkPrefix) { part = "sense weight network" }
            else { part = "contextualization trunk" }
            parts[part, default: 0] += spec.shape.reduce(1, *)
        }
        return parts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}

