import Foundation

/// GPT-2's byte-level BPE tokenizer, byte-exact with tiktoken's `gpt2` encoding and HF
/// `tokenizers` (BPE model + ByteLevel pre-tokenizer): text -> UTF-8 bytes -> GPT-2 regex pieces
/// -> BPE merges by rank within each piece. Added tokens such as `<|endoftext|>` are split out of
/// the text first and become their own id.
///
/// Reads HF `tokenizer.json`, `vocab.json` + `merges.txt`, OpenAI `encoder.json` + `vocab.bpe`
/// and tiktoken `.tiktoken` rank files (see `Loading.swift`).
public struct GPT2Tokenizer: Sendable {
    struct AddedToken: Sendable {
        var content: String
        var id: Int
        var lstrip = false
        var rstrip = false
    }

    /// piece by id (nil where an id is unused)
    let pieces: [String?]
    let pieceIDs: [String: Int]
    /// the bytes each id decodes to (empty where unused)
    let tokenBytes: [[UInt8]]
    /// byte -> id of its one-byte piece, or -1
    let byteIDs: [Int32]
    /// (left id << 32 | right id) -> (rank << 32 | merged id)
    let mergeTable: [UInt64: UInt64]
    /// added tokens, longest first
    let addedTokens: [(bytes: [UInt8], id: Int, lstrip: Bool, rstrip: Bool)]
    /// first bytes of added tokens
    let addedFirstBytes: [Bool]
    /// HF ByteLevel `add_prefix_space`: a space is put before text that does not start with one.
    let addPrefixSpace: Bool
    /// HF `ignore_merges` / tiktoken: a piece that is itself in the vocabulary is not merged.
    let wholePieceIDs: [WordKey: Int]?
    let cache = WordCache()

    /// Vocabulary size including added tokens (number of distinct ids).
    public let count: Int
    /// Id of `<|endoftext|>`, if the vocabulary or the added tokens have it.
    public let endOfTextID: Int?

    /// Builds the tables. `vocab` and `merges` are already read; `place` names where each came from
    /// for error messages.
    init(vocab: [(piece: String, id: Int, place: String)], vocabFile: URL,
         merges: [(left: String, right: String, rank: Int, place: String)], mergesFile: URL,
         added: [(token: AddedToken, place: String)] = [], addedFile: URL? = nil,
         addPrefixSpace: Bool = false, ignoreMerges: Bool = false) throws {
        let maxIDs = 1 << 24
        var pieceIDs = [String: Int](minimumCapacity: vocab.count)
        var pieceByID = [Int: (String, String)]()  // id -> (piece, place)
        pieceByID.reserveCapacity(vocab.count)
        var maxID = -1
        for (piece, id, place) in vocab {
            guard id >= 0, id < maxIDs else {
                throw TokenizerError.file(vocabFile, place, "id \(id) of \"\(piece)\" is out of range (expected 0..<\(maxIDs))")
            }
            if let (other, _) = pieceByID[id], other != piece {
                throw TokenizerError.file(vocabFile, place, "duplicate id \(id): used by \"\(other)\" and \"\(piece)\"")
            }
            if let old = pieceIDs[piece], old != id {
                throw TokenizerError.file(vocabFile, place, "duplicate piece \"\(piece)\" with ids \(old) and \(id)")
            }
            pieceIDs[piece] = id
            pieceByID[id] = (piece, place)
            maxID = max(maxID, id)
        }
        var addedList: [(bytes: [UInt8], id: Int, lstrip: Bool, rstrip: Bool)] = []
        var addedIDs = Set<Int>()
        for (token, place) in added {
            let file = addedFile ?? vocabFile
            guard token.id >= 0, token.id < maxIDs else {
                throw TokenizerError.file(file, place, "added token id \(token.id) is out of range")
            }
            guard !token.content.isEmpty else {
                throw TokenizerError.file(file, place, "added token \(token.id) has empty content")
            }
            if let (other, _) = pieceByID[token.id], other != token.content {
                throw TokenizerError.file(file, place, "added token \"\(token.content)\" has id \(token.id), which the vocabulary gives to \"\(other)\"")
            }
            if let old = pieceIDs[token.content], old != token.id {
                throw TokenizerError.file(file, place, "added token \"\(token.content)\" has id \(token.id), but the vocabulary has it as \(old)")
            }
            pieceIDs[token.content] = token.id
            pieceByID[token.id] = (token.content, place)
            maxID = max(maxID, token.id)
            addedIDs.insert(token.id)
            addedList.append((Array(token.content.utf8), token.id, token.lstrip, token.rstrip))
        }
        // Like tiktoken's gpt2 encoding and OpenAI's encoder: <|endoftext|> in the vocabulary is special.
        if addedList.isEmpty, let eot = pieceIDs["<|endoftext|>"] {
            addedList.append((Array("<|endoftext|>".utf8), eot, false, false))
            addedIDs.insert(eot)
        }
        addedList.sort { $0.bytes.count > $1.bytes.count }
        // The tables below are indexed by id: refuse ids far beyond the number of tokens, so that
        // a few bytes of JSON (`{"a": 16777215}`) cannot make them allocate hundreds of MB.
        guard maxID < 2 * pieceByID.count + (1 << 16) else {
            throw TokenizerError.file(vocabFile, nil, "ids are too sparse: the largest id is \(maxID) but there are only \(pieceByID.count) tokens (ids must be below \(2 * pieceByID.count + (1 << 16)))")
        }

        var pieces = [String?](repeating: nil, count: maxID + 1)
        var tokenBytes = [[UInt8]](repeating: [], count: maxID + 1)
        for (id, (piece, _)) in pieceByID {
            pieces[id] = piece
            if addedIDs.contains(id) {
                tokenBytes[id] = Array(piece.utf8)
            } else {
                // HF ByteLevel decoder: a piece with characters outside the byte table stands for its UTF-8.
                tokenBytes[id] = ByteLevel.bytes(ofPiece: piece) ?? Array(piece.utf8)
            }
        }
        var byteIDs = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            if let id = pieceIDs[String(Character(ByteLevel.byteToScalar[b]))] { byteIDs[b] = Int32(id) }
        }

