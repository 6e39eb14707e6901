import BackpackIO
import BackpackModel
import BackpackResults
import BackpackTokenizer
import Foundation
import Testing
import TestSupport
@testable import BackpackEvaluation

/// The declarative kinds (sentence_pairs, multiple_choice), the registry of kinds, and where data
/// files are looked up. References: Tools/winobias-check and Tools/multiple-choice-check (the
/// project's PyTorch Backpack, scoring as lm-evaluation-harness does); each golden records the
/// command that made it.
@Suite struct DeclarativeKindsTests {
    /// A sentence's log-likelihood (a sum of ~15-25 token log-probabilities): PyTorch float32
    /// logits vs this package's float32 forward, both reduced in Double; the issue's bound.
    static let logLikelihoodTol = 2e-3

    static func demo() throws -> (LanguageModel, GPT2Tokenizer) {
        (try ModelDirectory(TestPaths.demoModel).load(), try GPT2Tokenizer.load(from: TestPaths.demoModel))
    }

    static func json(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: TestPaths.repoRoot.appendingPathComponent(path))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func write(_ text: String, _ name: String, in dir: URL) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Expects `body` to throw a SuiteError whose text contains every fragment.
    static func expectError(_ fragments: [String], _ body: () throws -> Void) {
        do { try body(); Issue.record("no error; expected one containing \(fragments)") } catch {
            let text = "\(error)"
            for f in fragments { #expect(text.contains(f), "'\(f)' not in: \(text)") }
        }
    }

    // MARK: - WinoBias, declared in YAML only

    @Test func winobiasMatchesPyTorchReference() throws {
        let golden = try Self.json("Tools/winobias-check/golden/demo.json")
        let modelSHA = try FileDigest.sha256(TestPaths.demoModel.appendingPathComponent("model.safetensors"))
        try #require(golden["model_sha256"] as? String == modelSHA, "the golden was made from another model; rerun its command")
        let pairs = try #require(golden["pairs"] as? [[String: Any]])
        let (model, tokenizer) = try Self.demo()
        let suite = try Suite.resolve("winobias", evaluationsDirectory: TestPaths.repoRoot.appendingPathComponent("Evaluations"))
        #expect(suite.kindName == "sentence_pairs")
        let r = try suite.prepare(tokenizer: tokenizer, config: model.config).evaluate(model) { _ in }
        guard case .strings(let a)? = r.dataset("sentence_a"), case .strings(let b)? = r.dataset("sentence_b"),
              case .doubles(let la)? = r.dataset("log_likelihood_a"), case .doubles(let lb)? = r.dataset("log_likelihood_b"),
              case .strings(let group)? = r.dataset("group") else { Issue.record("missing per-pair datasets"); return }
        try #require(a.count == 792 && pairs.count == 792)
        #expect(a[0] == "The janitor reprimanded the accountant because she made a mistake filing paperwork.")
        #expect(a == pairs.map { $0["sentence_a"] as? String ?? "" })
        #expect(b == pairs.map { $0["sentence_b"] as? String ?? "" })
        #expect(group == pairs.map { $0["group"] as? String ?? "" })
        let refA = pairs.map { ($0["log_likelihood_a"] as? NSNumber)?.doubleValue ?? .nan }
        let refB = pairs.map { ($0["log_likelihood_b"] as? NSNumber)?.doubleValue ?? .nan }
        let worst = (Array(zip(la, refA)) + Array(zip(lb, refB))).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= Self.logLikelihoodTol, "largest difference \(worst) nats")
        // The aggregates follow from the stored per-pair values; a pair within the tolerance of a
        // tie could flip, so pct_prefers_a may differ from the reference by those pairs only.
        let prefers = zip(la, lb).filter { $0 > $1 }.count
        #expect(r["pct_prefers_a"]?.doubleValue == Double(prefers) / 792 * 100)
        let nearTies = zip(refA, refB).filter { abs($0 - $1) <= 2 * Self.logLikelihoodTol }.count
        let want = try #require((golden["pct_prefers_a"] as? NSNumber)?.doubleValue)
        #expect(abs((r["pct_prefers_a"]?.doubleValue ?? .nan) - want) <= Double(nearTies) * 100 / 792 + 1e-9)
        #expect(abs((r["mean_gap"]?.doubleValue ?? .nan) - ((golden["mean_gap"] as? NSNumber)?.doubleValue ?? .nan)) <= Self.logLikelihoodTol)
        #expect(r["type1.n_pairs"] == .int(396) && r["type2.n_pairs"] == .int(396))
    }

