import BackpackIO
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Glibc.write(fd, p, n) }
private func posixClose(_ fd: Int32) -> Int32 { Glibc.close(fd) }
private func posixTruncate(_ path: String) -> Int32 { Glibc.truncate(path, 0) }
#elseif canImport(Darwin)
import Darwin
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Darwin.write(fd, p, n) }
private func posixClose(_ fd: Int32) -> Int32 { Darwin.close(fd) }
private func posixTruncate(_ path: String) -> Int32 { Darwin.truncate(path, 0) }
#endif

// The project's one HTTP client (model downloads and `backpack data fetch`).
//
// Why URLSession (libcurl underneath on Linux) and not a curl subprocess: the delegate sees the
// status line and headers *before* the first body byte, so a resumed transfer can decide between
// appending (206 with a matching Content-Range) and starting over (200: the server ignored Range)
// before it writes anything; a redirect can be refused per request (the Hub's HEAD must not follow
// the LFS redirect, whose Location is the download address); body bytes come to us, so progress,
// write errors (ENOSPC names our file, not curl's) and the partial file stay under our control.
// With a curl process the headers and body arrive in separate streams whose order is not
// guaranteed, `-C` fails outright on a 200, and every file costs a process.

/// Status, final address and headers (names lower-cased) of one response.
public struct HTTPResponseHead: Sendable {
    public let status: Int
    public let url: URL
    public let headers: [String: String]

    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    init(_ response: HTTPURLResponse) {
        status = response.statusCode
        url = response.url ?? URL(fileURLWithPath: "/")
        var h: [String: String] = [:]
        for (k, v) in response.allHeaderFields {
            if let k = k as? String, let v = v as? String { h[k.lowercased()] = v }
        }
        headers = h
    }
}

public struct HTTPClient: Sendable {
    /// Sent with every request (Authorization is dropped when a redirect leaves the host).
    public var headers: [String: String]
    /// Seconds without any data before a request is abandoned.
    public var idleTimeout: TimeInterval
    /// Seconds a whole transfer may take (nil: no limit).
    public var totalTimeout: TimeInterval?
    /// Transfers cut mid-body are resumed this many times when the cut transfer made progress.
    public var resumeAttempts: Int

    public init(headers: [String: String] = [:], idleTimeout: TimeInterval = 60, totalTimeout: TimeInterval? = nil,
                resumeAttempts: Int = 3) {
        self.headers = headers
        self.idleTimeout = idleTimeout
        self.totalTimeout = totalTimeout
        self.resumeAttempts = resumeAttempts
    }

    /// HEAD without following redirects: a 3xx comes back as it is, with its Location.
    public func head(_ url: URL, headers extra: [String: String] = [:]) throws -> HTTPResponseHead {
        var request = makeRequest(url, extra)
        request.httpMethod = "HEAD"
        let transfer = Transfer(followRedirects: false, sink: nil)
        try run(request, transfer)
        if let error = transfer.transportError {
            throw DownloadError(.unreachable, "cannot reach \(url.absoluteString): \(describe(error))")
        }
        guard let head = transfer.head else {
            throw DownloadError(.badResponse, "\(url.absoluteString): no HTTP response")
        }
        return head
    }

