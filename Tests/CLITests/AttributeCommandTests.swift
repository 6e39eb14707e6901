import Foundation
import Testing
import TestSupport

/// `backpack attribute` on the embedded demo model against the PyTorch golden
/// (Tools/attribution/golden/attribution.json; the library's own golden test is in ModelTests).
@Suite struct AttributeCommandTests {
    static func goldenCase(_ text: String) throws -> [String: Any] {
        let data = try Data(contentsOf: TestPaths.repoRoot.appendingPathComponent("Tools/attribution/golden/attribution.json"))
        let top = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases = try #require((top["demo"] as? [String: Any])?["cases"] as? [[String: Any]])
        return try #require(cases.first { $0["text"] as? String == text })
    }

    @Test func jsonMatchesPyTorch() throws {
        let text = "My nurse said that"
        let r = try backpack(["attribute", "--text", text, "--pair", "he,she", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        let golden = try Self.goldenCase(text)
        #expect(json["tokens"] as? [String] == ["My", " nurse", " said", " that"])
        #expect(json["ids"] as? [Int] == golden["ids"] as? [Int])
        #expect(json["edits"] == nil)
        let got = try #require(json["contributions"] as? [[Double]]), want = try #require(golden["contributions"] as? [[Double]])
        #expect(got.count == want.count && got.first?.count == 4)
        let tolerance = 1e-4 + 1e-5 * want.joined().reduce(0) { max($0, abs($1)) }
        let worst = zip(got.joined(), want.joined()).reduce(0.0) { max($0, abs($1.0 - $1.1)) }
        #expect(worst <= tolerance, "max|d| \(worst)")
        let total = try #require(json["total"] as? Double), difference = try #require(json["logit_difference"] as? Double)
        #expect(abs(total - got.joined().reduce(0, +)) <= 1e-12)
        #expect(abs(total - difference) <= 1e-4, "total \(total) vs logit difference \(difference)")
        #expect(abs(total - (-0.86)) < 0.005)
    }

    /// With --edit: the edit's column beside the base. remove-gender-sense zeroes one sense of the
    /// profession nouns, so only the noun's position changes, and that sense contributes nothing there.
    @Test func editShowsWhatRemains() throws {
        let edit = TestPaths.repoRoot.appendingPathComponent("Edits/remove-gender-sense.yaml").path
        let r = try backpack(["attribute", "--text", "My nurse said that", "--edit", edit, "--json"])
        #expect(r.status == 0, "\(r.err)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        let base = try #require(json["contributions"] as? [[Double]])
        let edits = try #require(json["edits"] as? [[String: Any]])
        #expect(edits.count == 1)
        #expect(edits.first?["name"] as? String == "remove-gender-sense")
        let after = try #require(edits.first?["contributions"] as? [[Double]])
        var changed: [(Int, Int)] = []
        for l in base.indices { for j in base[l].indices where after[l][j] != base[l][j] { changed.append((l, j)) } }
        #expect(changed.count == 1 && changed.first?.1 == 1, "\(changed)")
        if let (l, j) = changed.first { #expect(after[l][j] == 0) }
        let total = try #require(edits.first?["total"] as? Double), difference = try #require(edits.first?["logit_difference"] as? Double)
        #expect(abs(total - difference) <= 1e-4)

        let t = try backpack(["attribute", "--text", "My nurse said that", "--edit", edit, "--noun", "nurse", "--top", "3"])
        #expect(t.status == 0, "\(t.err)")
        for needle in ["largest contributions", "by position", "by sense", "remove-gender-sense", "noun ' nurse' vs context", "' nurse'"] {
            #expect(t.out.contains(needle), "\(needle): \(t.out)")
        }
    }

    @Test func badInputsAreClearErrors() throws {
        let gpt2 = TestPaths.repoRoot.appendingPathComponent("Tests/ModelTests/Fixtures/gpt2-tiny").path
        let g = try backpack(["attribute", "--model", gpt2, "--text", "My nurse said that"])
        #expect(g.status != 0)
        #expect(g.err.contains("plain GPT-2"), "\(g.err)")
        let p = try backpack(["attribute", "--text", "My nurse said that", "--pair", "he"])
        #expect(p.status != 0)
        #expect(p.err.contains("--pair"), "\(p.err)")
        let n = try backpack(["attribute", "--text", "My nurse said that", "--noun", "carpenter"])
        #expect(n.status != 0)
        #expect(n.err.contains("not a token of the text"), "\(n.err)")
    }

    @Test func localizeContextualRanksSenses() throws {
        let r = try backpack(["localize", "--words", "nurse,carpenter,mechanic", "--contextual", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        let table = try #require(json["table"] as? [String: Any])
        #expect((table["senses"] as? [Any])?.count == 16)
        #expect((table["perWord"] as? [[Double]])?.count == 3)
    }
}
