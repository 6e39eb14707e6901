import BackpackEditing
import BackpackModel
import BackpackTokenizer
import BackpackResults
import Foundation
import Testing
import TestSupport
@testable import BackpackEvaluation

/// The shared evaluation engine (VariantSet: the trunk once per batch for the sense edits, logits
/// of word-level edits updated from the base's) gives every stored number of evaluating each
/// variant alone (its own full forward passes), within 1e-6 relative. One exception, stated:
/// CrowS-Pairs' likelihood_diff (mean |ll_more - ll_less|) is a difference of two sums that are
/// nearly equal on a random model (7e-4 of ~200), so it is held to 1e-6 of the log-likelihoods
/// it comes from (the mean |ll_more| of its pairs), not of itself.
@Suite struct SharedEngineTests {
    /// Every attribute and dataset of two results: doubles within 1e-6 relative (NaN equal to
    /// NaN), integers and strings exactly. Returns how many numbers were compared.
    @discardableResult
    static func expectSame(_ a: SuiteResult, _ b: SuiteResult, _ label: String) -> Int {
        var compared = 0
        var llScale = 0.0
        if case .doubles(let ll)? = b.dataset("ll_more"), !ll.isEmpty { llScale = ll.map(abs).reduce(0, +) / Double(ll.count) }
        func close(_ x: Double, _ y: Double, _ what: String) {
            compared += 1
            if x.isNaN && y.isNaN { return }
            let scale = what.hasSuffix("likelihood_diff") ? max(abs(x), abs(y), llScale) : max(abs(x), abs(y))
            let ok = x == y || abs(x - y) <= 1e-6 * scale
            #expect(ok, "\(label) \(what): shared \(x) vs alone \(y)")
        }
        #expect(a.suiteName == b.suiteName && a.suiteVersion == b.suiteVersion && a.dataSHA256 == b.dataSHA256 && a.headline == b.headline)
        #expect(a.attributes.map(\.name) == b.attributes.map(\.name), "\(label): attribute names")
        for (x, y) in zip(a.attributes, b.attributes) {
            switch (x.value, y.value) {
            case (.double(let u), .double(let v)): close(u, v, x.name)
            case (.int(let u), .int(let v)): compared += 1; #expect(u == v, "\(label) \(x.name)")
            case (.string(let u), .string(let v)): #expect(u == v, "\(label) \(x.name)")
            default: Issue.record("\(label) \(x.name): types differ")
            }
        }
        #expect(a.datasets.map(\.name) == b.datasets.map(\.name), "\(label): dataset names")
        for (x, y) in zip(a.datasets, b.datasets) {
            switch (x.values, y.values) {
            case (.doubles(let u), .doubles(let v)):
                #expect(u.count == v.count, "\(label) \(x.name): lengths")
                for (i, (p, q)) in zip(u, v).enumerated() { close(p, q, "\(x.name)[\(i)]") }
            case (.ints(let u), .ints(let v)): compared += u.count; #expect(u == v, "\(label) \(x.name)")
            case (.strings(let u), .strings(let v)): #expect(u == v, "\(label) \(x.name)")
            default: Issue.record("\(label) \(x.name): types differ")
            }
        }
        return compared
    }

    /// The base and three edits: word-level (overrides), vocabulary-wide (fold into c_proj) and
    /// input_embedding (a different trunk), on tokens `a` and `b`.
    static func variants(_ base: LanguageModel, a: Int, b: Int) throws -> [LanguageModel] {
        let dir = FileManager.default.temporaryDirectory
        func edit(_ body: String) throws -> LanguageModel {
            let file = try EditFile.parse("schema: backpack-edit/1\ninterventions:\n" + body, url: dir.appendingPathComponent("inline.yaml"))
            return try Editor.apply([file], to: base, tokenizer: nil).model
        }
        return [
            base,
            try edit("  - tokens: [\(a), \(b)]\n    senses: [1, 2]\n    scale: 0.0\n"),
            try edit("  - scope: vocabulary\n    senses: [1, 3]\n    project_out: {direction: {embedding_difference: [{token: \(a)}, {token: \(b)}]}, strength: 0.8}\n"),
            try edit("  - tokens: [\(a)]\n    target: input_embedding\n    scale: 0.5\n"),
            try edit("  - tokens: [\(b)]\n    senses: [0]\n    scale: 2.0\n"),
        ]
    }

