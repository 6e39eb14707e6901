import BackpackExplorer
import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

// The Host check on a real server bound to loopback, through a raw socket: the testing module's
// client always says `Host: localhost`, and a DNS-rebinding page's request differs only there.
final class RealServerTests: XCTestCase {
    func testForeignHostIsRefused() async throws {
        let dir = try TestPaths.temporaryDirectory("explore-live")
        defer { try? FileManager.default.removeItem(at: dir) }
        let explorer = try Explorer(model: TestPaths.demoModel, editsDirectory: dir, resultsFile: dir.appendingPathComponent("r.h5"))
        let server = ExplorerServer(explorer: explorer, token: "live-token", host: "127.0.0.1", port: 0)
        let app = server.application()
        let running = Task { try await app.runService() }
        defer { running.cancel() }
        var waited = 0
        while server.port == 0 && waited < 200 { try await Task.sleep(for: .milliseconds(50)); waited += 1 }
        let port = server.port
        XCTAssertNotEqual(port, 0, "the server did not start")
        XCTAssertTrue(server.url.hasPrefix("http://127.0.0.1:\(port)/?token=live-token"), server.url)

        func status(host: String, token: String = "live-token") throws -> String {
            let request = "GET /api/info HTTP/1.1\r\nHost: \(host)\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n\r\n"
            return try Self.exchange(port: port, request).split(separator: "\r\n").first.map(String.init) ?? ""
        }
        XCTAssertEqual(try status(host: "127.0.0.1:\(port)"), "HTTP/1.1 200 OK")
        XCTAssertEqual(try status(host: "localhost:\(port)"), "HTTP/1.1 200 OK")
        XCTAssertEqual(try status(host: "evil.example:\(port)"), "HTTP/1.1 403 Forbidden")
        XCTAssertEqual(try status(host: "127.0.0.1:\(port + 1)"), "HTTP/1.1 403 Forbidden")
        XCTAssertEqual(try status(host: "127.0.0.1:\(port)", token: "wrong"), "HTTP/1.1 403 Forbidden")
    }

    struct SocketError: Error { let what: String }

    /// Sends `request` to 127.0.0.1:port and reads the answer until the server closes.
    static func exchange(port: Int, _ request: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError(what: "socket") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw SocketError(what: "connect") }
        let bytes = Array(request.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw SocketError(what: "write") }
        var answer: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            answer += buffer[0..<n]
        }
        return String(decoding: answer, as: UTF8.self)
    }
}
