import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Shared plumbing for the libFuzzer harnesses (Fuzz/Sources/Fuzz*).
///
/// The readers take file URLs, so each input is written to a per-process file on tmpfs
/// (`/dev/shm` when present) and overwritten by the next input.
public enum FuzzIO {
    public static let directory: URL = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let dir = URL(fileURLWithPath: base).appendingPathComponent("backpack-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// Writes `bytes` to `directory/name` (truncating) and returns its URL.
    @discardableResult
    public static func file(_ name: String, _ bytes: UnsafeRawBufferPointer) -> URL {
        let url = directory.appendingPathComponent(name)
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        precondition(fd >= 0, "fuzz: cannot create \(url.path)")
        var done = 0
        while done < bytes.count, let base = bytes.baseAddress {
            let n = write(fd, base + done, bytes.count - done)
            precondition(n > 0 || errno == EINTR, "fuzz: write failed")
            if n > 0 { done += n }
        }
        close(fd)
        return url
    }

    @discardableResult
    public static func file(_ name: String, _ bytes: some Collection<UInt8>) -> URL {
        Array(bytes).withUnsafeBytes { file(name, $0) }
    }

    /// The repository root (fixtures in Tests/Fixtures, GPT-2's BPE in Sources/BackpackTokenizer/GPT2).
    public static let repository: URL = {
        // .../Fuzz/Sources/FuzzSupport/FuzzSupport.swift -> repository root
        var u = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { u.deleteLastPathComponent() }
        return u
    }()

    /// Without -D FUZZING the harnesses are replay tools: each argument (a file, or a folder of
    /// files such as a seed corpus or a crash) is run through the harness once.
    public static func replay(_ arguments: some Sequence<String>, _ body: (UnsafeRawBufferPointer) -> Void) {
        var count = 0
        for arg in arguments {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: arg, isDirectory: &isDir) else {
                FileHandle.standardError.write(Data("no such file: \(arg)\n".utf8))
                exit(2)
            }
            let files: [String]
            if isDir.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: arg)) ?? []
                files = names.sorted().map { (arg as NSString).appendingPathComponent($0) }
            } else {
                files = [arg]
            }
            for f in files {
                guard let data = FileManager.default.contents(atPath: f) else { continue }
                data.withUnsafeBytes { body($0) }
                count += 1
            }
        }
        print("replayed \(count) input(s) without a crash")
        try? FileManager.default.removeItem(at: directory)
    }
}

#if FUZZING
/// libFuzzer's entry for programs that have their own `main` (SwiftPM gives every executable
/// one, `<Module>_main`, so libFuzzer's `main` cannot be used).
@_silgen_name("LLVMFuzzerRunDriver")
private func llvmFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// The running harness's body, for the C callback (which cannot capture).
nonisolated(unsafe) private var harnessBody: ((UnsafeRawBufferPointer) -> Void)?

/// libFuzzer's runtime links against this symbol; it runs the harness's body.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    harnessBody?(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#endif

extension FuzzIO {
    /// A harness's whole `main`: with -D FUZZING, libFuzzer runs `body` on each input (through
    /// LLVMFuzzerRunDriver with the process's arguments); without it, the arguments are files or
    /// folders of inputs to replay through `body` once each.
    public static func main(_ body: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
        #if FUZZING
        harnessBody = body
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(llvmFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput))
        #else
        replay(CommandLine.arguments.dropFirst(), body)
        exit(0)
        #endif
    }
}
