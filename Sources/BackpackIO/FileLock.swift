import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive advisory lock (flock) on a lock file, held by this process until `release()` or
/// exit (the kernel drops it when the process dies, also on SIGKILL, so a killed writer never
/// leaves a stale lock). The lock file itself stays: deleting it would let a waiting process lock
/// an unlinked file while a newcomer locks a fresh one.
public final class FileLock {
    private var fd: Int32

    private init(fd: Int32) { self.fd = fd }

    /// Takes the lock on `lockFile` for writing `target`. If another process holds it, writes one
    /// line to stderr and waits up to `timeout` seconds, then throws an error naming `target`.
    public static func acquire(_ lockFile: URL, for target: String, timeout: Double,
                               waiting: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) throws -> FileLock {
        let fd = open(lockFile.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw OutputError(file: target, reason: "cannot create the lock file \(lockFile.path): \(String(cString: strerror(errno)))")
        }
        let start = Date()
        var announced = false
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR else {
                close(fd)
                throw OutputError(file: target, reason: "cannot lock \(lockFile.path): \(String(cString: strerror(code)))")
            }
            let waited = Date().timeIntervalSince(start)
            if waited >= timeout {
                close(fd)
                throw OutputError(file: target, reason: String(format: "timed out after %.0f s waiting for the lock %@ held by another backpack process; nothing was written (raise --lock-timeout, or let the other run finish)", waited, lockFile.path))
            }
            if !announced {
                waiting("waiting for the lock on \(target) held by another backpack process (up to \(Int(timeout)) s, --lock-timeout)")
                announced = true
            }
            usleep(50_000)
        }
        return FileLock(fd: fd)
    }

    /// Releases the lock (also done when the object is released).
    public func release() {
        guard fd >= 0 else { return }
        _ = flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
