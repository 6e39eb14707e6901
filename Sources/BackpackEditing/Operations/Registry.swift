import Foundation

/// The operations an edit file may name: the built-in ones, then those registered at run time,
/// in that order (the order messages list them in).
public enum EditOperations {
    /// The operations this package ships. Adding one is a file in Operations/ and a line here.
    public static let builtIn: [any EditOperation.Type] = [
        Scale.self,
        ProjectOut.self,
        ReplaceAssociation.self,
        Add.self,
        FitScale.self,
        Erase.self,
    ]

    /// Every operation an edit file may name now.
    public static var all: [any EditOperation.Type] { builtIn + registry.registered }

    public static func named(_ name: String) -> (any EditOperation.Type)? { all.first { $0.name == name } }

    /// Makes `operation` available to every edit file read afterwards, from any thread.
    /// Registering the same type again does nothing; a name that is taken (by an intervention
    /// key or another operation), or a sweepable parameter that is not one of its keys, is refused.
    public static func register(_ operation: any EditOperation.Type) throws { try registry.add(operation) }

    public struct RegistrationError: Error, CustomStringConvertible {
        public let description: String
    }

    private static let registry = Registry()

    /// Registered operations. The list is read by every file parse and written by `register`,
    /// possibly on other threads, so both go through the lock.
    private final class Registry: @unchecked Sendable {
        private let lock = NSLock()
        private var types: [any EditOperation.Type] = []   // guarded by lock

        var registered: [any EditOperation.Type] {
            lock.lock(); defer { lock.unlock() }
            return types
        }

        func add(_ operation: any EditOperation.Type) throws {
            lock.lock(); defer { lock.unlock() }
            let name = operation.name
            func refuse(_ why: String) -> RegistrationError { RegistrationError(description: "cannot register operation \(operation) as '\(name)': \(why)") }
            if let taken = (EditOperations.builtIn + types).first(where: { $0.name == name }) {
                if ObjectIdentifier(taken) == ObjectIdentifier(operation) { return }
                throw refuse("the name is taken by \(taken)")
            }
            guard !name.isEmpty, !name.contains(where: { $0.isWhitespace }) else { throw refuse("expected a non-empty key without spaces") }
            if Intervention.keys.contains(name) { throw refuse("`\(name)` is an intervention key (\(Intervention.keys.joined(separator: ", ")))") }
            if operation.keys.contains(name) { throw refuse("one of its keys is its own name, which would make `sweepable` ambiguous") }
            for p in operation.sweepable where p != name && !operation.keys.contains(p) {
                throw refuse("sweepable parameter '\(p)' is neither one of its keys (\(operation.keys.joined(separator: ", "))) nor its name")
            }
            if operation.scopes.isEmpty { throw refuse("expected at least one scope") }
            types.append(operation)
        }
    }
}