        var table = [UInt64: UInt64](minimumCapacity: merges.count)
        for (left, right, rank, place) in merges {
            guard let a = pieceIDs[left] else {
                throw TokenizerError.file(mergesFile, place, "merge \"\(left) \(right)\": \"\(left)\" is not in the vocabulary")
            }
            guard let b = pieceIDs[right] else {
                throw TokenizerError.file(mergesFile, place, "merge \"\(left) \(right)\": \"\(right)\" is not in the vocabulary")
            }
            guard let m = pieceIDs[left + right] else {
                throw TokenizerError.file(mergesFile, place, "merge \"\(left) \(right)\": \"\(left + right)\" is not in the vocabulary")
            }
            table[UInt64(a) << 32 | UInt64(b)] = UInt64(rank) << 32 | UInt64(m)  // a later duplicate wins, like HF
        }

        var firstBytes = [Bool](repeating: false, count: 256)
        for t in addedList { firstBytes[Int(t.bytes[0])] = true }

        var whole: [WordKey: Int]? = nil
        if ignoreMerges {
            var w = [WordKey: Int](minimumCapacity: pieceByID.count)
            for (id, bytes) in tokenBytes.enumerated() where !bytes.isEmpty && !addedIDs.contains(id) {
                w[WordKey(bytes)] = id
            }
            whole = w
        }