    /// Downloads `url` into `partial`, resuming from the bytes already there (Range: bytes=N-),
    /// then checks the size and SHA-256 and renames the file to `destination` (same folder or at
    /// least the same file system, so the rename is atomic). Returns the SHA-256 (lowercase hex).
    /// On a checksum or size mismatch the partial file is removed; on a cut connection it is kept.
    public func fetch(_ url: URL, partial: URL, destination: URL, expectedSize: Int64? = nil,
                      expectedSHA256: String? = nil, label: String, progress: ProgressDisplay? = nil,
                      headers extra: [String: String] = [:]) throws -> String {
        var attempt = 0
        var restartedAfter416 = false
        while true {
            attempt += 1
            let before = fileSize(partial)
            if let expectedSize, before > expectedSize { try truncate(partial) }
            if let expectedSize, before == expectedSize { break }
            do {
                try get(url, into: partial, label: label, expectedSize: expectedSize, progress: progress, headers: extra)
                break
            } catch let error as DownloadError where error.kind == .interrupted {
                let after = fileSize(partial)
                guard attempt <= resumeAttempts, after > before else { throw error }
                progress?.note("\(label): connection lost after \(after) bytes; resuming (attempt \(attempt + 1))")
            } catch let error as DownloadError where error.kind == .httpStatus(416) && !restartedAfter416 {
                // Range past the end: the partial file is not a prefix of this file; start over.
                restartedAfter416 = true
                try truncate(partial)
            }
        }
        let size = fileSize(partial)
        if let expectedSize, size != expectedSize {
            if size > expectedSize { try? FileManager.default.removeItem(at: partial) }
            throw DownloadError(size < expectedSize ? .interrupted : .badResponse,
                                "\(label): got \(size) bytes from \(url.absoluteString), expected \(expectedSize)"
                                + (size < expectedSize ? "; the partial file \(partial.path) is kept: run again to resume"
                                                       : "; the partial file was removed"))
        }
        let digest = try FileDigest.sha256(partial)
        if let expectedSHA256, digest != expectedSHA256.lowercased() {
            try? FileManager.default.removeItem(at: partial)
            throw DownloadError(.checksumMismatch,
                                "\(label): checksum mismatch: SHA-256 \(digest) does not match the expected \(expectedSHA256); the downloaded file was removed, not cached")
        }
        guard rename(partial.path, destination.path) == 0 else {
            let code = errno
            throw DownloadError(.notWritable, "cannot move \(partial.path) to \(destination.path): \(String(cString: strerror(code)))")
        }
        return digest
    }

    /// One GET appending to `partial`; errors are typed (interrupted / unreachable / HTTP status / disk).
    func get(_ url: URL, into partial: URL, label: String, expectedSize: Int64?, progress: ProgressDisplay?,
             headers extra: [String: String]) throws {
        let start = fileSize(partial)
        var request = makeRequest(url, extra)
        if start > 0 { request.setValue("bytes=\(start)-", forHTTPHeaderField: "Range") }
        let sink = try AppendFile(partial)
        let transfer = Transfer(followRedirects: true, sink: sink)
        transfer.decide = { head in
            switch head.status {
            case 206 where start > 0:
                // Content-Range: bytes START-END/TOTAL must continue exactly where the file ends.
                let range = head.header("content-range") ?? ""
                guard range.hasPrefix("bytes \(start)-") else {
                    throw DownloadError(.badResponse, "\(label): asked for bytes from \(start), the server sent '\(range)'")
                }
            case 200:
                if start > 0 {
                    progress?.note("\(label): the server ignored the range request; downloading from the start")
                    try sink.truncate()
                }
            default:
                throw DownloadError(.httpStatus(head.status), "\(label): \(url.absoluteString) answered HTTP \(head.status)")
            }
            let length = head.header("content-length").flatMap { Int64($0) }
            let offset = head.status == 206 ? start : 0
            progress?.begin(label: label, total: expectedSize ?? length.map { $0 + offset }, initial: offset)
            return true
        }
        transfer.onBytes = { progress?.advance(by: $0) }
        defer { sink.close() }
        try run(request, transfer)
        progress?.end(ok: transfer.localError == nil && transfer.transportError == nil)
        if let error = transfer.localError as? DownloadError, error.kind == .diskFull || error.kind == .notWritable {
            throw DownloadError(error.kind, "\(label): \(error.description)")
        }
        if let error = transfer.localError { throw error }
        if let error = transfer.transportError {
            if transfer.head == nil {
                throw DownloadError(.unreachable, "cannot reach \(url.host ?? url.absoluteString) for \(label): \(describe(error))")
            }
            throw DownloadError(.interrupted, "\(label): transfer from \(url.absoluteString) interrupted after \(fileSize(partial)) bytes (\(describe(error))); the partial file \(partial.path) is kept: run again to resume")
        }
        try sink.sync()
    }

    func makeRequest(_ url: URL, _ extra: [String: String]) -> URLRequest {
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: idleTimeout)
        // The real size, and byte ranges that mean bytes of the file (not of a compressed body).
        request.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        for (k, v) in headers.merging(extra, uniquingKeysWith: { $1 }) { request.setValue(v, forHTTPHeaderField: k) }
        return request
    }

    func run(_ request: URLRequest, _ transfer: Transfer) throws {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = idleTimeout
        configuration.timeoutIntervalForResource = totalTimeout ?? 7 * 24 * 3600
        configuration.urlCache = nil
        configuration.httpShouldSetCookies = false
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1  // delegate calls one at a time: Transfer's state needs no lock
        let session = URLSession(configuration: configuration, delegate: transfer, delegateQueue: queue)
        let task = session.dataTask(with: request)
        task.resume()
        transfer.finished.wait()
        session.finishTasksAndInvalidate()
    }
}

