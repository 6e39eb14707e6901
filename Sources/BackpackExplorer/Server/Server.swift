import BackpackIO
import Foundation
import Hummingbird
import Logging

// `backpack explore`'s HTTP server (Hummingbird). A local server is reachable from every page
// the user's browser opens, so (docs/EXPLORE.md, "Security"):
// - the Host header must name the bound address (refuses DNS rebinding), and an Origin header,
//   when present, the page's own (refuses cross-site requests);
// - every /api call carries `Authorization: Bearer TOKEN`, the random token printed at start;
// - bodies are at most 1 MB; at most `slots` computations run at once, `queueLimit` more wait,
//   and beyond that the answer is 503;
// - no request names a path; every error is JSON naming the field.

public final class ExplorerServer: Sendable {
    public let explorer: Explorer
    public let jobs: EvaluationJobs
    public let token: String
    /// The address bound (`--host`), and the port asked for (0: any free port).
    public let host: String
    public let requestedPort: Int
    let bound = BoundPort()
    let limiter: ComputeLimiter
    public static let maxBody = 1 << 20

    public init(explorer: Explorer, token: String = ExplorerServer.newToken(), host: String = "127.0.0.1", port: Int = 0,
                slots: Int = 2, queueLimit: Int = 32, evaluationResamples: Int = 1000) {
        self.explorer = explorer; self.token = token; self.host = host; requestedPort = port
        jobs = EvaluationJobs(explorer: explorer, resamples: evaluationResamples)
        limiter = ComputeLimiter(slots: slots, queueLimit: queueLimit)
        if port != 0 { bound.set(port) }
    }

