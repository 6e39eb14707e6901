import BackpackEditing
@testable import BackpackExplorer
import BackpackModel
import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import XCTest

// `backpack explore`'s API through Hummingbird's testing module (requests straight to the
// router), on the embedded demo model. The numbers are checked against the model computed
// directly (forward pass, attribution, unembedded senses) and against edit files applied by the
// editor; tolerances are stated at each check. Host, Origin and token checks run against a real
// server on loopback too (RealServerTests).

final class APITests: XCTestCase, @unchecked Sendable {
    static let token = "test-token"
    nonisolated(unsafe) static var shared: (explorer: Explorer, edits: URL)?

    /// One explorer for the class (opening the model is the slow part), with the demo's edit file loaded.
    func explorer() throws -> (Explorer, URL) {
        if let s = Self.shared { return (s.explorer, s.edits) }
        let dir = try TestPaths.temporaryDirectory("explore")
        let e = try Explorer(model: TestPaths.demoModel, edits: [TestPaths.repoRoot.appendingPathComponent("Edits/remove-gender-sense.yaml").path],
                             editsDirectory: dir, resultsFile: dir.appendingPathComponent("results.h5"))
        Self.shared = (e, dir)
        return (e, dir)
    }

    /// Port 80, so that the testing module's `Host: localhost` names this server.
    func server(slots: Int = 2) throws -> ExplorerServer {
        ExplorerServer(explorer: try explorer().0, token: Self.token, host: "127.0.0.1", port: 80, slots: slots, evaluationResamples: 100)
    }

    var auth: HTTPFields { [.authorization: "Bearer \(Self.token)", .contentType: "application/json"] }

