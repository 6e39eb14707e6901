import BackpackCheckpoint
import Foundation

/// The PyTorch reference outputs of `../shared/fixtures/tiny/expected.safetensors`, by input:
/// `NAME_input_ids` (B, n) and arrays of shape (B, ...).
public enum ReferenceFixture {
    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    public static let expected: SafetensorsFile = {
        // Test-only: without the shared fixtures no parity test can run at all.
        try! SafetensorsFile(url: TestPaths.tinyModel.appendingPathComponent("expected.safetensors"))
    }()
    public static let inputs = ["seq0", "seq1", "seq2", "seq3", "batch"]

    public static func maxDiff(_ a: some Collection<Float>, _ b: some Collection<Float>) -> Float {
        precondition(a.count == b.count, "size mismatch \(a.count) vs \(b.count)")
        return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    /// ids per batch row of input NAME.
    public static func ids(_ name: String) throws -> [[Int]] {
        guard let info = expected.tensors["\(name)_input_ids"] else { throw Missing(description: "no \(name)_input_ids") }
        let flat = try expected.ints("\(name)_input_ids")
        let rows = info.shape[0], n = info.shape[1]
        return (0..<rows).map { Array(flat[($0 * n)..<(($0 + 1) * n)]) }
    }

    /// Row b of a (B, ...) array.
    public static func row(_ name: String, _ b: Int) throws -> ArraySlice<Float> {
        guard let info = expected.tensors[name] else { throw Missing(description: "no array \(name)") }
        let all = try expected.floats(name)
        let per = all.count / info.shape[0]
        return all[(b * per)..<((b + 1) * per)]
    }
}
