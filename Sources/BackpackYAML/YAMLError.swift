import Foundation

/// A place in a YAML file (1-based, as libyaml counts: columns in Unicode scalars).
public struct SourcePlace: Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let column: Int
    public init(file: String, line: Int, column: Int) { self.file = file; self.line = line; self.column = column }
    public var description: String { "\(file):\(line):\(column)" }
}

/// The one error type of the project's YAML files (edit files, suite files) and the lists they
/// name: where (`file:line:column` when the place is known, else the file) and what was expected.
public struct YAMLError: PlacedError {
    public let place: SourcePlace?
    public let file: String
    public let message: String
    public init(_ place: SourcePlace, _ message: String) { self.place = place; file = place.file; self.message = message }
    public init(file: String, _ message: String) { place = nil; self.file = file; self.message = message }
    /// A place that may be partly unknown (line without column, or neither).
    public init(file: String, line: Int? = nil, column: Int? = nil, reason: String) {
        if let line, let column { self.init(SourcePlace(file: file, line: line, column: column), reason) }
        else if let line { self.init(file: "\(file):\(line)", reason) }
        else { self.init(file: file, reason) }
    }
}

/// An error at a place in a file (`file:line:column: message`, or `file: message` when the place
/// is unknown): the YAML layer's own, and the errors of the layers that read YAML (EditError),
/// which carry the same fields and print the same way.
public protocol PlacedError: Error, CustomStringConvertible, Sendable {
    var place: SourcePlace? { get }
    var file: String { get }
    var message: String { get }
}

extension PlacedError {
    public var reason: String { message }
    public var line: Int? { place?.line }
    public var column: Int? { place?.column }
    public var description: String { "\(place.map { $0.description } ?? file): \(message)" }
}
