import BackpackJSON
import BackpackModelFolder
import Foundation

// Tokenizer file formats:
//   tokenizer.json            HF tokenizers: model.type "BPE", ByteLevel pre-tokenizer, added_tokens
//   vocab.json + merges.txt   HF / GPT-2 style vocabulary and merges ("#version" line optional)
//   encoder.json + vocab.bpe  OpenAI's original GPT-2 file names, same formats
//   *.tiktoken                tiktoken ranks: "base64(bytes) rank" per line (merges derived from ranks)

extension GPT2Tokenizer {
    /// The file pairs `load(from:)` looks for, in order (the model-folder contract's).
    static var vocabMergesNames: [(String, String)] { ModelFolder.vocabularyMergesFiles.map { ($0.vocabulary, $0.merges) } }

    /// Finds the tokenizer in a directory: tokenizer.json first, else vocab.json + merges.txt,
    /// else encoder.json + vocab.bpe.
    public static func load(from directory: URL) throws -> GPT2Tokenizer {
        let fm = FileManager.default
        let json = directory.appendingPathComponent(ModelFolder.tokenizerJSONFile)
        if fm.fileExists(atPath: json.path) { return try GPT2Tokenizer(tokenizerJSON: json) }
        for (v, m) in vocabMergesNames {
            let vocab = directory.appendingPathComponent(v)
            let merges = directory.appendingPathComponent(m)
            if fm.fileExists(atPath: vocab.path), fm.fileExists(atPath: merges.path) {
                return try GPT2Tokenizer(vocabulary: vocab, merges: merges)
            }
        }
        throw TokenizerError.file(directory, nil,
            "no tokenizer found: expected \(ModelFolder.tokenizerJSONFile), " + vocabMergesNames.map { "\($0.0) + \($0.1)" }.joined(separator: ", or "))
    }