    func json(_ response: TestResponse) throws -> [String: Any] {
        let data = Data(response.body.readableBytesView)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            XCTFail("not a JSON object: \(String(decoding: data, as: UTF8.self))"); return [:]
        }
        return object
    }

    func post(_ client: some TestClientProtocol, _ uri: String, _ body: String, headers: HTTPFields? = nil) async throws -> TestResponse {
        try await client.execute(uri: uri, method: .post, headers: headers ?? auth, body: ByteBuffer(string: body))
    }

    /// The error's field, and its message (which starts with the field).
    func error(_ response: TestResponse, status: HTTPResponse.Status, file: StaticString = #filePath, line: UInt = #line) throws -> (field: String?, message: String) {
        XCTAssertEqual(response.status, status, String(buffer: response.body), file: file, line: line)
        let e = try json(response)["error"] as? [String: Any] ?? [:]
        return (e["field"] as? String, e["message"] as? String ?? "")
    }

    // MARK: - Numbers

    /// Base and edited predictions equal log-softmax of the forward pass's last logits row, the
    /// edited one with the same intervention written as an edit file and applied by the editor
    /// (tolerance 1e-5 nats: float32 logits, double log-sum-exp on both sides).
    func testPredictEqualsForwardPass() async throws {
        let (explorer, _) = try explorer()
        let text = "The nurse said that"
        let intervention = #"{"words": ["nurse"], "senses": [10, 3], "scale": 0.25}"#
        let file = try EditFile.parse("schema: backpack-edit/1\ninterventions:\n  - \(intervention)\n", url: URL(fileURLWithPath: "/tmp/x.yaml"))
        let edited = try Editor.apply([file], to: explorer.base, tokenizer: explorer.tokenizer).model
        let ids = explorer.tokenizer.encode(text)
        func logSoftmax(_ model: LanguageModel) throws -> [Double] {
            let row = try model.forward(ids, options: .init(logits: .all)).logits.suffix(model.config.vocabSize).map(Double.init)
            let m = row.max() ?? 0
            let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
            return row.map { $0 - lse }
        }
        let expectedBase = try logSoftmax(explorer.base), expectedEdited = try logSoftmax(edited)
        let baseTop = expectedBase.indices.max { expectedBase[$0] < expectedBase[$1] } ?? 0
        let app = Application(router: try server().router())
        try await app.test(.router) { client in
            let r = try await self.post(client, "/api/predict", #"{"text": "\#(text)", "top_k": 20, "interventions": [\#(intervention)]}"#)
            XCTAssertEqual(r.status, .ok, String(buffer: r.body))
            let body = try self.json(r)
            let tokens = body["tokens"] as? [[String: Any]] ?? []
            XCTAssertEqual(tokens.compactMap { $0["id"] as? Int }, ids)
            for (key, expected) in [("base", expectedBase), ("edited", expectedEdited)] {
                let top = (body[key] as? [String: Any])?["top"] as? [[String: Any]] ?? []
                XCTAssertEqual(top.count, 20)
                let order = expected.indices.sorted { expected[$0] > expected[$1] }
                XCTAssertEqual(top.compactMap { $0["id"] as? Int }.prefix(5), order.prefix(5)[...], key)
                for c in top {
                    let id = c["id"] as? Int ?? -1, lp = c["logprob"] as? Double ?? .nan
                    XCTAssertEqual(lp, expected[id], accuracy: 1e-5, "\(key) token \(id)")
                }
            }
            XCTAssertNotEqual(expectedBase[baseTop], expectedEdited[baseTop], accuracy: 1e-4, "the intervention changes the distribution")
            XCTAssertEqual((body["applied"] as? [String])?.count, 1)
        }
    }

    /// A request whose edits begin like an earlier request's applies only the rest on top of the
    /// cached prefix (a slider move does not re-apply the loaded files): its prediction equals
    /// all its edits applied afresh, in order (1e-5 nats, as above).
    func testEditsAfterACachedPrefixEqualAFreshApplication() async throws {
        let (explorer, _) = try explorer()
        let text = "The nurse said that"
        let slider: @Sendable (Double) -> String = { scale in #"{"words": ["nurse"], "senses": [3], "scale": \#(scale)}"# }
        let loaded = try XCTUnwrap(try EditFile.loadGrid(TestPaths.repoRoot.appendingPathComponent("Edits/remove-gender-sense.yaml")).first)
        let inline = try EditFile.parse("schema: backpack-edit/1\ninterventions:\n  - \(slider(0.25))\n", url: URL(fileURLWithPath: "/tmp/x.yaml"))
        let fresh = try Editor.apply([loaded, inline], to: explorer.base, tokenizer: explorer.tokenizer).model
        let ids = explorer.tokenizer.encode(text)
        let row = try fresh.forward(ids, options: .init(logits: .all)).logits.suffix(fresh.config.vocabSize).map(Double.init)
        let m = row.max() ?? 0
        let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
        let app = Application(router: try server().router())
        try await app.test(.router) { client in
            for scale in [0.5, 0.25] {                                   // the second reuses the first's prefix
                let r = try await self.post(client, "/api/predict",
                                            #"{"text": "\#(text)", "top_k": 10, "interventions": [{"edit": "remove-gender-sense"}, \#(slider(scale))]}"#)
                XCTAssertEqual(r.status, .ok, String(buffer: r.body))
                guard scale == 0.25 else { continue }
                let body = try self.json(r)
                let top = (body["edited"] as? [String: Any])?["top"] as? [[String: Any]] ?? []
                XCTAssertEqual(top.count, 10)
                for c in top {
                    let id = c["id"] as? Int ?? -1, lp = c["logprob"] as? Double ?? .nan
                    XCTAssertEqual(lp, row[id] - lse, accuracy: 1e-5, "token \(id)")
                }
                XCTAssertEqual((body["applied"] as? [String])?.count, 2, "the loaded file's record and the slider's")
            }
        }
    }

    /// /api/attribute has `backpack attribute --json`'s fields and numbers: the model's own
    /// attribution (exact same computation path), the sum of contributions equal to the logit
    /// difference (1e-4), and the loaded edit file's column.
    func testAttributeEqualsModelAttribution() async throws {
        let (explorer, _) = try explorer()
        let text = "The nurse said that"
        let ids = explorer.tokenizer.encode(text)
        let he = explorer.tokenizer.wordTokens("he")[0], she = explorer.tokenizer.wordTokens("she")[0]
        let expected = try explorer.base.attribution(ids, a: he, b: she)
        let loaded = try Editor.apply([explorer.edits[0].file], to: explorer.base, tokenizer: explorer.tokenizer).model
        let expectedEdited = try loaded.attribution(ids, a: he, b: she)
        let app = Application(router: try server().router())
        try await app.test(.router) { client in
            let r = try await self.post(client, "/api/attribute", #"{"text": "\#(text)", "pair": ["he", "she"], "interventions": [{"edit": "remove-gender-sense"}]}"#)
            XCTAssertEqual(r.status, .ok, String(buffer: r.body))
            let body = try self.json(r)
            XCTAssertEqual(Set(body.keys), ["tokens", "ids", "pair", "contributions", "total", "logit_difference", "edits"])
            XCTAssertEqual(body["ids"] as? [Int], ids)
            let c = body["contributions"] as? [[Double]] ?? []
            XCTAssertEqual(c.count, explorer.base.config.senses)
            for l in 0..<c.count { for j in 0..<ids.count { XCTAssertEqual(c[l][j], expected.contributions[l][j], accuracy: 1e-9) } }
            let total = body["total"] as? Double ?? .nan, diff = body["logit_difference"] as? Double ?? .nan
            XCTAssertEqual(total, diff, accuracy: 1e-4)
            XCTAssertEqual(diff, expected.logitDifference, accuracy: 1e-9)
            let edits = body["edits"] as? [[String: Any]] ?? []
            XCTAssertEqual(edits.first?["name"] as? String, "intervention")
            XCTAssertEqual(edits.first?["logit_difference"] as? Double ?? .nan, expectedEdited.logitDifference, accuracy: 1e-9)
            XCTAssertNotEqual(edits.first?["total"] as? Double ?? .nan, total, accuracy: 1e-6, "the edit changes the contrast")
        }
    }

    /// /api/senses lists what `backpack senses` lists: the largest and smallest entries of E C(x)_l.
    func testSensesEqualUnembeddedSenseVectors() async throws {
        let (explorer, _) = try explorer()
        let id = explorer.tokenizer.wordTokens("nurse")[0], d = explorer.base.config.nEmbd
        let vectors = explorer.base.senseVectors([id])[id] ?? []
        let app = Application(router: try server().router())
        try await app.test(.router) { client in
            for uri in ["/api/senses?word=nurse&top=4", "/api/senses?id=\(id)&top=4"] {
                let r = try await client.execute(uri: uri, method: .get, headers: self.auth)
                XCTAssertEqual(r.status, .ok, String(buffer: r.body))
                let senses = try self.json(r)["senses"] as? [[String: Any]] ?? []
                XCTAssertEqual(senses.count, explorer.base.config.senses)
                for (l, s) in senses.enumerated() {
                    let scores = explorer.base.unembed(Array(vectors[(l * d)..<((l + 1) * d)]))
                    let order = scores.indices.sorted { scores[$0] > scores[$1] }
                    XCTAssertEqual((s["promoted"] as? [[String: Any]])?.compactMap { $0["id"] as? Int }, Array(order.prefix(4)), "sense \(l)")
                    XCTAssertEqual((s["suppressed"] as? [[String: Any]])?.compactMap { $0["id"] as? Int }, Array(order.suffix(4).reversed()), "sense \(l)")
                }
            }
        }
    }

    /// "Save as edit file": the file lands under the edits folder with a sanitized name, never
    /// over an existing file, and applied by the editor (as `backpack forward --edit` applies it)
    /// gives the logits the page showed (1e-5).
    func testSavedEditFileReproducesTheIntervention() async throws {
        let (explorer, folder) = try explorer()
        let interventions = #"[{"edit": "remove-gender-sense"}, {"name": "' doctor' sense 3", "tokens": [\#(explorer.tokenizer.wordTokens("doctor")[0])], "senses": [3], "scale": 1.75}]"#
        let app = Application(router: try server().router())
        try await app.test(.router) { client in
            let predictedResponse = try await self.post(client, "/api/predict", #"{"text": "The doctor said that", "top_k": 5, "interventions": \#(interventions)}"#)
            let predicted = try self.json(predictedResponse)
            var paths: [String] = []
            for _ in 0..<2 {
                let r = try await self.post(client, "/api/edit-file", #"{"interventions": \#(interventions), "name": "../../etc/my edit", "save": true}"#)
                XCTAssertEqual(r.status, .ok, String(buffer: r.body))
                let body = try self.json(r)
                paths.append(body["path"] as? String ?? "")
            }
            XCTAssertEqual(paths.map { URL(fileURLWithPath: $0).lastPathComponent }, ["etc-my-edit.yaml", "etc-my-edit-2.yaml"])
            XCTAssertTrue(paths.allSatisfy { $0.hasPrefix(folder.standardizedFileURL.path) || $0.hasPrefix(folder.path) }, "\(paths)")
            let file = try EditFile.load(URL(fileURLWithPath: paths[0]))
            XCTAssertEqual(file.interventions.count, 2)
            let model = try Editor.apply([file], to: explorer.base, tokenizer: explorer.tokenizer).model
            let ids = explorer.tokenizer.encode("The doctor said that")
            let row = try model.forward(ids).logits.suffix(model.config.vocabSize).map(Double.init)
            let m = row.max() ?? 0, lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
            for c in (predicted["edited"] as? [String: Any])?["top"] as? [[String: Any]] ?? [] {
                XCTAssertEqual(c["logprob"] as? Double ?? .nan, row[c["id"] as? Int ?? 0] - lse, accuracy: 1e-5)
            }
        }
    }

    // MARK: - Refusals

    func testTokenHostAndOriginAreChecked() async throws {
        let app = Application(router: try server().router())
        try await app.test(.router) { client in
            let body = #"{"text": "Hello"}"#
            let r1 = try await self.post(client, "/api/predict", body, headers: [.contentType: "application/json"])
            XCTAssertEqual(try self.error(r1, status: .forbidden).field, "Authorization")
            let r2 = try await self.post(client, "/api/predict", body, headers: [.authorization: "Bearer wrong-token"])
            XCTAssertEqual(try self.error(r2, status: .forbidden).field, "Authorization")
            let r3 = try await self.post(client, "/api/predict", body, headers: [.authorization: "Bearer \(Self.token)x"])
            XCTAssertEqual(try self.error(r3, status: .forbidden).field, "Authorization")
            var foreign = self.auth
            foreign[.origin] = "http://evil.example"
            let r4 = try await self.post(client, "/api/predict", body, headers: foreign)
            XCTAssertEqual(try self.error(r4, status: .forbidden).field, "Origin")
            var own = self.auth
            own[.origin] = "http://localhost"
            let r5 = try await self.post(client, "/api/predict", body, headers: own)
            XCTAssertEqual(r5.status, .ok)
            // The page itself needs no token; its answers forbid framing and sniffing.
            let page = try await client.execute(uri: "/", method: .get)
            XCTAssertEqual(page.status, .ok)
            XCTAssertTrue(String(buffer: page.body).contains("explorer.js"))
            XCTAssertEqual(page.headers[.xContentTypeOptions], "nosniff")
            XCTAssertTrue(page.headers[.contentSecurityPolicy]?.contains("frame-ancestors 'none'") ?? false)
            let openapi = try await client.execute(uri: "/openapi.json", method: .get)
            XCTAssertEqual(try self.json(openapi)["openapi"] as? String, "3.0.3")
        }
    }

    /// Bad input: 400 with the field path, messages as the edit-file reader writes them.
    func testBadInputNamesTheField() async throws {
        let app = Application(router: try server().router())
        try await app.test(.router) { client in
            let cases: [(String, String, String, String)] = [
                ("/api/predict", "{not json", "body", "not valid JSON"),
                ("/api/predict", "[1]", "body", "expected a JSON object"),
                ("/api/predict", #"{"text": "Hi", "extra": 1}"#, "extra", "unknown field"),
                ("/api/predict", #"{"text": 3}"#, "text", "expected a string"),
                ("/api/predict", #"{"text": ""}"#, "text", "empty"),
                ("/api/predict", #"{"text": "Hi", "top_k": 0}"#, "top_k", "expected 1 to"),
                ("/api/predict", #"{"text": "Hi", "interventions": {}}"#, "interventions", "expected a list"),
                ("/api/predict", #"{"text": "Hi", "interventions": [{"words": ["nurse"], "senses": [99], "scale": 0}]}"#, "interventions[0].senses[0]", "sense 99 is out of range"),
                ("/api/predict", #"{"text": "Hi", "interventions": [{"words": ["nurse"], "senses": [10], "scale": 0}, {"words": ["nurse"], "senses": [10], "sclae": 0}]}"#, "interventions[1].sclae", "unknown key 'sclae'"),
                ("/api/predict", #"{"text": "Hi", "interventions": [{"words": {"file": "/etc/passwd"}, "senses": [10], "scale": 0}]}"#, "interventions[0].words.file", "a request cannot name a file"),
                ("/api/predict", #"{"text": "Hi", "interventions": [{"words": ["nurse"], "senses": [10], "fit_scale": {"suite": "/etc/passwd"}}]}"#, "interventions[0].fit_scale.suite", "a request cannot name a file"),
                ("/api/predict", #"{"text": "Hi", "interventions": [{"edit": "nope"}]}"#, "interventions[0].edit", "remove-gender-sense"),
                ("/api/predict", #"{"text": "Hi", "interventions": [{"words": ["nurse"], "senses": [10], "scale": {"sweep": [0, 1]}}]}"#, "interventions[0].scale", "sweep"),
                ("/api/attribute", #"{"text": "Hi", "pair": ["he"]}"#, "pair", "expected 2 strings"),
                ("/api/attribute", #"{"text": "Hi", "pair": ["he", "supercalifragilistic"]}"#, "pair[1]", "expected a word that is exactly one token"),
                ("/api/edit-file", #"{"interventions": []}"#, "interventions", "at least one"),
                ("/api/evaluate", #"{"suites": ["../../etc/passwd"]}"#, "suites[0]", "unknown suite"),
            ]
            for (uri, body, field, fragment) in cases {
                let response = try await self.post(client, uri, body)
                let (f, message) = try self.error(response, status: .badRequest)
                XCTAssertEqual(f, field, "\(uri) \(body): \(message)")
                XCTAssertTrue(message.hasPrefix(field + ": "), message)
                XCTAssertTrue(message.contains(fragment), "\(body): '\(message)' lacks '\(fragment)'")
            }
            let long = String(repeating: "word ", count: 5000)
            let r6 = try await self.post(client, "/api/predict", #"{"text": "\#(long)"}"#)
            XCTAssertEqual(try self.error(r6, status: .badRequest).field, "text")
            let huge = #"{"text": ""# + String(repeating: "a", count: (1 << 20) + 10) + #""}"#
            let r7 = try await self.post(client, "/api/predict", huge)
            XCTAssertEqual(try self.error(r7, status: .contentTooLarge).field, "body")
            let senses = try await client.execute(uri: "/api/senses?word=nurse&top=abc", method: .get, headers: self.auth)
            XCTAssertEqual(try self.error(senses, status: .badRequest).field, "top")
            // A parameter given twice is an array where openapi.json says one value: refused.
            for (uri, field) in [("/api/senses?word=nurse&word=doctor", "word"), ("/api/senses?word=nurse&top=3&top=4", "top")] {
                let twice = try await client.execute(uri: uri, method: .get, headers: self.auth)
                XCTAssertEqual(try self.error(twice, status: .badRequest).field, field, uri)
            }
            let unknown = try await client.execute(uri: "/api/evaluations/nope", method: .get, headers: self.auth)
            XCTAssertEqual(try self.error(unknown, status: .notFound).field, "id")
        }
    }

    /// Beyond the waiting room the answer is 503; slots are given back after errors too.
    func testComputationsQueueAndOverflowWith503() async throws {
        let limiter = ComputeLimiter(slots: 1, queueLimit: 1)
        try await limiter.acquire()
        let waiter = Task { try await limiter.acquire() }
        try await Task.sleep(for: .milliseconds(50))
        do {
            try await limiter.acquire()
            XCTFail("a third computation should be refused while one runs and one waits")
        } catch let e as ExplorerError {
            XCTAssertEqual(e.status, 503)
        }
        await limiter.release()
        try await waiter.value
        await limiter.release()
        try await limiter.acquire()
        await limiter.release()
    }

    /// An evaluation runs in the background, streams its progress and stores a run as eval does.
    func testEvaluationRunsAndStoresTheRun() async throws {
        let (explorer, _) = try explorer()
        let app = Application(router: try server().router())
        try await app.test(.router) { client in
            let r = try await self.post(client, "/api/evaluate", #"{"suites": ["pronoun-bias"], "interventions": [{"edit": "remove-gender-sense"}], "name": "ui test"}"#)
            XCTAssertEqual(r.status, .accepted, String(buffer: r.body))
            let id = try self.json(r)["id"] as? String ?? ""
            let events = try await client.execute(uri: "/api/evaluations/\(id)/events", method: .get, headers: self.auth)
            XCTAssertEqual(events.status, .ok)
            let stream = String(buffer: events.body)
            XCTAssertTrue(stream.contains("event: progress\ndata: prepared pronoun-bias"), stream)
            XCTAssertTrue(stream.contains("event: done\ndata: {"), stream)
            let statusResponse = try await client.execute(uri: "/api/evaluations/\(id)", method: .get, headers: self.auth)
            let status = try self.json(statusResponse)
            XCTAssertEqual(status["state"] as? String, "done", "\(status)")
            let metrics = status["metrics"] as? [[String: Any]] ?? []
            let ratio = metrics.first { $0["metric"] as? String == "bias_ratio" || ($0["suite"] as? String == "pronoun-bias") }
            XCTAssertNotNil(ratio?["base"] as? Double)
            XCTAssertNotNil(ratio?["edited"] as? Double)
            XCTAssertNotNil(ratio?["p"] as? Double)
            XCTAssertNotNil(ratio?["base_ci"] as? [Double])
            XCTAssertTrue(FileManager.default.fileExists(atPath: explorer.resultsFile.path))
        }
    }
}
