import BackpackModel
import Foundation
import Testing
import TestSupport
@testable import BackpackModel

/// Sequences with a common prefix (prompts from one template) run the prefix through the trunk
/// once (LanguageModel.sharedPrefixTrunk). Causal attention makes it the same computation on
/// fewer rows, so the contextualization must equal the one computed row by row: alpha within
/// 1e-5 absolute (it is a softmax output in [0, 1]; the products differ only in their sizes,
/// hence in float32 rounding), and the logits of the demo model within 1e-4 (the tolerance of
/// its parity with PyTorch).
@Suite struct SharedPrefixTests {
    /// Templates as an evaluation builds them: a shared prefix, one varying word, a suffix.
    static func templatedBatch(vocabulary: Int) -> [[Int]] {
        var batch: [[Int]] = []
        let templates: [(prefix: [Int], suffix: [Int])] = [
            ([11, 12, 13, 14], [20, 21, 22]), ([11, 12, 13, 14], [23, 24]),    // two templates sharing 4 tokens
            ([30], [31, 32, 33, 34]), ([40, 41], [42]),
        ]
        for (t, template) in templates.enumerated() {
            for word in 0..<12 {
                batch.append((template.prefix + [100 + word + t] + template.suffix).map { $0 % vocabulary })
            }
        }
        batch.append([7, 8, 9].map { $0 % vocabulary })                       // shares nothing
        batch.append([11, 12].map { $0 % vocabulary })                        // a prefix of others, 2 tokens
        return batch
    }

    @Test func groupsSaveRowsAndKeepATokenOfTheirOwn() {
        let batch = Self.templatedBatch(vocabulary: 1000)
        let plan = PrefixGroups(batch)
        #expect(!plan.groups.isEmpty)
        var seen = Set(plan.alone)
        for g in plan.groups {
            #expect(g.members.count > 1 && g.prefix > 0)
            let prefix = batch[g.members[0]][..<g.prefix]
            for s in g.members {
                #expect(batch[s].count > g.prefix, "sequence \(s) keeps at least one token")
                #expect(batch[s][..<g.prefix] == prefix, "sequence \(s) starts with its group's prefix")
                #expect(seen.insert(s).inserted, "sequence \(s) is in one group only")
            }
        }
        #expect(seen == Set(batch.indices), "every sequence is placed")
        let saved = plan.groups.reduce(0) { $0 + ($1.members.count - 1) * $1.prefix }
        // 24 prompts share 4 tokens (saving 23 x 4 at least), 12 share [30], 12 share [40, 41].
        #expect(saved >= 23 * 4 + 11 * 1 + 11 * 2)
    }

    @Test func noCommonPrefixesMeansOneOrdinaryBatch() {
        let plan = PrefixGroups([[1, 2, 3], [4, 5, 6], [7, 8], [1, 9]])
        #expect(plan.groups.isEmpty)
        #expect(plan.alone == [0, 1, 2, 3])
    }

    @Test func contextualizationEqualsEveryRow() throws {
        let model = try ModelDirectory(TestPaths.demoModel).load()
        let batch = Self.templatedBatch(vocabulary: model.config.vocabSize)
        #expect(!PrefixGroups(batch).groups.isEmpty, "the batch exercises sharing")
        let shared = try model.contextualize(batch)
        let plain = try model.contextualize(batch, sharingPrefixes: false)
        var worstAlpha: Float = 0
        for (a, b) in zip(shared.perSequence, plain.perSequence) {
            #expect(a.count == b.count)
            for i in 0..<a.count { worstAlpha = max(worstAlpha, abs(a.pointer[i] - b.pointer[i])) }
        }
        let options = ForwardOptions(logits: .all)
        var worstLogit: Float = 0
        for (x, y) in zip(try model.outputs(shared, options: options), try model.outputs(plain, options: options)) {
            #expect(x.logits.count == y.logits.count)
            for (u, v) in zip(x.logits, y.logits) { worstLogit = max(worstLogit, abs(u - v)) }
        }
        print("shared prefixes vs every row: max|d| alpha \(worstAlpha) (tol 1e-5), logits \(worstLogit) (tol 1e-4)")
        #expect(worstAlpha <= 1e-5)
        #expect(worstLogit <= 1e-4)
    }
}