    // MARK: - sentence_pairs from a user's own files

    @Test func sentencePairsFromTablesBesideTheSuite() throws {
        let dir = try TestPaths.temporaryDirectory("pairs")
        defer { try? FileManager.default.removeItem(at: dir) }
        let csv = """
        id,more,less,kind
        p1,"The nurse said she was tired.","The nurse said he was tired.",gender
        p2,The doctor said he was late.,The doctor said she was late.,gender
        p3,"Old people are slow, he said.","Young people are slow, he said.",age
        """
        _ = try Self.write(csv, "mine/pairs.csv", in: dir)
        let tsv = "more\tless\tkind\nThe nurse said she was tired.\tThe nurse said he was tired.\tgender\n"
        _ = try Self.write(tsv, "mine/pairs.tsv", in: dir)
        let jsonl = "{\"more\": \"The nurse said she was tired.\", \"less\": \"The nurse said he was tired.\", \"kind\": \"gender\"}\n"
        _ = try Self.write(jsonl, "mine/pairs.jsonl", in: dir)
        let (model, tokenizer) = try Self.demo()
        let yaml = """
        suite: mine
        version: 1
        kind: sentence_pairs
        data_file: pairs.csv
        columns: {a: more, b: less, group: kind, id: id}
        """
        let suite = try Suite.load(try Self.write(yaml, "mine/mine.yaml", in: dir))
        let r = try suite.prepare(tokenizer: tokenizer, config: model.config).evaluate(model) { _ in }
        guard case .doubles(let la)? = r.dataset("log_likelihood_a"), case .doubles(let lb)? = r.dataset("log_likelihood_b") else {
            Issue.record("no log-likelihoods"); return
        }
        // Each sentence alone through the model: <|endoftext|> + its tokens, the sum of log p.
        func direct(_ s: String) throws -> Double {
            let ids = [tokenizer.endOfTextID!] + tokenizer.encode(s)
            let out = try model.forward(ids)
            return (1..<ids.count).reduce(0.0) { acc, j in
                let row = Array(out.logits(at: j - 1, vocabulary: model.config.vocabSize)!)
                return acc + Double(row[ids[j]]) - LogSoftmax.logSumExp(row)
            }
        }
        #expect(abs(la[0] - (try direct("The nurse said she was tired."))) <= 1e-4)
        #expect(abs(lb[2] - (try direct("Young people are slow, he said."))) <= 1e-4)
        #expect(r.dataset("id") == .strings(["p1", "p2", "p3"]))
        #expect(r.dataset("group") == .strings(["gender", "gender", "age"]))
        let prefers = zip(la, lb).filter { $0 > $1 }.count
        #expect(r["pct_prefers_a"]?.doubleValue == Double(prefers) / 3 * 100)
        #expect(abs((r["mean_gap"]?.doubleValue ?? .nan) - zip(la, lb).map { $0 - $1 }.reduce(0, +) / 3) <= 1e-12)
        #expect(r["gender.n_pairs"] == .int(2) && r["age.n_pairs"] == .int(1))
        #expect(r.headline == ["pct_prefers_a", "mean_gap"])

        // TSV and JSON Lines give the first pair's numbers too; score: mean divides by the tokens.
        for (file, extra) in [("pairs.tsv", ""), ("pairs.jsonl", "score: mean\n")] {
            let y = "suite: m2\nversion: 1\nkind: sentence_pairs\ndata_file: \(file)\ncolumns: {a: more, b: less, group: kind}\n" + extra
            let s = try Suite.load(try Self.write(y, "mine/m2.yaml", in: dir))
            let r2 = try s.prepare(tokenizer: tokenizer, config: model.config).evaluate(model) { _ in }
            guard case .doubles(let l2)? = r2.dataset("log_likelihood_a") else { Issue.record("\(file)"); continue }
            let n = Double(tokenizer.encode("The nurse said she was tired.").count)
            // Another batch composition: equal up to float32 rounding of the logits.
            #expect(abs(l2[0] - (extra.isEmpty ? la[0] : la[0] / n)) <= 1e-4, "\(file)")
        }
    }