/// URLSession delegate of one request. Its calls arrive on a serial queue; the caller reads the
/// results only after `finished` is signalled.
final class Transfer: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let followRedirects: Bool
    let sink: AppendFile?
    /// Called with the final response head; true: write the body to `sink`. Throwing cancels.
    var decide: ((HTTPResponseHead) throws -> Bool)?
    var onBytes: ((Int) -> Void)?
    private(set) var head: HTTPResponseHead?
    private(set) var transportError: Error?
    private(set) var localError: Error?
    private var writing = false
    let finished = DispatchSemaphore(value: 0)

    init(followRedirects: Bool, sink: AppendFile?) {
        self.followRedirects = followRedirects
        self.sink = sink
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
        guard followRedirects else { completionHandler(nil); return }
        var next = request
        // A signed CDN address needs no token, and the token must not leak to another host.
        if let from = task.originalRequest?.url?.host, let to = request.url?.host, from != to {
            next.setValue(nil, forHTTPHeaderField: "Authorization")
        }
        completionHandler(next)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void) {
        guard let http = response as? HTTPURLResponse else {
            localError = DownloadError(.badResponse, "\(response.url?.absoluteString ?? "?"): not an HTTP response")
            completionHandler(.cancel)
            return
        }
        let head = HTTPResponseHead(http)
        self.head = head
        do {
            writing = try decide?(head) ?? false
            completionHandler(.allow)
        } catch {
            localError = error
            completionHandler(.cancel)
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard writing, localError == nil, let sink else { return }
        do {
            try sink.write(data)
            onBytes?(data.count)
        } catch {
            localError = error
            writing = false
            dataTask.cancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if head == nil, let http = task.response as? HTTPURLResponse { head = HTTPResponseHead(http) }
        if localError == nil { transportError = error }
        finished.signal()
    }
}

/// A file opened for appending with plain POSIX calls, so that a failed write reports its errno
/// (ENOSPC, EDQUOT, EFBIG) and the path.
final class AppendFile: @unchecked Sendable {
    let url: URL
    private var fd: Int32

    init(_ url: URL) throws {
        self.url = url
        fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw writeError(errno, url.path, "open") }
    }

    func write(_ data: Data) throws {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < raw.count {
                let n = posixWrite(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw writeError(errno, url.path, "write")
                }
                offset += n
            }
        }
    }

    func truncate() throws {
        guard ftruncate(fd, 0) == 0 else { throw writeError(errno, url.path, "truncate") }
    }

    func sync() throws {
        guard fsync(fd) == 0 else { throw writeError(errno, url.path, "fsync") }
    }

    func close() {
        if fd >= 0 { _ = posixClose(fd); fd = -1 }
    }

    deinit { close() }
}

func writeError(_ code: Int32, _ path: String, _ operation: String) -> DownloadError {
    let text = String(cString: strerror(code))
    switch code {
    case ENOSPC, EDQUOT:
        return DownloadError(.diskFull, "no space left to write \(path) (\(text)): free some space, or set HF_HUB_CACHE to a folder on a bigger disk; the partial file is kept for resuming")
    case EFBIG:
        return DownloadError(.diskFull, "cannot write \(path): \(text) (the file-size limit, ulimit -f, is lower than the file); the partial file is kept for resuming")
    default:
        return DownloadError(.notWritable, "cannot \(operation) \(path): \(text)")
    }
}

/// Size of a file, 0 when it does not exist.
func fileSize(_ url: URL) -> Int64 {
    var info = stat()
    guard stat(url.path, &info) == 0 else { return 0 }
    return Int64(info.st_size)
}

func truncate(_ url: URL) throws {
    guard posixTruncate(url.path) == 0 || errno == ENOENT else { throw writeError(errno, url.path, "truncate") }
}

func describe(_ error: Error) -> String {
    let ns = error as NSError
    return ns.localizedDescription.isEmpty ? String(describing: error) : ns.localizedDescription
}