        self.pieces = pieces
        self.pieceIDs = pieceIDs
        self.tokenBytes = tokenBytes
        self.byteIDs = byteIDs
        self.mergeTable = table
        self.addedTokens = addedList
        self.addedFirstBytes = firstBytes
        self.addPrefixSpace = addPrefixSpace
        self.wholePieceIDs = whole
        self.count = pieceByID.count
        self.endOfTextID = pieceIDs["<|endoftext|>"]
    }

    // MARK: - Vocabulary

    /// The raw vocabulary string of an id, e.g. "Ġhe".
    public func piece(_ id: Int) -> String? {
        guard id >= 0, id < pieces.count else { return nil }
        return pieces[id]
    }

    /// The id of a raw vocabulary string, e.g. "Ġhe".
    public func id(ofPiece piece: String) -> Int? { pieceIDs[piece] }

    /// The text a piece stands for (bytes decoded as UTF-8, invalid bytes as U+FFFD), e.g. " he".
    public func displayPiece(_ id: Int) -> String? {
        guard id >= 0, id < pieces.count, pieces[id] != nil else { return nil }
        return String(decoding: tokenBytes[id], as: UTF8.self)
    }

    // MARK: - Decoding

    /// The text of a sequence of ids; bytes that are not valid UTF-8 become U+FFFD like Python's
    /// `errors="replace"`. Unknown ids are skipped.
    public func decode(_ ids: [Int]) -> String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(ids.count * 4)
        for id in ids where id >= 0 && id < tokenBytes.count { bytes.append(contentsOf: tokenBytes[id]) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The raw bytes of a sequence of ids.
    public func decodeBytes(_ ids: [Int]) -> [UInt8] {
        var bytes = [UInt8]()
        for id in ids where id >= 0 && id < tokenBytes.count { bytes.append(contentsOf: tokenBytes[id]) }
        return bytes
    }

    // MARK: - Encoding

    /// Token ids of `text`. Added tokens (e.g. `<|endoftext|>`) in the text become their id.
    public func encode(_ text: String) -> [Int] {
        var out = [Int]()
        out.reserveCapacity(text.utf8.count / 3 + 1)
        var text = text
        text.withUTF8 { buf in
            let n = buf.count
            if addedTokens.isEmpty {
                encodeSegment(buf, 0, n, &out)
                return
            }
            var segStart = 0
            var i = 0
            while i < n {
                guard addedFirstBytes[Int(buf[i])], let t = matchAdded(buf, i) else { i += 1; continue }
                var segEnd = i
                if t.lstrip {
                    while segEnd > segStart {
                        var k = segEnd - 1
                        while k > segStart, buf[k] & 0xC0 == 0x80 { k -= 1 }
                        let (v, _) = PreTokenizer.decode(buf, k, segEnd)
                        guard PreTokenizer.classify(v) == .space else { break }
                        segEnd = k
                    }
                }
                encodeSegment(buf, segStart, segEnd, &out)
                out.append(t.id)
                i += t.bytes.count
                if t.rstrip {
                    while i < n {
                        let (v, len) = PreTokenizer.decode(buf, i, n)
                        guard PreTokenizer.classify(v) == .space else { break }
                        i += len
                    }
                }
                segStart = i
            }
            encodeSegment(buf, segStart, n, &out)
        }
        return out
    }

    @inline(__always)
    private func matchAdded(_ buf: UnsafeBufferPointer<UInt8>, _ i: Int) -> (bytes: [UInt8], id: Int, lstrip: Bool, rstrip: Bool)? {
        outer: for t in addedTokens where i + t.bytes.count <= buf.count {
            for (k, b) in t.bytes.enumerated() where buf[i + k] != b { continue outer }
            return t
        }
        return nil
    }

    private func encodeSegment(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ out: inout [Int]) {
        guard start < end else { return }
        if addPrefixSpace, buf[start] != 0x20 {
            var spaced = [UInt8](repeating: 0x20, count: end - start + 1)
            for k in start..<end { spaced[k - start + 1] = buf[k] }
            spaced.withUnsafeBufferPointer { s in
                PreTokenizer.split(s, from: 0, to: s.count) { a, b in encodeWord(s, a, b, &out) }
            }
            return
        }
        PreTokenizer.split(buf, from: start, to: end) { a, b in encodeWord(buf, a, b, &out) }
    }

    @inline(__always)
    private func encodeWord(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ out: inout [Int]) {
        if end - start == 1 {
            let id = byteIDs[Int(buf[start])]
            if id >= 0 { out.append(Int(id)) }
            return
        }
        let key = WordKey(UnsafeBufferPointer(rebasing: buf[start..<end]))
        if let ids = cache.get(key) {
            out.append(contentsOf: ids)
            return
        }
        var ids: [Int]
        if let whole = wholePieceIDs?[key] {
            ids = [whole]
        } else {
            ids = bpe(UnsafeBufferPointer(rebasing: buf[start..<end]))
        }
        cache.set(key, ids)
        out.append(contentsOf: ids)
    }

    @inline(__always)
    private func mergeInfo(_ a: Int32, _ b: Int32) -> UInt64? {
        mergeTable[UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))]
    }

    /// BPE within one piece: repeatedly merge the leftmost adjacent pair of lowest rank.
    func bpe(_ word: UnsafeBufferPointer<UInt8>) -> [Int] {
        var ids = [Int32]()
        ids.reserveCapacity(word.count)
        for b in word {
            let id = byteIDs[Int(b)]
            if id >= 0 { ids.append(id) }  // a byte without a piece is dropped, like HF without unk_token
        }
        if ids.count >= Self.heapThreshold { return mergeWithHeap(ids).map { Int($0) } }
        return mergeByScanning(ids).map { Int($0) }
    }

    /// Pieces longer than this (a long run of letters without a space) use the O(n log n) merge;
    /// the scan is O(n^2) but faster on ordinary words.
    static let heapThreshold = 128

    /// Scans for the lowest-ranked pair after every merge.
    func mergeByScanning(_ input: [Int32]) -> [Int32] {
        var ids = input
        guard ids.count >= 2 else { return ids }
        let none = UInt32.max
        var ranks = [UInt32](repeating: none, count: ids.count - 1)
        for k in 0..<ranks.count {
            if let m = mergeInfo(ids[k], ids[k + 1]) { ranks[k] = UInt32(truncatingIfNeeded: m >> 32) }
        }
        while true {
            var best = none
            var at = -1
            for k in 0..<ranks.count where ranks[k] < best {
                best = ranks[k]
                at = k
            }
            guard at >= 0, let m = mergeInfo(ids[at], ids[at + 1]) else { break }
            ids[at] = Int32(truncatingIfNeeded: m & 0xFFFF_FFFF)
            ids.remove(at: at + 1)
            ranks.remove(at: at)
            if at < ranks.count {
                ranks[at] = mergeInfo(ids[at], ids[at + 1]).map { UInt32(truncatingIfNeeded: $0 >> 32) } ?? none
            }
            if at > 0 {
                ranks[at - 1] = mergeInfo(ids[at - 1], ids[at]).map { UInt32(truncatingIfNeeded: $0 >> 32) } ?? none
            }
        }
        return ids
    }

    /// The same merges in the same order, with a heap of candidate pairs keyed by (rank, position)
    /// over a linked list of symbols. A symbol keeps the position of its leftmost byte, so the
    /// smallest position among equal ranks is the leftmost pair. Stale heap entries (a side
    /// already merged away) are skipped when popped.
    func mergeWithHeap(_ input: [Int32]) -> [Int32] {
        var ids = input
        let n = ids.count
        guard n >= 2 else { return ids }
        var next = Array(1...n), prev = Array(-1..<(n - 1))
        var alive = [Bool](repeating: true, count: n)
        var heap = PairHeap()
        func push(_ left: Int) {
            let right = next[left]
            guard right < n, let m = mergeInfo(ids[left], ids[right]) else { return }
            heap.push((rank: UInt32(truncatingIfNeeded: m >> 32), left: left, leftID: ids[left], rightID: ids[right]))
        }
        for k in 0..<(n - 1) { push(k) }
        while let top = heap.pop() {
            let left = top.left
            guard alive[left], ids[left] == top.leftID else { continue }
            let right = next[left]
            guard right < n, ids[right] == top.rightID, let m = mergeInfo(ids[left], ids[right]) else { continue }
            ids[left] = Int32(truncatingIfNeeded: m & 0xFFFF_FFFF)
            alive[right] = false
            next[left] = next[right]
            if next[right] < n { prev[next[right]] = left }
            if prev[left] >= 0 { push(prev[left]) }
            push(left)
        }
        var out: [Int32] = []
        var k = 0
        while k < n { out.append(ids[k]); k = next[k] }
        return out
    }
}

