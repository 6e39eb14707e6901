import Foundation

/// One stored (uncompressed) member of a zip archive, as a byte range of the mapped file.
struct ZipEntry: Sendable {
    let name: String
    let dataOffset: Int
    let size: Int
}

/// Reads the central directory of a zip archive (zip64 included) held in a mapped file.
/// Only stored, unencrypted members are accepted, because their bytes are used in place.
enum ZipReader {
    static func entries(of file: MappedFile) throws -> [String: ZipEntry] {
        let path = file.url.path
        func err(_ reason: String) -> CheckpointError { CheckpointError(file: path, reason: "zip: " + reason) }
        let b = file.bytes
        let size = b.count
        func u16(_ o: Int) -> Int { Int(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt16.self))) }
        func u32(_ o: Int) -> Int { Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt32.self))) }
        func u64(_ o: Int) throws -> Int {
            let v = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt64.self))
            guard v <= UInt64(Int.max) else { throw err("64-bit field at offset \(o) is out of range") }
            return Int(v)
        }

        // End of central directory: 22 bytes + comment (<= 65535), searched from the end.
        guard size >= 22 else { throw err("file is \(size) bytes, too short for a zip archive (no end-of-central-directory record)") }
        var eocd = -1
        var o = size - 22
        let lowest = max(0, size - 22 - 65535)
        while o >= lowest {
            if b[o] == 0x50, b[o + 1] == 0x4b, b[o + 2] == 0x05, b[o + 3] == 0x06, o + 22 + u16(o + 20) == size {
                eocd = o
                break
            }
            o -= 1
        }
        guard eocd >= 0 else {
            if size >= 2, b[0] == 0x80 {
                throw err("not a zip archive: this looks like the legacy (pre-1.6) torch.save format, which is not supported")
            }
            throw err("end-of-central-directory record not found (truncated or not a zip archive)")
        }
        var count = u16(eocd + 10)
        var cdSize = u32(eocd + 12)
        var cdOffset = u32(eocd + 16)
        guard u16(eocd + 4) == 0 || u16(eocd + 4) == 0xFFFF, u16(eocd + 6) == 0 || u16(eocd + 6) == 0xFFFF else {
            throw err("multi-disk archives are not supported")
        }
        if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            // zip64 end-of-central-directory locator sits just before the EOCD.
            let loc = eocd - 20
            guard loc >= 0, u32(loc) == 0x0706_4b50 else {
                throw err("zip64 fields present but the zip64 end-of-central-directory locator is missing")
            }
            let rec = try u64(loc + 8)
            guard rec <= size - 56, u32(rec) == 0x0606_4b50 else {
                throw err("zip64 end-of-central-directory record at \(rec) is invalid or outside the file")
            }
            count = try u64(rec + 32)
            cdSize = try u64(rec + 40)
            cdOffset = try u64(rec + 48)
        }
        guard cdOffset <= size, cdSize <= size - cdOffset else {
            throw err("central directory [\(cdOffset), +\(cdSize)) lies outside the \(size)-byte file")
        }
        guard let minBytes = checkedMul(count, 46), minBytes <= cdSize else {
            throw err("central directory of \(cdSize) bytes cannot hold \(count) entries (truncated)")
        }
        let cdEnd = cdOffset + cdSize
        var out: [String: ZipEntry] = [:]
        out.reserveCapacity(count)
        var p = cdOffset
        for k in 0..<count {
            guard p + 46 <= cdEnd, u32(p) == 0x0201_4b50 else {
                throw err("central directory entry \(k) at offset \(p) is truncated or has a bad signature")
            }
            let flags = u16(p + 8)
            let method = u16(p + 10)
            var csize = u32(p + 20)
            var usize = u32(p + 24)
            let nameLen = u16(p + 28), extraLen = u16(p + 30), commentLen = u16(p + 32)
            var local = u32(p + 42)
            let next = p + 46 + nameLen + extraLen + commentLen
            guard next <= cdEnd else { throw err("central directory entry \(k) runs past the directory's end") }
            let nameBytes = UnsafeRawBufferPointer(rebasing: b[(p + 46)..<(p + 46 + nameLen)])
            guard let name = String(validating: nameBytes, as: UTF8.self) else {
                throw err("entry \(k): name is not valid UTF-8")
            }
            // zip64 extended information: only the fields that are saturated in the header, in order.
            if usize == 0xFFFF_FFFF || csize == 0xFFFF_FFFF || local == 0xFFFF_FFFF {
                var e = p + 46 + nameLen
                let eEnd = e + extraLen
                var found = false
                while e + 4 <= eEnd {
                    let id = u16(e), len = u16(e + 2)
                    guard e + 4 + len <= eEnd else { break }
                    if id == 0x0001 {
                        var f = e + 4
                        let fEnd = f + len
                        func take() throws -> Int {
                            guard f + 8 <= fEnd else { throw err("entry '\(name)': zip64 extra field too short") }
                            defer { f += 8 }
                            return try u64(f)
                        }
                        if usize == 0xFFFF_FFFF { usize = try take() }
                        if csize == 0xFFFF_FFFF { csize = try take() }
                        if local == 0xFFFF_FFFF { local = try take() }
                        found = true
                        break
                    }
                    e += 4 + len
                }
                guard found else { throw err("entry '\(name)': saturated sizes but no zip64 extra field") }
            }
            guard flags & 0x1 == 0, flags & 0x40 == 0 else { throw err("entry '\(name)' is encrypted; refusing") }
            guard method == 0 else {
                throw err("entry '\(name)' is compressed (method \(method)); only stored entries can be memory-mapped")
            }
            guard csize == usize else {
                throw err("entry '\(name)': stored entry has compressed size \(csize) != size \(usize)")
            }
            guard local <= size - 30, u32(local) == 0x0403_4b50 else {
                throw err("entry '\(name)': local header offset \(local) is outside the archive or has a bad signature")
            }
            let dataOffset = local + 30 + u16(local + 26) + u16(local + 28)
            guard dataOffset <= cdOffset, usize <= cdOffset - dataOffset else {
                throw err("entry '\(name)': data [\(dataOffset), +\(usize)) runs outside the archive's data area (ends at \(cdOffset))")
            }
            guard out[name] == nil else { throw err("duplicate entry name '\(name)'") }
            out[name] = ZipEntry(name: name, dataOffset: dataOffset, size: usize)
            p = next
        }
        return out
    }
}
