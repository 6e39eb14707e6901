import Foundation

/// Architecture of a Backpack-GPT2 (or plain GPT-2) checkpoint, decoded from `config.json`.
/// The coding keys spell the Hugging Face keys exactly; unknown keys (`auto_map`, dropout
/// rates, `transformers_version`, ...) are ignored, missing required keys are an error.
public struct BackpackConfig: Codable, Sendable, Equatable {
    public enum Architecture: String, Sendable { case backpack = "BackpackGPT2LMHeadModel", gpt2 = "GPT2LMHeadModel" }

    /// e.g. ["BackpackGPT2LMHeadModel"]
    public var architectures: [String]?
    /// "gpt2" for both architectures.
    public var modelType: String?
    /// d, e.g. 768
    public var nEmbd: Int
    /// L, e.g. 12
    public var nLayer: Int
    /// h, e.g. 12
    public var nHead: Int
    /// Longest sequence, e.g. 512
    public var nPositions: Int
    /// V, e.g. 50264 (GPT-2's 50257 ids plus padding rows)
    public var vocabSize: Int
    /// k, e.g. 16 (absent for plain GPT-2)
    public var numSenses: Int?
    /// Width of the sense network's final MLP as a multiple of d, e.g. 4
    public var senseIntermediateScale: Int?
    /// Only "gelu_new" is supported (the published checkpoint's).
    public var activationFunction: String?
    /// e.g. 1e-5
    public var layerNormEpsilon: Float?
    /// Divide attention scores by (layer index + 1), e.g. true
    public var scaleAttnByInverseLayerIdx: Bool?
    /// Divide attention scores by sqrt(d/h), e.g. true
    public var scaleAttnWeights: Bool?
    /// Trunk MLP width; null means 4d.
    public var nInner: Int?
    /// e.g. 50256
    public var bosTokenId: Int?
    /// e.g. 50256
    public var eosTokenId: Int?
    /// e.g. 0.02 (used by `backpack init`)
    public var initializerRange: Float?
    /// false when the output embedding (`lm_head.weight`) is a tensor of its own, as after the
    /// Transformer baseline's input-embedding edit; absent means tied.
    public var tieWordEmbeddings: Bool?

    enum CodingKeys: String, CodingKey {
        case architectures
        case modelType = "model_type"
        case nEmbd = "n_embd"
        case nLayer = "n_layer"
        case nHead = "n_head"
        case nPositions = "n_positions"
        case vocabSize = "vocab_size"
        case numSenses = "num_senses"
        case senseIntermediateScale = "sense_intermediate_scale"
        case activationFunction = "activation_function"
        case layerNormEpsilon = "layer_norm_epsilon"
        case scaleAttnByInverseLayerIdx = "scale_attn_by_inverse_layer_idx"
        case scaleAttnWeights = "scale_attn_weights"
        case nInner = "n_inner"
        case bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id"
        case initializerRange = "initializer_range"
        case tieWordEmbeddings = "tie_word_embeddings"
    }

    /// The published `stanfordnlp/backpack-gpt2` architecture.
    public static let backpackGPT2 = BackpackConfig(
        architectures: [Architecture.backpack.rawValue], modelType: "gpt2", nEmbd: 768, nLayer: 12, nHead: 12,
        nPositions: 512, vocabSize: 50264, numSenses: 16, senseIntermediateScale: 4,
        activationFunction: "gelu_new", layerNormEpsilon: 1e-5, scaleAttnByInverseLayerIdx: true,
        scaleAttnWeights: true, nInner: nil, bosTokenId: 50256, eosTokenId: 50256, initializerRange: 0.02,
        tieWordEmbeddings: nil)

    public var architecture: Architecture {
        if let names = architectures, names.contains(Architecture.gpt2.rawValue) { return .gpt2 }
        if numSenses == nil, architectures == nil { return .gpt2 }
        return .backpack
    }
    public var senses: Int { numSenses ?? 0 }
    public var headDim: Int { nEmbd / nHead }
    public var innerDim: Int { nInner ?? 4 * nEmbd }
    public var senseInnerDim: Int { (senseIntermediateScale ?? 4) * nEmbd }
    public var epsilon: Float { layerNormEpsilon ?? 1e-5 }
    public var tied: Bool { tieWordEmbeddings ?? true }

