import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Element types of stored tensors (safetensors spelling).
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64: return true
        default: return false
        }
    }
}

public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Number of elements (product of the shape; 1 for a scalar). Readers validate that it does not
    /// overflow; for a hand-made invalid shape (negative or overflowing) this is 0 instead of a trap.
    public var count: Int { checkedProduct(shape) ?? 0 }

    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }
}

public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let reason: String
    public var description: String { "\(file): \(reason)" }

    public init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }
}

/// Any file (or set of files) that holds named tensors.
public protocol TensorArchive: AnyObject, Sendable {
    var files: [URL] { get }
    var tensors: [String: TensorInfo] { get }
    /// Values converted to Float32 (F32 copied, F16/BF16/F64 converted). Throws CheckpointError for unknown names or non-float dtypes.
    func floats(_ name: String) throws -> [Float]
    /// Integer tensors (I64/I32/...) as Int, for test fixtures such as input ids.
    func ints(_ name: String) throws -> [Int]
}

// MARK: - Internal helpers

/// Product of dims with overflow and sign checks. Returns nil on overflow or a negative dim.
func checkedProduct(_ dims: [Int]) -> Int? {
    var p = 1
    for d in dims {
        guard d >= 0 else { return nil }
        let (r, o) = p.multipliedReportingOverflow(by: d)
        if o { return nil }
        p = r
    }
    return p
}

func checkedMul(_ a: Int, _ b: Int) -> Int? {
    let (r, o) = a.multipliedReportingOverflow(by: b)
    return o ? nil : r
}

func checkedAdd(_ a: Int, _ b: Int) -> Int? {
    let (r, o) = a.addingReportingOverflow(b)
    return o ? nil : r
}

/// A read-only memory map of a whole file. Unmapped when the last reference goes away.
final class MappedFile: @unchecked Sendable {
    let url: URL
    let size: Int
    private let base: UnsafeMutableRawPointer?
    /// Kept open for `pread`, which copies large tensors faster than faulting in mapped pages.
    private let fd: Int32

    init(url: URL) throws {
        self.url = url
        let path = url.path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CheckpointError(file: path, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let reason = "cannot stat: \(String(cString: strerror(errno)))"
            close(fd)
            throw CheckpointError(file: path, reason: reason)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw CheckpointError(file: path, reason: "not a regular file")
        }
        self.fd = fd
        let size = Int(st.st_size)
        self.size = size
        if size == 0 {
            base = nil
        } else {
            let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != MAP_FAILED else {
                close(fd)
                throw CheckpointError(file: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
            }
            base = p
        }
    }

    deinit {
        if let base { munmap(base, size) }
        close(fd)
    }

    /// Copies `count` bytes at `offset` into `dst` with pread (falls back to the map on error).
    func copy(to dst: UnsafeMutableRawPointer, offset: Int, count: Int) {
        var done = 0
        while done < count {
            let n = pread(fd, dst + done, count - done, off_t(offset + done))
            if n > 0 { done += n; continue }
            if n < 0, errno == EINTR { continue }
            break
        }
        if done < count, let base {
            memcpy(dst + done, base + offset + done, count - done)
        }
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// Pointer to `offset`; the caller has checked `offset + length <= size`.
    func pointer(at offset: Int) -> UnsafeRawPointer? {
        guard let base, offset >= 0, offset <= size else { return nil }
        return UnsafeRawPointer(base + offset)
    }
}

/// Where a tensor's bytes lie inside a mapped file (absolute offset, contiguous, little-endian).
struct TensorLocation: Sendable {
    let info: TensorInfo
    let count: Int
    let offset: Int
    var byteCount: Int { count * info.dtype.byteSize }
}

@inline(__always)
func halfToFloat(_ h: UInt16) -> Float {
    let sign: UInt32 = UInt32(h & 0x8000) << 16
    let exp = UInt32((h >> 10) & 0x1f)
    let mant = UInt32(h & 0x3ff)
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        let v = Float(mant) * (1.0 / 16_777_216.0)  // mant * 2^-24
        return sign != 0 ? -v : v
    }
    if exp == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }
    return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
}

func readFloats(_ file: MappedFile, _ loc: TensorLocation) throws -> [Float] {
    let path = file.url.path
    let n = loc.count
    guard loc.info.dtype.isFloatingPoint else {
        throw CheckpointError(file: path, reason: "tensor '\(loc.info.name)': dtype \(loc.info.dtype.rawValue) is not floating point (use ints())")
    }
    if n == 0 { return [] }
    guard let end = checkedAdd(loc.offset, loc.byteCount), end <= file.size, let p = file.pointer(at: loc.offset) else {
        throw CheckpointError(file: path, reason: "tensor '\(loc.info.name)': byte range outside the file")
    }
    switch loc.info.dtype {
    case .f32:
        return [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            if let dst = buf.baseAddress {
                if n >= 1 << 18 { file.copy(to: dst, offset: loc.offset, count: n * 4) } else { memcpy(dst, p, n * 4) }
            }
            initialized = n
        }
    case .f16:
        return [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            for i in 0..<n { buf[i] = halfToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
            initialized = n
        }
    case .bf16:
        return [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            for i in 0..<n {
                let b = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                buf[i] = Float(bitPattern: UInt32(b) << 16)
            }
            initialized = n
        }
    case .f64:
        return [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            for i in 0..<n {
                let bits = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
                buf[i] = Float(Double(bitPattern: bits))
            }
            initialized = n
        }
    default:
        return []  // unreachable: checked above
    }
}

func readInts(_ file: MappedFile, _ loc: TensorLocation) throws -> [Int] {
    let path = file.url.path
    let n = loc.count
    guard !loc.info.dtype.isFloatingPoint else {
        throw CheckpointError(file: path, reason: "tensor '\(loc.info.name)': dtype \(loc.info.dtype.rawValue) is not an integer type (use floats())")
    }
    if n == 0 { return [] }
    guard let end = checkedAdd(loc.offset, loc.byteCount), end <= file.size, let p = file.pointer(at: loc.offset) else {
        throw CheckpointError(file: path, reason: "tensor '\(loc.info.name)': byte range outside the file")
    }
    return [Int](unsafeUninitializedCapacity: n) { buf, initialized in
        switch loc.info.dtype {
        case .i64: for i in 0..<n { buf[i] = Int(Int64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
        case .i32: for i in 0..<n { buf[i] = Int(Int32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
        case .i16: for i in 0..<n { buf[i] = Int(Int16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
        case .i8: for i in 0..<n { buf[i] = Int(p.load(fromByteOffset: i, as: Int8.self)) }
        case .u8: for i in 0..<n { buf[i] = Int(p.load(fromByteOffset: i, as: UInt8.self)) }
        case .bool: for i in 0..<n { buf[i] = p.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0 }
        default: for i in 0..<n { buf[i] = 0 }
        }
        initialized = n
    }
}