    /// 32 random bytes, hex.
    public static func newToken() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }

    public var port: Int { bound.value }
    /// What the user opens: the page, with the token it passes to the API.
    public var url: String { "http://\(Self.hostForURL(host)):\(port)/?token=\(token)" }

    static func hostForURL(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

    /// The Host header values that name this server: the bound address, and for a loopback
    /// address its other loopback names.
    var allowedHosts: Set<String> {
        let p = port
        var names = [Self.hostForURL(host)]
        if ["127.0.0.1", "localhost", "::1"].contains(host) { names += ["127.0.0.1", "localhost", "[::1]"] }
        // Port 80 may go unnamed (RFC 9110, 7.2).
        return Set(names.map { "\($0):\(p)" } + (p == 80 ? names : []))
    }

    /// The server; `onRunning` is called once it listens (its port is known then).
    public func application(onRunning: @escaping @Sendable (ExplorerServer) -> Void = { _ in }) -> some ApplicationProtocol {
        Application(router: router(), configuration: .init(address: .hostname(host, port: requestedPort), serverName: nil),
                    onServerRunning: { channel in
                        if let p = channel.localAddress?.port { self.bound.set(p) }
                        onRunning(self)
                    },
                    logger: Self.quietLogger())
    }

    /// Runs the server until SIGINT or SIGTERM, blocking the calling thread.
    public func runBlocking(onRunning: @escaping @Sendable (ExplorerServer) -> Void) throws {
        let app = application(onRunning: onRunning)
        let done = DispatchSemaphore(value: 0)
        let failure = BoundError()
        Task {
            do { try await app.runService() } catch { failure.set(error) }
            done.signal()
        }
        done.wait()
        if let error = failure.value { throw error }
    }

    static func quietLogger() -> Logger {
        var logger = Logger(label: "backpack-explore")
        logger.logLevel = .warning
        return logger
    }

    // MARK: - Routes

    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: GuardMiddleware(server: self))
        router.get("/") { _, _ in Self.asset(PackageResources.index_html, "text/html; charset=utf-8") }
        router.get("/explorer.js") { _, _ in Self.asset(PackageResources.explorer_js, "text/javascript; charset=utf-8") }
        router.get("/explorer.css") { _, _ in Self.asset(PackageResources.explorer_css, "text/css; charset=utf-8") }
        router.get("/openapi.json") { _, _ in Self.asset(PackageResources.openapi_json, "application/json") }
        let api = router.group("api")
        api.get("info") { _, _ in try Self.json(self.info()) }
        api.post("predict") { request, _ in
            let body = try await Self.body(request, allowed: ["text", "top_k", "interventions"])
            return try await self.compute {
                let interventions = try RequestInterventions.parse(body["interventions"], loaded: self.explorer.edits)
                return try Self.json(try self.explorer.predict(text: try body.string("text"), topK: try body.int("top_k", default: 10, range: 1...1000),
                                                               interventions: interventions))
            }
        }
        api.post("attribute") { request, _ in
            let body = try await Self.body(request, allowed: ["text", "pair", "interventions"])
            return try await self.compute {
                let interventions = try RequestInterventions.parse(body["interventions"], loaded: self.explorer.edits)
                return try Self.json(try self.explorer.attribute(text: try body.string("text"),
                                                                 pair: try body.strings("pair", default: ["he", "she"], count: 2...2),
                                                                 interventions: interventions))
            }
        }
        api.get("senses") { request, _ in
            let q = request.uri.queryParameters
            for (key, _) in q where !["word", "id", "top", "space"].contains(String(key)) {
                throw ExplorerError(field: String(key), "unknown parameter; expected word, id, top, space")
            }
            // Each is one value (openapi.json): `word=a&word=b` is refused, not read as one of them
            // (schemathesis sends such arrays as requests the API must reject).
            for key in ["word", "id", "top", "space"] {
                let given = q.getAll(key).count
                if given > 1 { throw ExplorerError(field: key, "given \(given) times; expected once") }
            }
            func int(_ key: String, _ fallback: Int?) throws -> Int? {
                guard let s = q[key[...]] else { return fallback }
                guard let v = Int(s) else { throw ExplorerError(field: key, "expected an integer, found '\(s)'") }
                return v
            }
            let space: Bool
            switch q["space"].map(String.init) {
            case nil, "true": space = true
            case "false": space = false
            case let other?: throw ExplorerError(field: "space", "expected true or false, found '\(other)'")
            }
            let word = q["word"].map(String.init), id = try int("id", nil), top = try int("top", 8) ?? 8
            if let word, word.unicodeScalars.count > 1000 { throw ExplorerError(field: "word", "expected at most 1000 characters") }
            return try await self.compute { try Self.json(try self.explorer.senses(word: word, id: id, top: top, space: space)) }
        }
        api.post("edit-file") { request, _ in
            let body = try await Self.body(request, allowed: ["interventions", "name", "save"])
            return try await self.compute { try Self.json(try self.editFile(body)) }
        }
        api.post("evaluate") { request, _ in
            let body = try await Self.body(request, allowed: ["suites", "interventions", "name"])
            let interventions = try RequestInterventions.parse(body["interventions"], loaded: self.explorer.edits)
            let name = sanitizedName(try body.string("name", default: "explore", maxLength: 200))
            let status = try self.jobs.start(suites: try body.strings("suites", default: ["pronoun-bias"], count: 0...16),
                                             name: name, interventions: interventions)
            return try Self.json(status, status: .accepted)
        }
        api.get("evaluations/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let status = self.jobs.status(id) else { throw ExplorerError(status: 404, field: "id", "no evaluation '\(id)'") }
            return try Self.json(status)
        }
        api.get("evaluations/:id/events") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard self.jobs.status(id) != nil else { throw ExplorerError(status: 404, field: "id", "no evaluation '\(id)'") }
            return self.events(id)
        }
        return router
    }

    struct Info: Encodable {
        struct Model: Encodable {
            let path: String, architecture: String, vocabSize: Int, nPositions: Int, senses: Int, nEmbd: Int
            enum CodingKeys: String, CodingKey { case path, architecture, senses, vocabSize = "vocab_size", nPositions = "n_positions", nEmbd = "n_embd" }
        }
        struct Edit: Encodable {
            let name: String, file: String, description: String?, interventions: [String]
            let wordLevel: Bool
            enum CodingKeys: String, CodingKey { case name, file, description, interventions, wordLevel = "word_level" }
        }
        let model: Model
        let edits: [Edit]
        let suites: [String]
        let resultsFile: String
        let editsDirectory: String
        enum CodingKeys: String, CodingKey { case model, edits, suites, resultsFile = "results_file", editsDirectory = "edits_directory" }
    }

    func info() -> Info {
        let c = explorer.base.config
        return Info(model: .init(path: explorer.modelURL.path, architecture: c.architecture.rawValue, vocabSize: c.vocabSize,
                                 nPositions: c.nPositions, senses: explorer.base.isBackpack ? c.senses : 0, nEmbd: c.nEmbd),
                    edits: explorer.edits.map { .init(name: $0.name, file: $0.file.url.path, description: $0.file.description,
                                                      interventions: $0.summaries, wordLevel: $0.wordLevel) },
                    suites: jobs.availableSuites(), resultsFile: explorer.resultsFile.path, editsDirectory: explorer.editsDirectory.path)
    }

    struct SavedEdit: Encodable {
        let name: String
        let fileName: String
        let yaml: String
        /// Where it was written (with `save: true`).
        let path: String?
        enum CodingKeys: String, CodingKey { case name, yaml, path, fileName = "file_name" }
    }

    /// The interventions as an edit file; with `save`, written under the edits folder with a
    /// sanitized name that no existing file has.
    func editFile(_ body: RequestBody) throws -> SavedEdit {
        let interventions = try RequestInterventions.parse(body["interventions"], loaded: explorer.edits)
        if interventions.isEmpty { throw ExplorerError(field: "interventions", "expected at least one intervention to save") }
        _ = try explorer.edited(interventions)
        let name = sanitizedName(try body.string("name", default: "explore-edit", maxLength: 200))
        let yaml = interventions.editFile(name: name, description: "Made in backpack explore on \(explorer.modelURL.lastPathComponent).")
        guard try body.bool("save", default: false) else { return SavedEdit(name: name, fileName: name + ".yaml", yaml: yaml, path: nil) }
        let fm = FileManager.default
        var fileName = name + ".yaml", i = 2
        while fm.fileExists(atPath: explorer.editsDirectory.appendingPathComponent(fileName).path) {
            fileName = "\(name)-\(i).yaml"; i += 1
            if i > 10_000 { throw ExplorerError(status: 409, field: "name", "too many files named \(name)-N.yaml in \(explorer.editsDirectory.path)") }
        }
        let url = explorer.editsDirectory.appendingPathComponent(fileName)
        do { try AtomicOutput.file(url, data: Data(yaml.utf8)) } catch {
            throw ExplorerError(status: 409, field: nil, "could not write \(url.path): \(error.localizedDescription)")
        }
        return SavedEdit(name: name, fileName: fileName, yaml: yaml, path: url.path)
    }

    /// Server-sent events: `progress` (one line each), then `done` or `failed` with the status.
    func events(_ id: String) -> Response {
        let jobs = self.jobs
        let body = ResponseBody { writer in
            var sent = 0
            while true {
                guard let s = jobs.status(id) else { break }
                for line in s.progress.dropFirst(sent) {
                    try await writer.write(ByteBuffer(string: "event: progress\ndata: \(line.replacingOccurrences(of: "\n", with: " "))\n\n"))
                }
                sent = s.progress.count
                if s.finished {
                    let data = String(decoding: try Self.encoder.encode(s), as: UTF8.self)
                    try await writer.write(ByteBuffer(string: "event: \(s.state)\ndata: \(data)\n\n"))
                    break
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: body)
    }

    // MARK: - Helpers

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }()

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    static func asset(_ bytes: [UInt8], _ type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func body(_ request: Request, allowed: [String]) async throws -> RequestBody {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: maxBody) } catch {
            throw ExplorerError(status: 413, field: "body", "the body is over \(maxBody) bytes")
        }
        return try RequestBody(Array(buffer.readableBytesView), allowed: allowed)
    }

    /// Runs a computation on a thread of its own (it is CPU-bound and synchronous) once the
    /// limiter lets it.
    func compute(_ work: @escaping @Sendable () throws -> Response) async throws -> Response {
        try await limiter.acquire()
        do {
            let response = try await withCheckedThrowingContinuation { (c: CheckedContinuation<Response, Error>) in
                DispatchQueue.global().async { c.resume(with: Result { try work() }) }
            }
            await limiter.release()
            return response
        } catch {
            await limiter.release()
            throw error
        }
    }
}