    static func compare(_ prepared: [PreparedSuite], _ models: [LanguageModel]) throws {
        let set = VariantSet(models)
        // the plan: sense edits share the base's trunk, word-level ones update its logits,
        // the input_embedding edit runs on its own
        #expect(set.leader == [0, 0, 0, 3, 0])
        #expect(set.parent == [nil, 0, nil, nil, 0])
        for suite in prepared {
            let shared = try suite.evaluate(set) { _ in }
            var compared = 0
            for (i, model) in models.enumerated() {
                let alone = try suite.evaluate(model) { _ in }
                compared += expectSame(shared[i], alone, "\(suite.suite.name) variant \(i)")
            }
            #expect(compared > 10, "\(suite.suite.name): only \(compared) numbers compared")
            // every edit changes some number (else the comparison would prove little)
            let baseNumbers = numbers(shared[0])
            for i in 1..<models.count { #expect(numbers(shared[i]) != baseNumbers, "\(suite.suite.name): variant \(i) equals the base") }
        }
    }

    static func numbers(_ r: SuiteResult) -> [Double] {
        r.datasets.flatMap { d -> [Double] in if case .doubles(let v) = d.values { return v } else { return [] } }
    }

    func write(_ text: String, _ name: String, in dir: URL) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Pronoun bias and perplexity on the tiny fixture with the toy tokenizer.
    @Test func tinyFixturePronounsAndPerplexity() throws {
        let tmp = try TestPaths.temporaryDirectory("shared")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let base = try ModelDirectory(TestPaths.tinyModel).load()
        let tokenizer = try GPT2Tokenizer.load(from: TestPaths.toyTokenizer)
        let pronoun = try Suite.load(try write(ModelEvalTests.tinySuite, "tiny.yaml", in: tmp))
        let text = "My man said that the cook was with the car. When an old man was there, the cook said that he was with her."
        let ppl = try Suite.load(try write("suite: p\nversion: 1\nkind: perplexity\ntext: \"\(text)\"\nmax_length: 16\nstride: 8\nprepend_eos: false\nbatch_tokens: 40\n", "p.yaml", in: tmp))
        let prepared = try [pronoun, ppl].map { try $0.prepare(tokenizer: tokenizer, config: base.config) }
        let a = try #require(tokenizer.encode(" the").first), b = try #require(tokenizer.encode(" was").first)
        try Self.compare(prepared, try Self.variants(base, a: a, b: b))
    }

    /// Issue 30: every word-level operation (scale, project_out, replace_association, add,
    /// fit_scale, erase at word scope) and every point of a sweep updates the base's logits
    /// (VariantSet.parent), and each gives the numbers of its own full passes within 1e-6
    /// relative, on pronoun bias (last rows) and perplexity (every row, the low-rank update).
    @Test func everyWordLevelOperationAndSweepPointMatchesItsOwnPasses() throws {
        let tmp = try TestPaths.temporaryDirectory("shared-ops")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let base = try ModelDirectory(TestPaths.tinyModel).load()
        let tokenizer = try GPT2Tokenizer.load(from: TestPaths.toyTokenizer)
        let pronounFile = try write(ModelEvalTests.tinySuite, "tiny.yaml", in: tmp)
        let text = "My man said that the cook was with the car. When an old man was there, the cook said that he was with her."
        let ppl = try Suite.load(try write("suite: p\nversion: 1\nkind: perplexity\ntext: \"\(text)\"\nmax_length: 16\nstride: 8\nprepend_eos: false\nbatch_tokens: 40\n", "p.yaml", in: tmp))
        let prepared = try [try Suite.load(pronounFile), ppl].map { try $0.prepare(tokenizer: tokenizer, config: base.config) }
        // Words that are one token of the toy tokenizer (" man" is two).
        let single = ["the", "was", "cook", "an", "car", "said", "with", "he", "she", "her"].filter { tokenizer.wordTokens($0).count == 1 }
        try #require(single.count >= 6 && single.contains("he") && single.contains("she"), "\(single)")
        let nouns = single.filter { $0 != "he" && $0 != "she" }
        let ids = (nouns.prefix(4) + ["he", "she"]).map { tokenizer.wordTokens($0)[0] }
        let (the, was, man, cook, he, she) = (ids[0], ids[1], ids[2], ids[3], ids[4], ids[5])
        _ = try write(ModelEvalTests.tinySuite.replacingOccurrences(of: "nouns: [the, was, man, cook, an]", with: "nouns: [\(nouns.prefix(3).joined(separator: ", "))]"),
                      "fit.yaml", in: tmp)
        let difference = "{embedding_difference: [{token: \(he)}, {token: \(she)}]}"
        let operations = [
            "scale: 0.25",
            "project_out: {direction: \(difference), strength: 1.0}",
            "replace_association: {remove: {token: \(he)}, add: {token: \(she)}}",
            "add: {direction: \(difference), amount: 0.7}",
            "fit_scale: {suite: fit.yaml, pair: [he, she]}",
            "erase: {method: leace, pairs: [[{token: \(he)}, {token: \(she)}], [{token: \(man)}, {token: \(cook)}], [{token: \(the)}, {token: \(was)}]]}",
        ]
        var models = [base]
        var names = ["base"]
        for op in operations {
            let selection = op.hasPrefix("fit_scale") ? "" : "    tokens: [\(man), \(cook)]\n"
            let body = "schema: backpack-edit/1\ninterventions:\n  - senses: [1, 2]\n\(selection)    \(op)\n"
            let file = try EditFile.parse(body, url: tmp.appendingPathComponent("op.yaml"))
            models.append(try Editor.apply([file], to: base, tokenizer: tokenizer).model)
            names.append(String(op.prefix { $0 != ":" }))
        }
        let sweep = "schema: backpack-edit/1\ninterventions:\n  - tokens: [\(man), \(the)]\n    senses: [0, 3]\n    scale: {sweep: [0, 0.5, 1.5, 2]}\n"
        for point in try EditFile.expand(sweep, url: tmp.appendingPathComponent("sweep.yaml")) {
            models.append(try Editor.apply([point], to: base, tokenizer: tokenizer).model)
            names.append("sweep \(point.grid.map(\.description).joined())")
        }
        // An edit sets only the senses it names: the others are base's own vectors, bit for bit,
        // so the update carries the edited (id, sense) pairs alone.
        for (i, model) in models.enumerated().dropFirst() {
            try #require(!model.senseOverrides.isEmpty, "\(names[i]) overrides no token")
            let d = base.config.nEmbd, ids = Array(model.senseOverrides.keys)
            let mine = model.senseVectors(ids), theirs = base.senseVectors(ids)
            var changed = 0
            for id in ids {
                let edited = try #require(model.overriddenSenses[id], "\(names[i]): token \(id) overridden whole")
                #expect(Set(edited).isSubset(of: [0, 1, 2, 3]), "\(names[i]): token \(id) senses \(edited)")
                let a = try #require(mine[id]), b = try #require(theirs[id])
                for l in 0..<base.config.senses {
                    let same = a[(l * d)..<((l + 1) * d)].elementsEqual(b[(l * d)..<((l + 1) * d)]) { $0.bitPattern == $1.bitPattern }
                    if !edited.contains(l) { #expect(same, "\(names[i]): token \(id) sense \(l) is not base's") } else if !same { changed += 1 }
                }
            }
            #expect(changed > 0, "\(names[i]) changes no sense vector")
        }
        let set = VariantSet(models)
        #expect(set.parent == [nil] + Array(repeating: 0, count: models.count - 1), "every word-level variant updates base's logits: \(set.parent)")
        for suite in prepared {
            let shared = try suite.evaluate(set) { _ in }
            let baseNumbers = Self.numbers(shared[0])
            for (i, model) in models.enumerated().dropFirst() {
                let alone = try suite.evaluate(model) { _ in }
                let compared = Self.expectSame(shared[i], alone, "\(suite.suite.name) \(names[i])")
                #expect(compared > 10)
                #expect(Self.numbers(shared[i]) != baseNumbers, "\(suite.suite.name) \(names[i]) equals the base")
            }
        }
    }

    /// Every bit of a result's numbers, for exact comparisons.
    static func bits(_ r: SuiteResult) -> [String] {
        r.attributes.map { "\($0.name) \($0.value.doubleValue?.bitPattern.description ?? "\($0.value)")" }
            + r.datasets.map { d in
                if case .doubles(let v) = d.values { return "\(d.name) \(v.map(\.bitPattern))" }
                return "\(d.name) \(d.values)"
            }
    }

    /// A variant's numbers do not depend on the variants evaluated with it (issue 19): with the
    /// base as the reference, each word-level edit alone, in other company or without the base
    /// in the set gives the same bits as in the whole set (perplexity scores every row, so the
    /// edits' logits are updates of the base's).
    @Test func numbersDoNotDependOnTheGrouping() throws {
        let tmp = try TestPaths.temporaryDirectory("grouping")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let base = try ModelDirectory(TestPaths.tinyModel).load()
        let tokenizer = try GPT2Tokenizer.load(from: TestPaths.toyTokenizer)
        let text = "My man said that the cook was with the car. When an old man was there, the cook said that he was with her."
        let ppl = try Suite.load(try write("suite: p\nversion: 1\nkind: perplexity\ntext: \"\(text)\"\nmax_length: 16\nstride: 8\nprepend_eos: false\nbatch_tokens: 40\n", "p.yaml", in: tmp))
        let pronoun = try Suite.load(try write(ModelEvalTests.tinySuite, "tiny.yaml", in: tmp))
        let a = try #require(tokenizer.encode(" the").first), b = try #require(tokenizer.encode(" was").first)
        let models = try Self.variants(base, a: a, b: b)
        for suite in [ppl, pronoun] {
            let prepared = try suite.prepare(tokenizer: tokenizer, config: base.config)
            let whole = try prepared.evaluate(VariantSet(models, reference: base)) { _ in }
            let groupings: [[Int]] = [[1], [4], [4, 1], [2, 4], [3, 1, 4], [0, 4]]
            for g in groupings {
                let set = VariantSet(g.map { models[$0] }, reference: base)
                let part = try prepared.evaluate(set) { _ in }
                for (k, i) in g.enumerated() {
                    #expect(Self.bits(part[k]) == Self.bits(whole[i]), "\(suite.name): variant \(i) evaluated with \(g) differs from the whole set")
                }
            }
            // Without the base in the set, its word-level edits still update the base's logits.
            #expect(VariantSet([models[1], models[4]], reference: base).parent == [2, 2])
            #expect(VariantSet([models[4], models[0], models[1]], reference: base).parent == [1, nil, 1])
        }
    }

    /// Each suite kind's results have the headline, datasets and metric roles its schema declares.
    @Test func resultsFollowTheirKindsSchema() throws {
        let tmp = try TestPaths.temporaryDirectory("schema")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let base = try ModelDirectory(TestPaths.tinyModel).load()
        let tokenizer = try GPT2Tokenizer.load(from: TestPaths.toyTokenizer)
        let ppl = try Suite.load(try write("suite: p\nversion: 1\nkind: perplexity\ntext: \"the man was with the car\"\nmax_length: 8\nstride: 4\nprepend_eos: false\n", "p.yaml", in: tmp))
        let pronoun = try Suite.load(try write(ModelEvalTests.tinySuite, "tiny.yaml", in: tmp))
        let results = try EvaluationRunner.run(suites: [ppl, pronoun].map { try $0.prepare(tokenizer: tokenizer, config: base.config) },
                                               variants: [Variant(name: "base", model: base)])
        for r in results[0].suites {
            let kind: any SuiteKind.Type = r.suiteName == "p" ? PerplexityConfig.self : PronounBiasConfig.self
            #expect(r.headline == kind.schema.headline, "\(r.suiteName): \(r.headline)")
            #expect(r.kind == kind.name && r.metrics == kind.schema.metrics, "\(r.suiteName): kind and metric metadata stored")
            #expect(r.roles == kind.schema.roles && !r.roles.isEmpty, "\(r.suiteName): \(r.roles)")
            for (_, metric) in r.roles { #expect(r.headline.contains(metric)) }
            let names = Set(r.datasets.map(\.name))
            #expect(Set(kind.schema.datasets).isSubset(of: names), "\(r.suiteName): \(names.sorted())")
        }
        for kind in SuiteKinds.all {
            for (_, metric) in kind.schema.roles { #expect(kind.schema.headline.contains(metric), "\(kind): role \(metric) is not a headline metric") }
        }
    }

    /// CrowS-Pairs and StereoSet need <|endoftext|>: a small random model with GPT-2's tokenizer.
    @Test func smallModelCrowsPairsAndStereoSet() throws {
        let (base, tokenizer) = try ModelEvalTests.smallRandomModel()
        let tmp = try TestPaths.temporaryDirectory("shared-small")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let dir = TestPaths.repoRoot.appendingPathComponent("Evaluations")
        let crowsText = try String(contentsOf: dir.appendingPathComponent("crows-pairs.yaml"), encoding: .utf8) + "max_pairs: 6\nbatch_tokens: 64\n"
        let stereoText = try String(contentsOf: dir.appendingPathComponent("stereoset.yaml"), encoding: .utf8) + "max_examples: 4\nbatch_tokens: 64\n"
        let loc = DataLocations(dataDirectory: TestPaths.data)
        let prepared = try [try Suite.load(try write(crowsText, "crows.yaml", in: tmp)), try Suite.load(try write(stereoText, "stereo.yaml", in: tmp))]
            .map { try $0.prepare(tokenizer: tokenizer, config: base.config, locations: loc) }
        // " was" and " are" occur in the first CrowS-Pairs pairs and StereoSet examples
        let a = try #require(tokenizer.encode(" was").first), b = try #require(tokenizer.encode(" are").first)
        try Self.compare(prepared, try Self.variants(base, a: a, b: b))
    }
}
