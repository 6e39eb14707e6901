import Foundation

/// What a torch storage reference in the pickle resolves to.
struct StorageRef: Sendable {
    let dtype: DType
    let key: String
    let numel: Int
}

struct TensorRef: Sendable {
    let storage: StorageRef
    let offset: Int
    let shape: [Int]
    let stride: [Int]
}

/// The only callables a state dict needs. Anything else is refused when GLOBAL is read.
enum AllowedGlobal: Equatable {
    case orderedDict
    case rebuildTensorV2
    case rebuildParameter
    case storageType(DType)

    static let storageTypes: [String: DType] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
    ]

    static func resolve(module: String, name: String) -> AllowedGlobal? {
        switch (module, name) {
        case ("collections", "OrderedDict"): return .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): return .rebuildTensorV2
        case ("torch._utils", "_rebuild_parameter"): return .rebuildParameter
        case ("torch", _): return storageTypes[name].map { .storageType($0) }
        default: return nil
        }
    }

    static let allowedDescription =
        "only collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and torch.{"
        + storageTypes.keys.sorted().joined(separator: ",") + "} are allowed"
}

final class PList {
    var items: [PValue] = []
    var depth = 1
}

enum PKey: Hashable { case str(String), int(Int) }

final class PDict {
    var keys: [PKey] = []
    var values: [PKey: PValue] = [:]
    var depth = 1
    func set(_ k: PKey, _ v: PValue) {
        if values.updateValue(v, forKey: k) == nil { keys.append(k) }
    }
}

enum PValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case str(String)
    case bytes(Int)
    case tuple([PValue], depth: Int)
    case list(PList)
    case dict(PDict)
    case global(AllowedGlobal, String)
    case storage(StorageRef)
    case tensor(TensorRef)

    var depth: Int {
        switch self {
        case .tuple(_, let d): return d
        case .list(let l): return l.depth
        case .dict(let d): return d.depth
        default: return 0
        }
    }

    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .str: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case .global(_, let n): return "global \(n)"
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }
}

/// A restricted unpickler for `data.pkl` of torch.save's zip format. It builds plain values only:
/// no object from the file is ever called, apart from the whitelisted state-dict constructors,
/// which are interpreted here (not executed).
struct RestrictedUnpickler {
    static let maxDepth = 64
    static let maxMemo = 1 << 20
    static let maxStack = 1 << 20
    static let maxMarks = 256

    let data: UnsafeRawBufferPointer
    let context: String  // e.g. "data.pkl", used in error messages
    let file: String
    /// Resolves a persistent id to a storage (checks the key exists and the size matches).
    let persistentLoad: (_ dtype: DType, _ key: String, _ location: String, _ numel: Int) throws -> StorageRef

    private func err(_ reason: String, at pos: Int) -> CheckpointError {
        CheckpointError(file: file, reason: "\(context): \(reason) (at byte \(pos))")
    }

