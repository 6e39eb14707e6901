import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Download progress on standard error: a bar redrawn in place on a terminal, a line at the start
/// and the end of each file otherwise (logs and pipes get no carriage-return noise).
public final class ProgressDisplay: @unchecked Sendable {
    private let lock = NSLock()
    private let terminal: Bool
    private var label = ""
    private var total: Int64?
    private var done: Int64 = 0
    private var initial: Int64 = 0
    private var started = Date()
    private var lastDraw = Date.distantPast
    private var barShown = false

    /// `terminal` nil: decide by whether standard error is a terminal.
    public init(terminal: Bool? = nil) {
        self.terminal = terminal ?? (isatty(STDERR_FILENO) == 1)
    }

    func begin(label: String, total: Int64?, initial: Int64) {
        lock.withLock {
            self.label = label
            self.total = total
            self.initial = initial
            done = initial
            started = Date()
            lastDraw = .distantPast
            if terminal {
                draw(force: true)
            } else {
                let size = total.map { " (\(mebibytes($0)))" } ?? ""
                emit(initial > 0 ? "resuming \(label) at \(mebibytes(initial))\(size)" : "downloading \(label)\(size)")
            }
        }
    }

    func advance(by bytes: Int) {
        lock.withLock {
            done += Int64(bytes)
            if terminal { draw(force: false) }
        }
    }

    func end(ok: Bool) {
        lock.withLock {
            if terminal {
                if barShown { draw(force: true); emit("") }
                barShown = false
            } else if ok {
                emit("\(label): \(mebibytes(done)) done")
            }
        }
    }

    /// A message line (clears a bar in progress first).
    public func note(_ text: String) {
        lock.withLock {
            if terminal && barShown { emit("\r\u{1B}[2K", newline: false); barShown = false }
            emit(text)
        }
    }

    private func draw(force: Bool) {
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        let elapsed = max(now.timeIntervalSince(started), 0.001)
        let rate = Double(done - initial) / elapsed
        var line = "\r\u{1B}[2K" + (label.count > 40 ? "…" + label.suffix(39) : label)
        if let total, total > 0 {
            let fraction = min(1, Double(done) / Double(total))
            let width = 24
            let filled = Int(fraction * Double(width))
            line += " [" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
            line += String(format: " %3d%% %@ / %@", Int(fraction * 100), mebibytes(done), mebibytes(total))
        } else {
            line += " " + mebibytes(done)
        }
        line += " " + mebibytes(Int64(rate)) + "/s"
        emit(line, newline: false)
        barShown = true
    }

    private func emit(_ text: String, newline: Bool = true) {
        FileHandle.standardError.write(Data((text + (newline ? "\n" : "")).utf8))
    }
}

func mebibytes(_ bytes: Int64) -> String {
    bytes >= 1 << 20 ? String(format: "%.1f MiB", Double(bytes) / 1_048_576) : String(format: "%.1f KiB", Double(bytes) / 1024)
}