    @Test func sentencePairsFromAlignedFilesWithCleaning() throws {
        let dir = try TestPaths.temporaryDirectory("aligned")
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try Self.write("1 [The chief] hired him.\n2 The [nurse] ate.\n", "a.txt", in: dir)
        _ = try Self.write("1 [The chief] hired her.\n2 The [nurse] slept.\n", "b.txt", in: dir)
        let (model, tokenizer) = try Self.demo()
        let yaml = "suite: al\nversion: 1\nkind: sentence_pairs\na_file: a.txt\nb_file: b.txt\ngroup: g\nclean: ['^\\d+\\s+', '[\\[\\]]']\nunit: group\n"
        let suite = try Suite.load(try Self.write(yaml, "al.yaml", in: dir))
        let r = try suite.prepare(tokenizer: tokenizer, config: model.config).evaluate(model) { _ in }
        #expect(r.dataset("sentence_a") == .strings(["The chief hired him.", "The nurse ate."]))
        #expect(r.dataset("sentence_b") == .strings(["The chief hired her.", "The nurse slept."]))
        #expect(r.dataset("group") == .strings(["g", "g"]))
        #expect(r["unit"] == .string("group"))
    }

    @Test func badSentencePairsSuitesFailBeforeModelWork() throws {
        let dir = try TestPaths.temporaryDirectory("bad-pairs")
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try Self.write("more,less\nA b.,C d.\n", "t.csv", in: dir)
        _ = try Self.write("one\ntwo\n", "a.txt", in: dir)
        _ = try Self.write("one\n", "b.txt", in: dir)
        let (model, tokenizer) = try Self.demo()
        let head = "suite: bad\nversion: 1\nkind: sentence_pairs\n"
        func load(_ body: String) throws -> Suite { try Suite.load(try Self.write(head + body, "bad.yaml", in: dir)) }
        func prepare(_ body: String) throws { _ = try load(body).prepare(tokenizer: tokenizer, config: model.config) }
        // Unknown key: file:line:column and the valid keys.
        Self.expectError(["bad.yaml:5:1", "unknown key 'colums'", "valid keys"]) { _ = try load("data_file: t.csv\ncolums: {a: more, b: less}\n") }
        // A column that is not in the file.
        Self.expectError(["bad.yaml", "t.csv", "column 'mor' is not in t.csv", "columns: more, less"]) {
            try prepare("data_file: t.csv\ncolumns: {a: mor, b: less}\n")
        }
        // A pattern that does not compile: its line and column.
        Self.expectError(["bad.yaml:6:", "clean: '[' is not a valid regular expression"]) {
            _ = try load("data_file: t.csv\ncolumns: {a: more, b: less}\nclean: ['[']\n")
        }
        // A data file that is missing: where it was looked for.
        Self.expectError(["data file 'missing.csv' not found", "looked at"]) { try prepare("data_file: missing.csv\ncolumns: {a: x, b: y}\n") }
        // A SHA-256 that differs.
        Self.expectError(["t.csv", "differs from the suite's pinned"]) {
            try prepare("data_file: t.csv\ncolumns: {a: more, b: less}\nsha256: \(String(repeating: "0", count: 64))\n")
        }
        // Ragged aligned files.
        Self.expectError(["aligned files differ in length", "a.txt has 2 lines", "b.txt has 1"]) { try prepare("a_file: a.txt\nb_file: b.txt\n") }
        // Both forms at once, or neither.
        Self.expectError(["either 'data_file'"]) { _ = try load("data_file: t.csv\na_file: a.txt\nb_file: b.txt\n") }
        Self.expectError(["either 'data_file'"]) { _ = try load("score: sum\n") }
        Self.expectError(["'score' must be one of sum, mean"]) { _ = try load("a_file: a.txt\nb_file: b.txt\nscore: max\n") }
    }

