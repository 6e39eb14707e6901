import Foundation
import Testing
import TestSupport
@testable import BackpackResults

/// Bootstrap intervals and paired tests as the table, JSON and the report's trade-off chart show them.
@Suite struct IntervalPresentationTests {
    /// TradeOffTests' record with intervals on every bias and perplexity value and a paired p on the edits.
    static func record() -> RunRecord {
        var r = TradeOffTests.record()
        for v in r.variants.indices {
            for s in r.variants[v].suites.indices {
                let name = r.variants[v].suites[s].headline[0]
                let x = r.variants[v].suites[s][name]?.doubleValue ?? .nan
                r.variants[v].suites[s].set(name + ResultsKeys.ciLowSuffix, x - 0.25)
                r.variants[v].suites[s].set(name + ResultsKeys.ciHighSuffix, x + 0.5)
                if v > 0 {
                    r.variants[v].suites[s].set(name + ResultsKeys.diffCILowSuffix, -1)
                    r.variants[v].suites[s].set(name + ResultsKeys.diffCIHighSuffix, -0.1)
                    r.variants[v].suites[s].set(name + ResultsKeys.diffPSuffix, 0.002)
                }
            }
        }
        return r
    }

    @Test func tablePrintsIntervalsAndP() {
        let few = SummaryTable.render(Array(Self.record().variants.prefix(2)))
        #expect(few.contains("6.0000 [5.75, 6.5]") && few.contains("5.0000 [4.75, 5.5]"), "\(few)")
        #expect(few.contains("-1.0000 p=0.002"), "\(few)")
        let long = SummaryTable.render(Self.record().variants)
        let row = long.split(separator: "\n").first { $0.hasPrefix("remove[top=4] ") }.map(String.init) ?? ""
        #expect(row.contains("4.0000 [3.75, 4.5]") && row.contains("-2.0000 p=0.002") && row.contains("103.0000 [102.8, 103.5]"), "\(row)")
        // Without intervals: the table as before.
        #expect(!SummaryTable.render(TradeOffTests.record().variants).contains(" ["))
    }

    @Test func jsonCarriesTheKeys() throws {
        let r = Self.record()
        let text = try RunJSON.json(runID: r.id, r.variants)
        for key in ["bias_ci_low", "bias_ci_high", "bias_diff_ci_low", "bias_diff_ci_high", "bias_diff_p", "token_perplexity_ci_high"] {
            #expect(text.contains("\"\(key)\""), "\(key)")
        }
    }

    @Test func chartDrawsErrorBars() throws {
        let t = try TradeOff.make(Self.record().variants).get()
        let p = try #require(t.edits.first { $0.variant == "remove[top=4]" })
        #expect(p.yInterval?.low == 3.75 && p.yInterval?.high == 4.5)
        // perplexity 103 [102.75, 103.5] against base 100: +2.75 % to +3.5 %
        #expect(abs((p.xInterval?.low ?? .nan) - 2.75) < 1e-12 && abs((p.xInterval?.high ?? .nan) - 3.5) < 1e-12)
        let html = ReportHTML.render(Self.record())
        // Two bars (bias, perplexity) per point: base and four edits.
        #expect(html.components(separatedBy: "class=\"errorbar\"").count - 1 == 10)
        #expect(!ReportHTML.render(TradeOffTests.record()).contains("class=\"errorbar\""))
    }
}
