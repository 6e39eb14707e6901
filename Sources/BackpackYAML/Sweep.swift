import Foundation

// Sweeps: a YAML file may write `{sweep: [v1, v2, ...]}` in place of a value, and declares a grid
// of documents: one per combination of the sweeps' values (their cartesian product). Expansion
// works on the node tree: each grid point is the original tree with every sweep node replaced by
// the chosen value node (which keeps its own line and column), so the file's ordinary reader
// validates every value of every point and its errors point into the file.

/// One axis of a grid point: its name and the value chosen, as written in the file
/// (a sequence is written compactly in flow style, e.g. `[10,2]`).
public struct GridCoordinate: Sendable, Equatable, Hashable, CustomStringConvertible {
    public let axis: String
    public let value: String
    public init(axis: String, value: String) { self.axis = axis; self.value = value }
    public var description: String { "\(axis)=\(value)" }
}

/// A sweep node found at a place the file's schema allows one.
public struct SweepSite: Sendable {
    /// The path from the root: pair indices of mappings and item indices of sequences.
    public let path: [Int]
    /// The axis name when it is unambiguous (the key, e.g. `scale`).
    public let key: String
    /// The qualified axis name used when two sites share `key` (e.g. `remove-he.scale`).
    public let qualifiedKey: String
    public init(path: [Int], key: String, qualifiedKey: String) {
        self.path = path; self.key = key; self.qualifiedKey = qualifiedKey
    }
}

/// One point of a grid: the document with the chosen values, and the coordinates.
public struct SweepPoint: Sendable {
    public let root: YAMLNode
    public let coordinates: [GridCoordinate]
}

public enum YAMLSweep {
    /// The key of a sweep node.
    public static let key = "sweep"
    /// The most grid points a file may declare: each is a model variant evaluated in one run.
    public static let maxPoints = 256

    /// Whether `node` is written as a sweep (a mapping with a `sweep` key).
    public static func isSweep(_ node: YAMLNode) -> Bool {
        guard case .mapping(let m) = node else { return false }
        return m.contains { $0.key.string == key }
    }

    /// The value node at `path`, if the path exists.
    public static func node(_ root: YAMLNode, at path: [Int]) -> YAMLNode? {
        var n = root
        for i in path {
            switch n {
            case .mapping(let m): guard i < m.count else { return nil }; n = m[i].value
            case .sequence(let s): guard i < s.count else { return nil }; n = s[i]
            default: return nil
            }
        }
        return n
    }

    /// `root` with the value at `path` replaced (everything else, marks included, unchanged).
    static func replacing(_ root: YAMLNode, at path: ArraySlice<Int>, with value: YAMLNode) -> YAMLNode {
        guard let i = path.first else { return value }
        switch root {
        case .mapping(var m):
            m.pairs[i].value = replacing(m.pairs[i].value, at: path.dropFirst(), with: value)
            return .mapping(m)
        case .sequence(var s):
            s.items[i] = replacing(s.items[i], at: path.dropFirst(), with: value)
            return .sequence(s)
        default:
            return root
        }
    }

    /// A value as written, compact and on one line (the axis value of a grid coordinate).
    public static func written(_ node: YAMLNode) -> String {
        switch node {
        case .scalar(let s): return s.string
        case .sequence(let s): return "[" + s.map(written).joined(separator: ",") + "]"
        case .mapping(let m): return "{" + m.map { written($0.key) + ":" + written($0.value) }.joined(separator: ",") + "}"
        }
    }

    /// The grid the sweep nodes at `sites` declare, one point per combination of their values
    /// (the first site varies slowest). No sites: the one point `root` with no coordinates.
    /// Errors name the place: a sweep that is not a non-empty list, a value given twice, a grid
    /// of more than `maxPoints`.
    public static func expand(_ root: YAMLNode, sites: [SweepSite], reader: YAMLReader) throws -> [SweepPoint] {
        var axes: [(name: String, path: [Int], values: [YAMLNode])] = []
        let keyCounts = Dictionary(sites.map { ($0.key, 1) }, uniquingKeysWith: +)
        var total = 1
        for site in sites {
            guard let node = node(root, at: site.path) else { continue }
            let m = try reader.mapping(node, key, allowed: [key], form: "{sweep: [v1, v2, ...]}")
            guard let list = m[key] else { continue }
            let items = try reader.sequence(list, key, form: "a list of values such as {sweep: [0, 0.5, 1]}")
            if items.isEmpty { throw YAMLError(reader.place(list), "sweep: empty list; expected at least one value, such as {sweep: [0, 0.5, 1]}") }
            var seen: [String: YAMLNode] = [:]
            for item in items {
                let w = written(item)
                if let first = seen[w] {
                    throw YAMLError(reader.place(item), "sweep: value \(w) appears twice (first at line \(reader.place(first).line)); each grid point needs its own value")
                }
                seen[w] = item
            }
            let name = keyCounts[site.key, default: 0] > 1 ? site.qualifiedKey : site.key
            if axes.contains(where: { $0.name == name }) {
                throw YAMLError(reader.place(node), "sweep: two sweeps are both named \(name); give the interventions distinct `name:`s")
            }
            axes.append((name, site.path, items))
            total *= items.count
            if total > maxPoints {
                throw YAMLError(reader.place(node), "the sweeps expand to more than \(maxPoints) grid points (" +
                                axes.map { "\($0.values.count) \($0.name)" }.joined(separator: " x ") + "); expected at most \(maxPoints) variants per file")
            }
        }
        var points: [SweepPoint] = [SweepPoint(root: root, coordinates: [])]
        for axis in axes {
            points = points.flatMap { p in
                axis.values.map { v in
                    SweepPoint(root: replacing(p.root, at: axis.path[...], with: v),
                               coordinates: p.coordinates + [GridCoordinate(axis: axis.name, value: written(v))])
                }
            }
        }
        return points
    }

    /// A name for a grid point: `stem[axis=value,axis=value]` (just `stem` without coordinates).
    /// `/` (which an HDF5 name cannot hold) becomes `-`.
    public static func pointName(_ stem: String, _ coordinates: [GridCoordinate]) -> String {
        let name = coordinates.isEmpty ? stem : stem + "[" + coordinates.map(\.description).joined(separator: ",") + "]"
        return name.replacingOccurrences(of: "/", with: "-")
    }
}
