import BackpackEditing
import BackpackEvaluation
import BackpackHub
import Foundation

/// What `backpack list` shows: the suites and edit files that ship (from the files themselves:
/// a suite's name, kind and description, an edit file's name and description) and the models
/// in the Hugging Face cache.
public enum Catalog {
    public struct Item: Sendable {
        public let name: String
        /// A suite's kind, an edit file's number of sweep points, a model's revisions.
        public let detail: String
        public let description: String
    }

    /// Every suite file in `evaluations` (Evaluations/), by name; a file that does not load is
    /// listed with its error.
    public static func suites(in evaluations: URL) throws -> [Item] {
        try yamlFiles(in: evaluations).map { url in
            do {
                let suite = try Suite.load(url)
                return Item(name: suite.name, detail: suite.kindName, description: suite.description)
            } catch {
                return Item(name: url.deletingPathExtension().lastPathComponent, detail: "invalid", description: "\(error)")
            }
        }.sorted { $0.name < $1.name }
    }

    /// Every edit file in `edits` (Edits/), by file name (what --edit takes); a sweep file says
    /// how many variants it makes.
    public static func edits(in edits: URL) throws -> [Item] {
        try yamlFiles(in: edits).map { url in
            let name = url.deletingPathExtension().lastPathComponent
            do {
                let points = try EditFile.loadGrid(url)
                let first = points.first
                return Item(name: name, detail: points.count > 1 ? "sweep, \(points.count) points" : "",
                            description: first?.description ?? first?.name ?? "")
            } catch {
                return Item(name: name, detail: "invalid", description: "\(error)")
            }
        }.sorted { $0.name < $1.name }
    }

    /// The model repositories in the Hugging Face cache, each revision with its commit and
    /// whether the snapshot is complete (`--model ORG/NAME[@REVISION]` loads it offline).
    public static func models(in cache: HubCache = HubCache()) -> [Item] {
        cache.cachedModels().map { model in
            let revisions = model.revisions.map { "\($0.name) \($0.commit.prefix(12))\($0.complete ? "" : " (incomplete)")" }
            let usable = model.revisions.contains { $0.complete }
            return Item(name: model.repoID, detail: revisions.joined(separator: ", "),
                        description: usable ? "" : "incomplete: run `backpack download \(model.repoID)`")
        }
    }

    static func yamlFiles(in folder: URL) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { ["yaml", "yml"].contains($0.pathExtension) }
    }
}
