import BackpackCheckpoint
import Foundation

/// The PyTorch reference outputs of `Tests/Fixtures/tiny/expected.safetensors`, by input:
/// `NAME_input_ids` (B, n) and arrays of shape (B, ...). A missing or unreadable fixture is a
/// test failure naming the file, never a crash.
public enum ReferenceFixture {
    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    public static var expectedURL: URL { TestPaths.tinyModel.appendingPathComponent("expected.safetensors") }
    private static let opened = Result { try SafetensorsFile(url: expectedURL) }
    public static var expected: SafetensorsFile {
        get throws {
            do { return try opened.get() } catch {
                throw Missing(description: "reference fixture \(expectedURL.path): \(error)")
            }
        }
    }
    public static let inputs = ["seq0", "seq1", "seq2", "seq3", "batch"]

    /// Max |a - b|; infinity when the sizes differ (so the test's tolerance check fails and prints it).
    public static func maxDiff(_ a: some Collection<Float>, _ b: some Collection<Float>) -> Float {
        guard a.count == b.count else { return .infinity }
        return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    /// ids per batch row of input NAME.
    public static func ids(_ name: String) throws -> [[Int]] {
        let expected = try expected
        guard let info = expected.tensors["\(name)_input_ids"] else { throw Missing(description: "no \(name)_input_ids in \(expectedURL.path)") }
        let flat = try expected.ints("\(name)_input_ids")
        let rows = info.shape[0], n = info.shape[1]
        return (0..<rows).map { Array(flat[($0 * n)..<(($0 + 1) * n)]) }
    }

    /// Row b of a (B, ...) array.
    public static func row(_ name: String, _ b: Int) throws -> ArraySlice<Float> {
        let expected = try expected
        guard let info = expected.tensors[name] else { throw Missing(description: "no array \(name) in \(expectedURL.path)") }
        let all = try expected.floats(name)
        let per = all.count / info.shape[0]
        return all[(b * per)..<((b + 1) * per)]
    }
}