    /// Loads from a directory (see `load(from:)`) or a file: tokenizer.json (any name with a
    /// "model" object), vocab.json / encoder.json with merges.txt / vocab.bpe beside it (or the
    /// merges file with the vocabulary beside it), or a `.tiktoken` file.
    public static func load(path: URL) throws -> GPT2Tokenizer {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDir) else {
            throw TokenizerError.file(path, nil, "no such file or directory")
        }
        if isDir.boolValue { return try load(from: path) }
        let dir = path.deletingLastPathComponent()
        let name = path.lastPathComponent
        if path.pathExtension == "tiktoken" { return try GPT2Tokenizer(tiktoken: path) }
        for (v, m) in vocabMergesNames {
            if name == v { return try GPT2Tokenizer(vocabulary: path, merges: try beside(path, m)) }
            if name == m { return try GPT2Tokenizer(vocabulary: try beside(path, v), merges: path) }
        }
        if path.pathExtension == "bpe" || path.pathExtension == "txt" {
            for (v, _) in vocabMergesNames where FileManager.default.fileExists(atPath: dir.appendingPathComponent(v).path) {
                return try GPT2Tokenizer(vocabulary: dir.appendingPathComponent(v), merges: path)
            }
            throw TokenizerError.file(path, nil, "a merges file needs \(vocabMergesNames.map(\.0).joined(separator: " or ")) beside it")
        }
        // Some other .json: a tokenizer.json if it has a "model" object, else a vocabulary.
        let root = try JSONValue.parse(contentsOf: path)
        if case .object = root, root["model"] != nil { return try GPT2Tokenizer(tokenizerJSON: path, root: root) }
        for (_, m) in vocabMergesNames where FileManager.default.fileExists(atPath: dir.appendingPathComponent(m).path) {
            return try GPT2Tokenizer(vocabulary: path, merges: dir.appendingPathComponent(m))
        }
        throw TokenizerError.file(path, nil,
            "not a \(ModelFolder.tokenizerJSONFile) (no \"model\" object) and no \(vocabMergesNames.map(\.1).joined(separator: " or ")) beside it")
    }

    private static func beside(_ file: URL, _ name: String) throws -> URL {
        let url = file.deletingLastPathComponent().appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TokenizerError.file(file, nil, "expected \(name) beside it")
        }
        return url
    }

    // MARK: vocab.json + merges.txt

    /// vocab.json / encoder.json (piece -> id) with merges.txt / vocab.bpe.
    public init(vocabulary: URL, merges: URL) throws {
        let root = try JSONValue.parse(contentsOf: vocabulary)
        let vocab = try Self.readVocab(root, file: vocabulary, path: "")
        let mergeList = try Self.readMergesText(merges)
        try self.init(vocab: vocab, vocabFile: vocabulary, merges: mergeList, mergesFile: merges)
    }

    static func readVocab(_ value: JSONValue, file: URL, path: String) throws -> [(piece: String, id: Int, place: String)] {
        guard case .object(let members) = value else {
            throw TokenizerError.file(file, path.isEmpty ? nil : path,
                                      "expected an object mapping pieces to ids, found \(value.describedType)")
        }
        var out: [(piece: String, id: Int, place: String)] = []
        out.reserveCapacity(members.count)
        for (piece, v) in members {
            let place = "\(path)[\(quoted(piece))]"
            guard case .integer(let id) = v else {
                throw TokenizerError.file(file, place, "expected an integer id, found \(v.describedType)")
            }
            out.append((piece, id, place))
        }
        return out
    }

    static func readMergesText(_ url: URL) throws -> [(left: String, right: String, rank: Int, place: String)] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError.file(url, nil, "cannot read the file (\(error.localizedDescription))")
        }
        guard let text = data.withUnsafeBytes({ validUTF8($0.bindMemory(to: UInt8.self)) }) else {
            throw TokenizerError.file(url, nil, "not valid UTF-8")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        while let last = lines.last, last.allSatisfy({ $0 == "\r" || $0 == " " }) { lines.removeLast() }
        var out: [(left: String, right: String, rank: Int, place: String)] = []
        out.reserveCapacity(lines.count)
        for (n, raw) in lines.enumerated() {
            var line = Substring(raw)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if n == 0, line.hasPrefix("#version") { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TokenizerError.file(url, "\(n + 1)",
                    "expected a merge \"left right\" (two pieces separated by one space), found \(quoted(String(line)))")
            }
            out.append((String(parts[0]), String(parts[1]), out.count, "\(n + 1)"))
        }
        return out
    }

    // MARK: tokenizer.json

    /// HF tokenizers' tokenizer.json: model.type "BPE", a ByteLevel pre-tokenizer, added_tokens.
    public init(tokenizerJSON: URL) throws {
        try self.init(tokenizerJSON: tokenizerJSON, root: try JSONValue.parse(contentsOf: tokenizerJSON))
    }

    init(tokenizerJSON url: URL, root: JSONValue) throws {
        func fail(_ place: String, _ message: String) -> TokenizerError { TokenizerError.file(url, place, message) }
        guard case .object = root else { throw TokenizerError.file(url, nil, "expected a JSON object, found \(root.describedType)") }
        guard let model = root["model"], case .object = model else {
            throw fail("model", "expected an object, found \(root["model"]?.describedType ?? "nothing")")
        }
        if let type = model["type"] {
            guard case .string(let t) = type, t == "BPE" else { throw fail("model.type", "expected \"BPE\", found \(describe(type))") }
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key] {
                switch v {
                case .null: break
                case .string(let s) where s.isEmpty: break
                default: throw fail("model.\(key)", "expected null (not supported by a byte-level GPT-2 tokenizer), found \(describe(v))")
                }
            }
        }
        if let v = model["dropout"] {
            switch v {
            case .null: break
            case .integer(0): break
            case .double(let d) where d == 0: break
            default: throw fail("model.dropout", "expected null (BPE dropout is not supported), found \(describe(v))")
            }
        }
        var ignoreMerges = false
        if let v = model["ignore_merges"] {
            guard case .bool(let b) = v else { throw fail("model.ignore_merges", "expected a boolean, found \(v.describedType)") }
            ignoreMerges = b
        }
        if let v = root["normalizer"] {
            guard case .null = v else { throw fail("normalizer", "expected null (normalizers are not supported), found \(v.describedType)") }
        }
        // Pre-tokenizer: ByteLevel with the GPT-2 regex.
        var addPrefixSpace = false
        guard let pre = root["pre_tokenizer"], case .object = pre else {
            throw fail("pre_tokenizer", "expected a ByteLevel pre-tokenizer object, found \(root["pre_tokenizer"]?.describedType ?? "nothing")")
        }
        guard case .string("ByteLevel")? = pre["type"] else {
            throw fail("pre_tokenizer.type", "expected \"ByteLevel\", found \(pre["type"].map(describe) ?? "nothing")")
        }
        if let v = pre["add_prefix_space"] {
            guard case .bool(let b) = v else { throw fail("pre_tokenizer.add_prefix_space", "expected a boolean, found \(v.describedType)") }
            addPrefixSpace = b
        }
        if let v = pre["use_regex"] {
            guard case .bool(true) = v else { throw fail("pre_tokenizer.use_regex", "expected true (the GPT-2 regex), found \(describe(v))") }
        }

        guard let vocabValue = model["vocab"] else { throw fail("model.vocab", "missing; expected an object mapping pieces to ids") }
        let vocab = try Self.readVocab(vocabValue, file: url, path: "model.vocab")

        guard let mergesValue = model["merges"], case .array(let items) = mergesValue else {
            throw fail("model.merges", "expected an array of merges, found \(model["merges"]?.describedType ?? "nothing")")
        }
        var merges: [(left: String, right: String, rank: Int, place: String)] = []
        merges.reserveCapacity(items.count)
        for (k, item) in items.enumerated() {
            let place = "model.merges[\(k)]"
            switch item {
            case .string(let s):
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw fail(place, "expected \"left right\" (two pieces separated by one space), found \(quoted(s))")
                }
                merges.append((String(parts[0]), String(parts[1]), k, place))
            case .array(let pair):
                guard pair.count == 2, case .string(let a) = pair[0], case .string(let b) = pair[1], !a.isEmpty, !b.isEmpty else {
                    throw fail(place, "expected a pair of two non-empty strings [\"left\", \"right\"]")
                }
                merges.append((a, b, k, place))
            default:
                throw fail(place, "expected a string \"left right\" or a pair [\"left\", \"right\"], found \(item.describedType)")
            }
        }

        var added: [(token: AddedToken, place: String)] = []
        if let addedValue = root["added_tokens"] {
            switch addedValue {
            case .null: break
            case .array(let tokens):
                for (k, t) in tokens.enumerated() {
                    let place = "added_tokens[\(k)]"
                    guard case .object = t else { throw fail(place, "expected an object, found \(t.describedType)") }
                    guard case .integer(let id)? = t["id"] else { throw fail("\(place).id", "expected an integer id, found \(t["id"]?.describedType ?? "nothing")") }
                    guard case .string(let content)? = t["content"] else {
                        throw fail("\(place).content", "expected a string, found \(t["content"]?.describedType ?? "nothing")")
                    }
                    var token = AddedToken(content: content, id: id)
                    for key in ["lstrip", "rstrip"] {
                        guard let v = t[key] else { continue }
                        guard case .bool(let b) = v else { throw fail("\(place).\(key)", "expected a boolean, found \(v.describedType)") }
                        if key == "lstrip" { token.lstrip = b } else { token.rstrip = b }
                    }
                    added.append((token, place))
                }
            default:
                throw fail("added_tokens", "expected an array, found \(addedValue.describedType)")
            }
        }
        try self.init(vocab: vocab, vocabFile: url, merges: merges, mergesFile: url, added: added, addedFile: url,
                      addPrefixSpace: addPrefixSpace, ignoreMerges: ignoreMerges)
    }

    // MARK: .tiktoken

    /// A tiktoken rank file ("base64(bytes) rank" per line; the rank is the id), with the GPT-2
    /// regex and tiktoken's merge rule (the pair whose concatenation has the lowest rank).
    /// `specialTokens` (e.g. ["<|endoftext|>": 50256]) are added tokens.
    public init(tiktoken url: URL, specialTokens: [String: Int] = [:]) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError.file(url, nil, "cannot read the file (\(error.localizedDescription))")
        }
        guard let text = data.withUnsafeBytes({ validUTF8($0.bindMemory(to: UInt8.self)) }) else {
            throw TokenizerError.file(url, nil, "not valid UTF-8")
        }
        var vocab: [(piece: String, id: Int, place: String)] = []
        var byRank: [(bytes: [UInt8], rank: Int, place: String)] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : Substring(raw)
            if line.allSatisfy({ $0 == " " }) { continue }
            let parts = line.split(separator: " ")
            guard parts.count == 2, let bytes = Data(base64Encoded: String(parts[0])), !bytes.isEmpty,
                  let rank = Int(parts[1]) else {
                throw TokenizerError.file(url, "\(n + 1)", "expected \"base64-bytes rank\", found \(quoted(String(line)))")
            }
            vocab.append((ByteLevel.piece(ofBytes: bytes), rank, "\(n + 1)"))
            byRank.append((Array(bytes), rank, "\(n + 1)"))
        }
        // Every split of a token into two tokens is a merge of the token's rank.
        var rankOfBytes = [WordKey: Int](minimumCapacity: byRank.count)
        for t in byRank { rankOfBytes[WordKey(t.bytes)] = t.rank }
        var merges: [(left: String, right: String, rank: Int, place: String)] = []
        for t in byRank.sorted(by: { $0.rank < $1.rank }) where t.bytes.count >= 2 {
            for cut in 1..<t.bytes.count {
                let l = Array(t.bytes[..<cut]), r = Array(t.bytes[cut...])
                if rankOfBytes[WordKey(l)] != nil, rankOfBytes[WordKey(r)] != nil {
                    merges.append((ByteLevel.piece(ofBytes: l), ByteLevel.piece(ofBytes: r), t.rank, t.place))
                }
            }
        }
        let added = specialTokens.sorted { $0.value < $1.value }.map { (token: AddedToken(content: $0.key, id: $0.value), place: "special token \(quoted($0.key))") }
        try self.init(vocab: vocab, vocabFile: url, merges: merges, mergesFile: url, added: added, addedFile: url,
                      ignoreMerges: true)
    }
}

/// A string as JSON would write it, cut to 80 characters for messages.
private func quoted(_ s: String) -> String {
    let out = jsonQuote(s)
    return out.count > 80 ? String(out.prefix(77)) + "...\"" : out
}

private func describe(_ v: JSONValue) -> String {
    switch v {
    case .string(let s): return quoted(s)
    case .integer(let n): return String(n)
    case .double(let d): return String(d)
    case .bool(let b): return String(b)
    default: return v.describedType
    }
}