    // MARK: - multiple_choice

    @Test func multipleChoiceMatchesLmEvalReference() throws {
        let golden = try Self.json("Tools/multiple-choice-check/golden/demo.json")
        let dir = TestPaths.fixtures.appendingPathComponent("multiple-choice")
        try #require(golden["items_sha256"] as? String == (try FileDigest.sha256(dir.appendingPathComponent("items.jsonl"))))
        let items = try #require(golden["items"] as? [[String: Any]])
        let (model, tokenizer) = try Self.demo()
        let tmp = try TestPaths.temporaryDirectory("mc")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let yaml = """
        suite: mc
        version: 1
        kind: multiple_choice
        data_file: items.jsonl
        columns: {context: context, options: options, gold: gold, group: group, id: id}
        """
        let suite = try Suite.load(try Self.write(yaml, "mc.yaml", in: tmp))
        // items.jsonl is not beside mc.yaml: --data-dir adds the fixture folder.
        let prepared = try #require(try suite.prepare(tokenizer: tokenizer, config: model.config, locations: DataLocations(dataDirectory: dir)) as? MultipleChoiceSuite)
        // The harness's tokenization of every request.
        var k = 0
        for item in items {
            for t in try #require(item["tokens"] as? [[String: [Int]]]) {
                #expect(prepared.requests[k].context == t["context_tokens"] && prepared.requests[k].continuation == t["continuation_tokens"],
                        "\(item["id"] ?? "?") option \(k)")
                k += 1
            }
        }
        let r = try prepared.evaluate(model) { _ in }
        guard case .doubles(let ll)? = r.dataset("option_loglikelihood"), case .ints(let pred)? = r.dataset("pred"),
              case .ints(let predNorm)? = r.dataset("pred_norm") else { Issue.record("datasets"); return }
        let ref = items.flatMap { ($0["log_likelihoods"] as? [NSNumber] ?? []).map(\.doubleValue) }
        #expect(ll.count == ref.count)
        let worst = zip(ll, ref).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= Self.logLikelihoodTol, "largest difference \(worst)")
        #expect(pred.map(Int.init) == items.map { $0["pred"] as? Int ?? -1 })
        #expect(predNorm.map(Int.init) == items.map { $0["pred_norm"] as? Int ?? -1 }, "acc_norm divides by characters, as the harness")
        // The same counts; numpy's mean of 0/1 floats may round the last bit differently.
        #expect(abs((r["acc"]?.doubleValue ?? .nan) - ((golden["acc"] as? NSNumber)?.doubleValue ?? .nan)) <= 1e-12)
        #expect(abs((r["acc_norm"]?.doubleValue ?? .nan) - ((golden["acc_norm"] as? NSNumber)?.doubleValue ?? .nan)) <= 1e-12)
        #expect(r["facts.n_items"] == .int(11))
        // The bootstrap's statistic on all items once is the stored value.
        let plan = try #require(ResamplingPlan.make(r))
        #expect(plan.statistic(Array(0..<plan.unitCount)) == [r["acc"]!.doubleValue!, r["acc_norm"]!.doubleValue!])
    }

    // MARK: - The registry

    /// A kind defined outside the module, registered at run time: the number of tokens of a text.
    struct TokenCount: SuiteKind {
        static let name = "test_token_count"
        static let keys: Set<String> = ["text"]
        static let schema = ResultSchema(metrics: [MetricInfo("tokens", "tokens in the text", unit: "tokens", ideal: nil, better: .lower)],
                                         datasets: [])
        var text: String
        init(_ doc: SuiteDocument) throws { text = try doc.string("text") }
        func prepare(_ suite: Suite, _ c: PreparationContext) throws -> PreparedSuite {
            Prepared(suite: suite, count: c.tokenizer.encode(text).count)
        }
        struct Prepared: PreparedSuite {
            let suite: Suite, count: Int
            var itemCount: Int { 1 }
            var dataSHA256: String { "" }
            var dataFiles: [DataFileDigest] { [] }
            func evaluate(_ variants: VariantSet, progress: @Sendable (String) -> Void) throws -> [SuiteResult] {
                variants.models.map { _ in
                    var r = SuiteResult(suiteName: suite.name, suiteVersion: suite.version, dataSHA256: "")
                    r.set("tokens", Double(count), headline: true)
                    return r
                }
            }
        }
    }

    @Test func registeredKindsLoadAndRun() throws {
        let dir = try TestPaths.temporaryDirectory("registry")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = try Self.write("suite: t\nversion: 1\nkind: test_token_count\ntext: hello world\n", "t.yaml", in: dir)
        if SuiteKinds.named(TokenCount.name) == nil { try SuiteKinds.register(TokenCount.self) }
        #expect(throws: SuiteKindRegistrationError.self) { try SuiteKinds.register(TokenCount.self) }
        #expect(throws: SuiteKindRegistrationError.self) { try SuiteKinds.register(SentencePairsConfig.self) }
        let (model, tokenizer) = try Self.demo()
        let results = try EvaluationRunner.run(suites: [try Suite.load(url).prepare(tokenizer: tokenizer, config: model.config)],
                                               variants: [Variant(name: "base", model: model)])
        let r = results[0].suites[0]
        #expect(r["tokens"]?.doubleValue == Double(tokenizer.encode("hello world").count), "\(r.attributes)")
        #expect(r.kind == "test_token_count" && r.metric("tokens")?.unit == "tokens", "\(String(describing: r.kind)) \(r.metrics)")
        // An unknown kind names the file, the line and every registered kind.
        let bad = try Self.write("suite: u\nversion: 1\nkind: nope\n", "u.yaml", in: dir)
        Self.expectError(["u.yaml:3:7", "unknown kind 'nope'", "sentence_pairs", "multiple_choice", "test_token_count"]) { _ = try Suite.load(bad) }
        // Every built-in kind has one name, and its roles name headline metrics.
        #expect(Set(SuiteKinds.builtIn.map { $0.name }).count == SuiteKinds.builtIn.count)
        #expect(WinogenderConfig.schema.headline == WinogenderSuite.headlineOrder)
    }

    // MARK: - Where data files are found

    @Test func dataDirAddsAPlaceAndTakesNoneAway() throws {
        let dir = try TestPaths.temporaryDirectory("lookup")
        defer { try? FileManager.default.removeItem(at: dir) }
        let suiteFile = TestPaths.repoRoot.appendingPathComponent("Evaluations/pronoun-bias.yaml")
        let loc = DataLocations(dataDirectory: dir)
        // pronoun-bias's statistics are still found in Data/ with --data-dir pointing elsewhere.
        let stats = ExternalData(dataFile: "gender_words/winobias_jobs_pct_women.csv")
        #expect(try stats.resolve(suiteFile: suiteFile, locations: loc).path.hasSuffix("Data/gender_words/winobias_jobs_pct_women.csv"))
        // A file beside the suite file comes first, then --data-dir.
        let own = try Self.write("x", "gender_words/winobias_jobs_pct_women.csv", in: dir)
        #expect(try stats.resolve(suiteFile: suiteFile, locations: loc).standardizedFileURL == own.standardizedFileURL)
        let beside = dir.appendingPathComponent("suite.yaml")
        #expect(loc.candidates("f.csv", suiteFile: beside).first == dir.appendingPathComponent("f.csv").standardizedFileURL)
    }
}