/// A binary min-heap of merge candidates ordered by (rank, left position).
struct PairHeap {
    typealias Entry = (rank: UInt32, left: Int, leftID: Int32, rightID: Int32)
    private var items: [Entry] = []

    private static func less(_ a: Entry, _ b: Entry) -> Bool { a.rank != b.rank ? a.rank < b.rank : a.left < b.left }

    mutating func push(_ e: Entry) {
        items.append(e)
        var c = items.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            if !Self.less(items[c], items[p]) { break }
            items.swapAt(c, p); c = p
        }
    }

    mutating func pop() -> Entry? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var p = 0
            while true {
                let l = 2 * p + 1, r = l + 1
                var m = p
                if l < items.count, Self.less(items[l], items[m]) { m = l }
                if r < items.count, Self.less(items[r], items[m]) { m = r }
                if m == p { break }
                items.swapAt(p, m); p = m
            }
        }
        return first
    }
}

/// Bytes of a pre-tokenized piece, hashed in one call.
struct WordKey: Hashable, Sendable {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(_ buf: UnsafeBufferPointer<UInt8>) { self.bytes = Array(buf) }
    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
    static func == (a: WordKey, b: WordKey) -> Bool { a.bytes == b.bytes }
}

/// Piece -> ids memo shared by copies of a tokenizer (thread-safe; cleared when it grows large).
final class WordCache: @unchecked Sendable {
    private let lock = NSLock()
    private var map = [WordKey: [Int]]()
    private let limit = 1 << 20

    func get(_ key: WordKey) -> [Int]? {
        lock.lock()
        defer { lock.unlock() }
        return map[key]
    }

    func set(_ key: WordKey, _ ids: [Int]) {
        lock.lock()
        defer { lock.unlock() }
        if map.count >= limit { map.removeAll(keepingCapacity: true) }
        map[key] = ids
    }
}