    func load() throws -> PValue {
        var pos = 0
        var stack: [PValue] = []
        var marks: [Int] = []
        var memo: [Int: PValue] = [:]
        let n = data.count

        func need(_ k: Int, _ what: String, _ at: Int) throws {
            guard k >= 0, k <= n - pos else {
                throw err("\(what) needs \(k) bytes but only \(n - pos) remain", at: at)
            }
        }
        func byte() -> Int { let v = Int(data[pos]); pos += 1; return v }
        func le(_ k: Int) -> UInt64 {
            var v: UInt64 = 0
            for j in 0..<k { v |= UInt64(data[pos + j]) << (8 * UInt64(j)) }
            pos += k
            return v
        }
        func pop(_ at: Int, _ op: String) throws -> PValue {
            guard let top = stack.popLast() else { throw err("\(op): stack underflow", at: at) }
            if let m = marks.last, stack.count < m { throw err("\(op): popped past a MARK", at: at) }
            return top
        }
        func popMark(_ at: Int, _ op: String) throws -> [PValue] {
            guard let m = marks.popLast() else { throw err("\(op) without MARK", at: at) }
            guard m <= stack.count else { throw err("\(op): corrupt MARK", at: at) }
            let items = Array(stack[m...])
            stack.removeSubrange(m...)
            return items
        }
        func push(_ v: PValue, _ at: Int) throws {
            guard stack.count < Self.maxStack else { throw err("stack larger than \(Self.maxStack) items", at: at) }
            guard v.depth <= Self.maxDepth else { throw err("nesting deeper than \(Self.maxDepth)", at: at) }
            stack.append(v)
        }
        func tuple(_ items: [PValue]) -> PValue {
            .tuple(items, depth: 1 + (items.map(\.depth).max() ?? 0))
        }
        func text(_ len: Int, _ what: String, _ at: Int) throws -> String {
            try need(len, what, at)
            let s = String(validating: UnsafeRawBufferPointer(rebasing: data[pos..<(pos + len)]), as: UTF8.self)
            guard let s else { throw err("\(what): invalid UTF-8", at: at) }
            pos += len
            return s
        }
        func line(_ at: Int) throws -> String {
            var end = pos
            while end < n, data[end] != 0x0a {
                end += 1
                if end - pos > 512 { throw err("GLOBAL name longer than 512 bytes", at: at) }
            }
            guard end < n else { throw err("GLOBAL: unterminated name", at: at) }
            let s = String(validating: UnsafeRawBufferPointer(rebasing: data[pos..<end]), as: UTF8.self)
            guard let s else { throw err("GLOBAL: invalid UTF-8", at: at) }
            pos = end + 1
            return s
        }
        func global(_ module: String, _ name: String, _ at: Int) throws -> PValue {
            guard let g = AllowedGlobal.resolve(module: module, name: name) else {
                throw err("refusing global '\(module).\(name)' (\(AllowedGlobal.allowedDescription))", at: at)
            }
            return .global(g, "\(module).\(name)")
        }
        func memoPut(_ idx: Int, _ at: Int) throws {
            guard let top = stack.last else { throw err("memo put with an empty stack", at: at) }
            guard idx >= 0, idx < Self.maxMemo else { throw err("memo index \(idx) out of range", at: at) }
            guard memo.count < Self.maxMemo || memo[idx] != nil else { throw err("memo larger than \(Self.maxMemo)", at: at) }
            memo[idx] = top
        }
        func memoGet(_ idx: Int, _ at: Int) throws {
            guard let v = memo[idx] else { throw err("memo index \(idx) was never stored", at: at) }
            try push(v, at)
        }
        func intArg(_ v: PValue, _ what: String, _ at: Int) throws -> Int {
            guard case .int(let i) = v else { throw err("\(what): expected int, found \(v.kind)", at: at) }
            return i
        }
        func intTuple(_ v: PValue, _ what: String, _ at: Int) throws -> [Int] {
            let items: [PValue]
            switch v {
            case .tuple(let t, _): items = t
            case .list(let l): items = l.items
            default: throw err("\(what): expected a tuple of ints, found \(v.kind)", at: at)
            }
            return try items.map { try intArg($0, what, at) }
        }
        func dictKey(_ v: PValue, _ at: Int) throws -> PKey {
            switch v {
            case .str(let s): return .str(s)
            case .int(let i): return .int(i)
            default: throw err("dict key must be str or int, found \(v.kind)", at: at)
            }
        }
        func setItems(_ d: PDict, _ pairs: ArraySlice<PValue>, _ at: Int) throws {
            var it = pairs.makeIterator()
            while let k = it.next() {
                guard let v = it.next() else { throw err("SETITEMS: odd number of items", at: at) }
                d.set(try dictKey(k, at), v)
                d.depth = max(d.depth, v.depth + 1)
                guard d.depth <= Self.maxDepth else { throw err("nesting deeper than \(Self.maxDepth)", at: at) }
            }
        }
        func appendItems(_ l: PList, _ items: [PValue], _ at: Int) throws {
            for v in items {
                l.items.append(v)
                l.depth = max(l.depth, v.depth + 1)
            }
            guard l.depth <= Self.maxDepth else { throw err("nesting deeper than \(Self.maxDepth)", at: at) }
        }
        func reduce(_ callable: PValue, _ args: PValue, _ at: Int) throws -> PValue {
            guard case .global(let g, let gname) = callable else {
                throw err("REDUCE on a \(callable.kind), only allowed globals can be called", at: at)
            }
            guard case .tuple(let a, _) = args else { throw err("REDUCE \(gname): arguments must be a tuple, found \(args.kind)", at: at) }
            switch g {
            case .orderedDict:
                guard a.isEmpty else { throw err("REDUCE collections.OrderedDict: expected no arguments, got \(a.count)", at: at) }
                return .dict(PDict())
            case .rebuildTensorV2:
                guard a.count == 6 || a.count == 7 else {
                    throw err("_rebuild_tensor_v2: expected 6 or 7 arguments, got \(a.count)", at: at)
                }
                guard case .storage(let st) = a[0] else { throw err("_rebuild_tensor_v2: argument 0 must be a storage, found \(a[0].kind)", at: at) }
                let offset = try intArg(a[1], "_rebuild_tensor_v2 storage_offset", at)
                let shape = try intTuple(a[2], "_rebuild_tensor_v2 size", at)
                let stride = try intTuple(a[3], "_rebuild_tensor_v2 stride", at)
                guard case .bool = a[4] else { throw err("_rebuild_tensor_v2: requires_grad must be bool, found \(a[4].kind)", at: at) }
                switch a[5] {
                case .dict(let d):
                    guard d.keys.isEmpty else { throw err("_rebuild_tensor_v2: backward hooks are not supported", at: at) }
                case .none: break
                default: throw err("_rebuild_tensor_v2: backward_hooks must be a dict, found \(a[5].kind)", at: at)
                }
                return .tensor(TensorRef(storage: st, offset: offset, shape: shape, stride: stride))
            case .rebuildParameter:
                guard a.count == 3, case .tensor = a[0] else {
                    throw err("_rebuild_parameter: expected (tensor, requires_grad, hooks)", at: at)
                }
                return a[0]
            case .storageType:
                throw err("REDUCE on \(gname) is not allowed (storages come only from persistent ids)", at: at)
            }
        }

        while true {
            guard pos < n else { throw err("pickle ends without STOP", at: pos) }
            let at = pos
            let op = byte()
            switch op {
            case 0x80:  // PROTO
                try need(1, "PROTO", at)
                let v = byte()
                guard v >= 2, v <= 5 else { throw err("unsupported pickle protocol \(v)", at: at) }
            case 0x95:  // FRAME
                try need(8, "FRAME", at); _ = le(8)
            case 0x63:  // GLOBAL
                let module = try line(at)
                let name = try line(at)
                try push(try global(module, name, at), at)
            case 0x93:  // STACK_GLOBAL
                let nameV = try pop(at, "STACK_GLOBAL"), modV = try pop(at, "STACK_GLOBAL")
                guard case .str(let name) = nameV, case .str(let module) = modV else {
                    throw err("STACK_GLOBAL: module and name must be strings", at: at)
                }
                try push(try global(module, name, at), at)
            case 0x71:  // BINPUT
                try need(1, "BINPUT", at); try memoPut(byte(), at)
            case 0x72:  // LONG_BINPUT
                try need(4, "LONG_BINPUT", at); try memoPut(Int(le(4)), at)
            case 0x94:  // MEMOIZE
                try memoPut(memo.count, at)
            case 0x68:  // BINGET
                try need(1, "BINGET", at); try memoGet(byte(), at)
            case 0x6a:  // LONG_BINGET
                try need(4, "LONG_BINGET", at); try memoGet(Int(le(4)), at)
            case 0x7d: try push(.dict(PDict()), at)  // EMPTY_DICT
            case 0x29: try push(tuple([]), at)  // EMPTY_TUPLE
            case 0x5d: try push(.list(PList()), at)  // EMPTY_LIST
            case 0x28:  // MARK
                guard marks.count < Self.maxMarks else { throw err("more than \(Self.maxMarks) nested MARKs", at: at) }
                marks.append(stack.count)
            case 0x74: try push(tuple(try popMark(at, "TUPLE")), at)  // TUPLE
            case 0x85:  // TUPLE1
                let a = try pop(at, "TUPLE1"); try push(tuple([a]), at)
            case 0x86:  // TUPLE2
                let b = try pop(at, "TUPLE2"), a = try pop(at, "TUPLE2"); try push(tuple([a, b]), at)
            case 0x87:  // TUPLE3
                let c = try pop(at, "TUPLE3"), b = try pop(at, "TUPLE3"), a = try pop(at, "TUPLE3")
                try push(tuple([a, b, c]), at)
            case 0x73:  // SETITEM
                let v = try pop(at, "SETITEM"), k = try pop(at, "SETITEM")
                guard case .dict(let d)? = stack.last else { throw err("SETITEM on a non-dict", at: at) }
                try setItems(d, [k, v][...], at)
            case 0x75:  // SETITEMS
                let items = try popMark(at, "SETITEMS")
                guard case .dict(let d)? = stack.last else { throw err("SETITEMS on a non-dict", at: at) }
                try setItems(d, items[...], at)
            case 0x61:  // APPEND
                let v = try pop(at, "APPEND")
                guard case .list(let l)? = stack.last else { throw err("APPEND on a non-list", at: at) }
                try appendItems(l, [v], at)
            case 0x65:  // APPENDS
                let items = try popMark(at, "APPENDS")
                guard case .list(let l)? = stack.last else { throw err("APPENDS on a non-list", at: at) }
                try appendItems(l, items, at)
            case 0x4a:  // BININT
                try need(4, "BININT", at); try push(.int(Int(Int32(truncatingIfNeeded: le(4)))), at)
            case 0x4b:  // BININT1
                try need(1, "BININT1", at); try push(.int(byte()), at)
            case 0x4d:  // BININT2
                try need(2, "BININT2", at); try push(.int(Int(le(2))), at)
            case 0x8a, 0x8b:  // LONG1, LONG4
                let lenBytes = op == 0x8a ? 1 : 4
                try need(lenBytes, "LONG", at)
                let len = Int(le(lenBytes))
                guard len <= 8 else { throw err("LONG of \(len) bytes does not fit in 64 bits", at: at) }
                try need(len, "LONG", at)
                if len == 0 { try push(.int(0), at); break }
                let raw = le(len)
                let shift = UInt64(64 - 8 * len)
                let v = Int64(bitPattern: raw << shift) >> Int64(shift)  // sign-extend
                try push(.int(Int(v)), at)
            case 0x58:  // BINUNICODE
                try need(4, "BINUNICODE", at); let len = Int(le(4))
                try push(.str(try text(len, "BINUNICODE", at)), at)
            case 0x8c:  // SHORT_BINUNICODE
                try need(1, "SHORT_BINUNICODE", at); let len = byte()
                try push(.str(try text(len, "SHORT_BINUNICODE", at)), at)
            case 0x8d:  // BINUNICODE8
                try need(8, "BINUNICODE8", at)
                let raw = le(8)
                guard raw <= UInt64(n) else { throw err("BINUNICODE8 length \(raw) exceeds the pickle", at: at) }
                try push(.str(try text(Int(raw), "BINUNICODE8", at)), at)
            case 0x54, 0x55:  // BINSTRING, SHORT_BINSTRING (protocol 1 str)
                let lb = op == 0x54 ? 4 : 1
                try need(lb, "BINSTRING", at)
                let len = op == 0x54 ? Int(Int32(truncatingIfNeeded: le(4))) : byte()
                try push(.str(try text(len, "BINSTRING", at)), at)
            case 0x42, 0x43, 0x8e:  // BINBYTES, SHORT_BINBYTES, BINBYTES8
                let lb = op == 0x42 ? 4 : (op == 0x43 ? 1 : 8)
                try need(lb, "BINBYTES", at)
                let raw = le(lb)
                guard raw <= UInt64(n - pos) else { throw err("BINBYTES length \(raw) exceeds the \(n - pos) remaining bytes", at: at) }
                pos += Int(raw)
                try push(.bytes(Int(raw)), at)
            case 0x89: try push(.bool(false), at)  // NEWFALSE
            case 0x88: try push(.bool(true), at)  // NEWTRUE
            case 0x4e: try push(.none, at)  // NONE
            case 0x47:  // BINFLOAT (big-endian)
                try need(8, "BINFLOAT", at)
                var v: UInt64 = 0
                for _ in 0..<8 { v = v << 8 | UInt64(byte()) }
                try push(.float(Double(bitPattern: v)), at)
            case 0x51:  // BINPERSID
                let pid = try pop(at, "BINPERSID")
                guard case .tuple(let t, _) = pid, t.count == 5, case .str("storage") = t[0] else {
                    throw err("persistent id must be ('storage', type, key, location, numel), found \(pid.kind)", at: at)
                }
                guard case .global(.storageType(let dtype), _) = t[1] else {
                    throw err("persistent id: storage type must be a torch.*Storage global, found \(t[1].kind)", at: at)
                }
                guard case .str(let key) = t[2], case .str(let location) = t[3] else {
                    throw err("persistent id: key and location must be strings", at: at)
                }
                let numel = try intArg(t[4], "persistent id numel", at)
                try push(.storage(try persistentLoad(dtype, key, location, numel)), at)
            case 0x52:  // REDUCE
                let args = try pop(at, "REDUCE"), callable = try pop(at, "REDUCE")
                try push(try reduce(callable, args, at), at)
            case 0x62:  // BUILD
                let state = try pop(at, "BUILD")
                guard let target = stack.last else { throw err("BUILD with an empty stack", at: at) }
                switch (target, state) {
                case (.dict, .none), (.dict, .dict), (.dict, .tuple), (.tensor, .none), (.tensor, .dict), (.tensor, .tuple):
                    break  // attribute state (e.g. OrderedDict._metadata): ignored, nothing is set or called
                default:
                    throw err("BUILD on a \(target.kind) is not allowed", at: at)
                }
            case 0x30:  // POP
                if marks.last == stack.count { _ = marks.popLast() } else { _ = try pop(at, "POP") }
            case 0x31:  // POP_MARK
                _ = try popMark(at, "POP_MARK")
            case 0x32:  // DUP
                guard let top = stack.last else { throw err("DUP with an empty stack", at: at) }
                try push(top, at)
            case 0x2e:  // STOP
                guard let result = stack.last, stack.count == 1, marks.isEmpty else {
                    throw err("STOP with \(stack.count) items on the stack (expected 1)", at: at)
                }
                return result
            default:
                throw err(String(format: "unsupported or disallowed opcode 0x%02x", op), at: at)
            }
        }
    }
}