/// The port the server bound (known only once it runs when 0 was asked for).
final class BoundPort: @unchecked Sendable {
    private var port = 0
    private let lock = NSLock()
    var value: Int { lock.withLock { port } }
    func set(_ p: Int) { lock.withLock { port = p } }
}

final class BoundError: @unchecked Sendable {
    private var error: Error?
    private let lock = NSLock()
    var value: Error? { lock.withLock { error } }
    func set(_ e: Error) { lock.withLock { error = e } }
}

/// At most `slots` computations at once; up to `queueLimit` wait, in order; beyond that, 503.
actor ComputeLimiter {
    let slots: Int, queueLimit: Int
    private var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []
    init(slots: Int, queueLimit: Int) { self.slots = max(1, slots); self.queueLimit = queueLimit }

    func acquire() async throws {
        if running < slots { running += 1; return }
        guard waiting.count < queueLimit else {
            throw ExplorerError(status: 503, field: nil, "\(running) computations are running and \(waiting.count) waiting; try again shortly")
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { running -= 1 } else { waiting.removeFirst().resume() }
    }
}

/// The checks every request passes (Host, Origin, token for /api), errors as JSON, and the
/// security headers of every answer.
struct GuardMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let server: ExplorerServer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            try check(request)
            if let allowed = Self.methods(request.uri.path), !allowed.contains(request.method) {
                response = Self.errorResponse(ExplorerError(status: 405, field: nil, "\(request.method) is not served here; expected \(allowed.map(\.rawValue).joined(separator: " or "))"))
                response.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
                return response
            }
            response = try await next(request, context)
        } catch let error as ExplorerError {
            response = Self.errorResponse(error)
        } catch let error as HTTPError {
            response = Self.errorResponse(ExplorerError(status: Int(error.status.code), field: nil, error.body ?? error.status.reasonPhrase))
        } catch {
            response = Self.errorResponse(ExplorerError(status: 400, field: nil, "\(error)"))
        }
        response.headers[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.init("Referrer-Policy")!] = "no-referrer"
        response.headers[.init("X-Frame-Options")!] = "DENY"
        return response
    }

    /// The methods a path is served with (nil: no such path), for 405 and `Allow`.
    static func methods(_ path: String) -> [HTTPRequest.Method]? {
        switch path {
        case "/", "/explorer.js", "/explorer.css", "/openapi.json", "/api/info", "/api/senses": return [.get]
        case "/api/predict", "/api/attribute", "/api/edit-file", "/api/evaluate": return [.post]
        default:
            let parts = path.split(separator: "/", omittingEmptySubsequences: false)
            if parts.count == 4 && parts[1] == "api" && parts[2] == "evaluations" { return [.get] }
            if parts.count == 5 && parts[1] == "api" && parts[2] == "evaluations" && parts[4] == "events" { return [.get] }
            return nil
        }
    }

    func check(_ request: Request) throws {
        let host = request.head.authority ?? ""
        guard server.allowedHosts.contains(host.lowercased()) else {
            throw ExplorerError(status: 403, field: "Host", "'\(host)' does not name this server; expected \(server.allowedHosts.sorted().joined(separator: " or "))")
        }
        if let origin = request.headers[.origin], !server.allowedHosts.map({ "http://\($0)" }).contains(origin.lowercased()) {
            throw ExplorerError(status: 403, field: "Origin", "'\(origin)' is not this server's page")
        }
        guard request.uri.path.hasPrefix("/api/") || request.uri.path == "/api" else { return }
        let expected = "Bearer " + server.token
        let given = request.headers[.authorization] ?? ""
        guard given.utf8.count == expected.utf8.count, zip(given.utf8, expected.utf8).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0 else {
            throw ExplorerError(status: 403, field: "Authorization", "expected `Authorization: Bearer TOKEN` with the token that backpack explore printed")
        }
    }

    struct ErrorBody: Encodable {
        struct Detail: Encodable { let status: Int; let field: String?; let message: String }
        let error: Detail
    }

    static func errorResponse(_ error: ExplorerError) -> Response {
        let body = ErrorBody(error: .init(status: error.status, field: error.field, message: error.description))
        let data = (try? ExplorerServer.encoder.encode(body)) ?? Data("{}".utf8)
        var headers: HTTPFields = [.contentType: "application/json"]
        if error.status == 503 { headers[.retryAfter] = "1" }
        return Response(status: .init(code: error.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