    /// Reads and checks a `config.json` file on its own (`init --config`); a model folder's is
    /// read by ModelFolder. Errors name the file and the key.
    public static func load(_ url: URL) throws -> BackpackConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelError(file: url.path, reason: "cannot read the model configuration (\(error.localizedDescription))")
        }
        _ = try ModelFolder.members(data, file: url.path)
        return try decode(data, file: url.path)
    }

    /// Decodes and checks `config.json`'s bytes (already read as JSON by the strict reader, which
    /// bounds its depth).
    static func decode(_ data: Data, file: String) throws -> BackpackConfig {
        let config: BackpackConfig
        do { config = try JSONDecoder().decode(BackpackConfig.self, from: data) } catch let error as DecodingError {
            throw ModelError(file: file, reason: describe(error))
        } catch {
            throw ModelError(file: file, reason: "not valid JSON (\(error.localizedDescription))")
        }
        try config.validate(file: file)
        return config
    }

    /// Checks the values that the forward pass relies on.
    public func validate(file: String = "config.json") throws {
        func fail(_ key: String, _ expected: String) throws -> Never {
            throw ModelError(file: file, reason: "key '\(key)': expected \(expected)")
        }
        if let names = architectures, !names.contains(where: { Architecture(rawValue: $0) != nil }) {
            try fail("architectures", "\"BackpackGPT2LMHeadModel\" or \"GPT2LMHeadModel\", found \(names)")
        }
        // ModelFolder.editedModelType: folders written by `backpack edit` (a type stock transformers cannot load
        // without the folder's own modeling code, so it never drops the edit).
        if let type = modelType, type != "gpt2", type != ModelFolder.editedModelType {
            try fail("model_type", "\"gpt2\" or \"\(ModelFolder.editedModelType)\", found \"\(type)\"")
        }
        for (key, value) in [("n_embd", nEmbd), ("n_layer", nLayer), ("n_head", nHead),
                             ("n_positions", nPositions), ("vocab_size", vocabSize)] where value <= 0 {
            try fail(key, "a positive integer, found \(value)")
        }
        if nEmbd > 1 << 16 || nLayer > 1024 || nPositions > 1 << 20 || vocabSize > 1 << 24 || nHead > nEmbd {
            try fail("n_embd/n_layer/n_positions/vocab_size", "sizes a Backpack model can have")
        }
        if nEmbd % nHead != 0 { try fail("n_head", "a divisor of n_embd (\(nEmbd)), found \(nHead)") }
        if let inner = nInner, inner <= 0 || inner > 1 << 20 { try fail("n_inner", "null or a positive integer, found \(inner)") }
        if let act = activationFunction, act != "gelu_new" {
            try fail("activation_function", "\"gelu_new\", found \"\(act)\"")
        }
        if let eps = layerNormEpsilon, !(eps > 0) { try fail("layer_norm_epsilon", "a positive number") }
        if architecture == .backpack {
            guard let k = numSenses, k > 0, k <= 1024 else { try fail("num_senses", "a positive integer for a Backpack model") }
            if nEmbd % k != 0 { try fail("num_senses", "a divisor of n_embd (\(nEmbd)), found \(k)") }
            if let s = senseIntermediateScale, s <= 0 || s > 64 { try fail("sense_intermediate_scale", "a positive integer, found \(s)") }
        }
    }

    /// Writes `config.json` as Hugging Face would read it (Backpack checkpoints keep `auto_map`).
    public func jsonData() throws -> Data {
        var object: [String: Any] = [
            "model_type": modelType ?? "gpt2", "n_embd": nEmbd, "n_layer": nLayer, "n_head": nHead,
            "n_positions": nPositions, "n_ctx": nPositions, "vocab_size": vocabSize,
            "activation_function": activationFunction ?? "gelu_new", "layer_norm_epsilon": Double(epsilon),
            "scale_attn_by_inverse_layer_idx": scaleAttnByInverseLayerIdx ?? false,
            "scale_attn_weights": scaleAttnWeights ?? true, "n_inner": nInner.map { $0 as Any } ?? NSNull(),
            "initializer_range": Double(initializerRange ?? 0.02),
            "attn_pdrop": 0.1, "embd_pdrop": 0.1, "resid_pdrop": 0.1, "reorder_and_upcast_attn": false,
            "use_cache": true, "dtype": "float32",
        ]
        if let bos = bosTokenId { object["bos_token_id"] = bos }
        if let eos = eosTokenId { object["eos_token_id"] = eos }
        if !tied { object["tie_word_embeddings"] = false }
        switch architecture {
        case .backpack:
            object["architectures"] = [Architecture.backpack.rawValue]
            object["num_senses"] = senses
            object["sense_intermediate_scale"] = senseIntermediateScale ?? 4
            object["auto_map"] = Dictionary(uniqueKeysWithValues: ModelFolder.autoMap)
        case .gpt2:
            object["architectures"] = [Architecture.gpt2.rawValue]
        }
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, _): return "missing required key '\(key.stringValue)'"
        case .typeMismatch(let type, let context): return "key '\(path(context))': expected \(type)"
        case .valueNotFound(let type, let context): return "key '\(path(context))': expected \(type), found null"
        case .dataCorrupted(let context): return "not a valid configuration at '\(path(context))': \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
