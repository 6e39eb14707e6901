import BackpackJSON
import Testing

/// The one JSON reader, in its two modes: strict (safetensors headers, like serde) and lenient
/// (tokenizer files, like Python's json).
@Suite struct JSONReaderTests {
    func parse(_ text: String, _ options: JSONOptions) throws -> JSONValue {
        try Array(text.utf8).withUnsafeBytes { try JSONReader.parse($0, options: options) }
    }

    @Test func keepsOrderAndDuplicatesWhenLenient() throws {
        let v = try parse(#"{"b": 1, "a": [true, null, -2.5e1], "b": "x"}"#, .lenient)
        guard case .object(let members) = v else { Issue.record("not an object"); return }
        #expect(members.map(\.0) == ["b", "a", "b"])
        if case .string(let s)? = v["b"] { #expect(s == "x") } else { Issue.record("last duplicate not kept") }
    }

    @Test(arguments: [
        (#"{"a": 1, "a": 2}"#, "duplicate key 'a'"),
        (#"["\ud800"]"#, "unpaired surrogate"),
        ("[99999999999999999999999]", "out of range"),
        (String(repeating: "[", count: 100), "nesting deeper than 64"),
        ("[1,]", "expected a value"),
        (#"{"a" 1}"#, "expected ':'"),
    ])
    func strictRefuses(text: String, message: String) {
        do {
            _ = try parse(text, .strict)
            Issue.record("accepted \(text)")
        } catch let e as JSONSyntaxError {
            #expect(e.message.contains(message), "\(e.message)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func lenientAcceptsWhatPythonAccepts() throws {
        if case .string(let s) = try parse(#""\ud800x""#, .lenient) { #expect(s == "\u{FFFD}x") }
        if case .double = try parse("99999999999999999999999", .lenient) {} else { Issue.record("huge integer") }
        #expect(throws: Never.self) { _ = try parse("\u{FEFF}{}", .lenient) }
    }

    @Test func reportsLineAndColumn() {
        let text = "{\n  \"a\": tru\n}"
        do {
            _ = try parse(text, .lenient)
        } catch let e as JSONSyntaxError {
            let (line, column) = Array(text.utf8).withUnsafeBytes { e.lineAndColumn(in: $0) }
            #expect(line == 2)
            #expect(column >= 8)
        } catch { Issue.record("\(error)") }
    }
}
