import BackpackCheckpoint
import BackpackJSON
import BackpackIO
import BackpackModel
import BackpackModelFolder
import Foundation

/// Writes an edited model as a Hugging Face model folder: `config.json`, `model.safetensors`
/// (folded weights), `sense_overrides.safetensors` (word-level edits, `token.<id>` (k, d)),
/// `configuration_backpack_gpt2.py` + `modeling_backpack_gpt2.py` (the project's own modeling
/// code, which applies the overrides), `edit-manifest.json`, a model card `README.md` and the
/// base directory's tokenizer files. Built in a temporary sibling and renamed into place; never
/// writes into (or over) the input directory.
///
/// No folder is written that transformers could load while dropping the edit. For a Backpack:
/// - `model_type` is `backpack-gpt2`, which stock transformers does not know, so the Auto
///   classes can build the model only through `auto_map` (remote code) and refuse without
///   `trust_remote_code=True`; they never fall back to a plain GPT-2 (the published config's
///   `gpt2` would let `AutoModelForCausalLM.from_pretrained(dir)` build GPT2LMHeadModel, ignore
///   the sense network and the edit, and initialise the weights at random).
/// - `auto_map` always names the modeling files shipped in the same folder (never the base's
///   remote code, e.g. a Hub repo's file that ignores `sense_overrides.safetensors`).
/// - `config.json` declares the overrides file and its SHA-256 under `backpack_edit`; the
///   modeling code refuses to load when the file is missing or differs, and refuses to run a
///   model whose declared overrides were never loaded (e.g. built with `from_config`).
/// - `verify` checks all of this on the finished temporary folder before it is renamed into
///   place: a folder that fails it is never written.
/// Not covered (documented in the model card): code that instantiates another class by name,
/// e.g. `GPT2LMHeadModel.from_pretrained(dir)` (transformers warns that every weight is
/// missing) or the published modeling code imported by hand.
/// Plain GPT-2 checkpoints have no senses, hence no overrides: every edit is folded into the
/// weights, stock transformers loads them with the edit, and their config keeps `model_type`.
public enum EditedCheckpoint {
    // The folder's file names, model type, edit key and auto_map are the model-folder contract's.
    static let modelType = ModelFolder.editedModelType
    static let editKey = ModelFolder.editKey
    static let manifestFile = ModelFolder.manifestFile
    static let cardFile = ModelFolder.cardFile
    static let autoMap = ModelFolder.autoMap
    public static let cardTags = ["backpack", "backpack-edit", "model-editing"]

    /// What the model card says beyond the edit itself.
    public struct CardInfo: Sendable {
        /// Hub id of the base model (`--base-model-id`); else inferred from a Hugging Face cache path.
        public var baseModelID: String?
        /// The before/after table of an evaluation run.
        public var evaluation: Evaluation?
        public init(baseModelID: String? = nil, evaluation: Evaluation? = nil) {
            self.baseModelID = baseModelID; self.evaluation = evaluation
        }
    }

    public struct Evaluation: Sendable {
        /// The results file's name (never its absolute path).
        public var file: String
        public var runID: String
        /// The plain-text table, as `backpack report` prints it.
        public var table: String
        public init(file: String, runID: String, table: String) { self.file = file; self.runID = runID; self.table = table }
    }

    public static func write(_ outcome: EditOutcome, files: [EditFile], base: ModelDirectory, to target: URL,
                             toolVersion: String, tokenizerSource: URL? = nil, card: CardInfo = CardInfo()) throws {
        try AtomicOutput.checkNotInput(target, inputs: [base.url])
        let model = outcome.model
        let config = model.config
        let isBackpack = config.architecture == .backpack
        if !isBackpack && !model.senseOverrides.isEmpty {
            throw ModelError(file: base.url.path, reason: "a plain GPT-2 has no senses, yet the edit produced sense overrides; refusing to write a folder that would drop them")
        }
        let baseConfig = base.folder.configMembers
        let baseFrontMatter = try base.folder.cardFrontMatter().filter { ["license", "license_name", "license_link"].contains($0.key) }
        let baseModelID = card.baseModelID ?? inferredModelID(base.url)
        let code = isBackpack ? try HuggingFaceCode.files() : []
        try AtomicOutput.directory(target) { tmp in
            try SafetensorsWriter.write(model.parameters.tensors(), metadata: ["format": "pt", "tool": "backpack \(toolVersion)"],
                                        to: tmp.appendingPathComponent(ModelFolder.safetensorsFile))
            var overridesSHA: String?
            if !model.senseOverrides.isEmpty {
                // all k senses as the edited model computes them (an edit's partial override takes
                // the senses it left alone from the model)
                let ids = model.senseOverrides.keys.sorted(), vectors = model.senseVectors(ids)
                let tensors = ids.map { id in
                    (name: "token.\(id)", shape: [config.senses, config.nEmbd], values: vectors[id] ?? [])
                }
                let file = tmp.appendingPathComponent(ModelFolder.senseOverridesFile)
                try SafetensorsWriter.write(tensors, metadata: ["format": "pt", "tool": "backpack \(toolVersion)"], to: file)
                overridesSHA = try FileDigest.sha256(file)
            }
            for (name, data) in code { try data.write(to: tmp.appendingPathComponent(name)) }
            try copyTokenizer(base: base, source: tokenizerSource, to: tmp)

            let edit = editEntry(base: baseConfig, overridesSHA: overridesSHA, toolVersion: toolVersion, isBackpack: isBackpack)
            try Data(configText(base: baseConfig, edit: edit, isBackpack: isBackpack).utf8)
                .write(to: tmp.appendingPathComponent(ModelFolder.configFile))

            let manifest = try manifestObject(outcome, files: files, base: base, baseModelID: baseModelID,
                                              toolVersion: toolVersion, overridesSHA: overridesSHA)
            try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                .write(to: tmp.appendingPathComponent(manifestFile))

            try Data(cardText(outcome, files: files, base: base, baseModelID: baseModelID,
                              license: baseFrontMatter, overridesSHA: overridesSHA, isBackpack: isBackpack,
                              evaluation: card.evaluation, toolVersion: toolVersion).utf8)
                .write(to: tmp.appendingPathComponent(cardFile))
            try verify(tmp, expectedOverrides: model.senseOverrides.count, isBackpack: isBackpack, code: code)
        }
    }

    // MARK: - config.json

    /// The base config's members in their order, values as read; `auto_map` and `model_type`
    /// replaced (Backpack only), the edit's key replaced or appended.
    static func configText(base: [(String, JSONValue)], edit: JSONValue, isBackpack: Bool) -> String {
        var members = base.filter { $0.0 != editKey }
        func set(_ key: String, _ value: JSONValue) {
            if let i = members.firstIndex(where: { $0.0 == key }) { members[i].1 = value } else { members.append((key, value)) }
        }
        if isBackpack {
            set("auto_map", .object(autoMap.map { ($0.0, .string($0.1)) }))
            set("model_type", .string(modelType))
        }
        members.append((editKey, edit))
        return render(.object(members)) + "\n"
    }

    static func editEntry(base: [(String, JSONValue)], overridesSHA: String?, toolVersion: String, isBackpack: Bool) -> JSONValue {
        func old(_ key: String) -> JSONValue { base.last(where: { $0.0 == key })?.1 ?? .null }
        var record = BackpackEditRecord(tool: "backpack-edit", toolVersion: toolVersion, manifest: manifestFile)
        if let sha = overridesSHA { record.senseOverrides = ModelFolder.senseOverridesFile; record.senseOverridesSHA256 = sha }
        if isBackpack { record.baseAutoMap = old("auto_map"); record.baseModelType = old("model_type") }
        // An edited base (edits applied on top of edits): its own record stays, nested.
        record.baseBackpackEdit = base.last(where: { $0.0 == editKey })?.1
        return record.jsonValue
    }

    static func readJSONObject(_ url: URL) throws -> [(String, JSONValue)] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelError(file: url.path, reason: "cannot read (\(error.localizedDescription))")
        }
        return try ModelFolder.members(data, file: url.path)
    }

    /// Pretty JSON in Hugging Face's layout (2-space indent). Numbers print in the shortest form
    /// that reads back to the same value (Swift's and Python's float printing agree on it).
    static func render(_ value: JSONValue, indent: String = "") -> String {
        let inner = indent + "  "
        switch value {
        case .object(let members):
            if members.isEmpty { return "{}" }
            return "{\n" + members.map { inner + jsonQuote($0.0) + ": " + render($0.1, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "}"
        case .array(let items):
            if items.isEmpty { return "[]" }
            return "[\n" + items.map { inner + render($0, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        case .string(let s): return jsonQuote(s)
        case .integer(let i): return String(i)
        case .double(let d): return d.isFinite ? "\(d)" : "null"
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        }
    }

    // MARK: - files

    static func copyTokenizer(base: ModelDirectory, source: URL?, to tmp: URL) throws {
        // the tokenizer: from --tokenizer when given (a directory or a file plus its merges), else the base directory's
        var sources: [URL] = ModelFolder.tokenizerFiles.map { base.url.appendingPathComponent($0) }
        if let t = source {
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: t.path, isDirectory: &isDir)
            let dir = isDir.boolValue ? t : t.deletingLastPathComponent()
            sources = isDir.boolValue ? ModelFolder.tokenizerFiles.map { dir.appendingPathComponent($0) }
                : [t] + ModelFolder.vocabularyMergesFiles.map { dir.appendingPathComponent($0.merges) }
        }
        for src in sources where FileManager.default.fileExists(atPath: src.path) {
            let dst = tmp.appendingPathComponent(src.lastPathComponent)
            // The file, not a link to it: Hugging Face cache snapshots are relative links into blobs/.
            if !FileManager.default.fileExists(atPath: dst.path) { try FileManager.default.copyItem(at: src.resolvingSymlinksInPath(), to: dst) }
        }
    }

    /// An edit file named by its directory's name and its own ("Edits/remove-gender-sense.yaml"):
    /// enough to recognise it, with no absolute path (the SHA-256 identifies it exactly).
    public static func relativeName(_ path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let parent = url.deletingLastPathComponent().lastPathComponent
        return parent.isEmpty || parent == "/" ? url.lastPathComponent : parent + "/" + url.lastPathComponent
    }

    /// `org/name` from a Hugging Face cache path (`.../models--org--name/snapshots/<rev>`).
    static func inferredModelID(_ url: URL) -> String? {
        for component in url.resolvingSymlinksInPath().pathComponents.reversed() where component.hasPrefix("models--") {
            let id = component.dropFirst("models--".count).replacingOccurrences(of: "--", with: "/")
            return id.isEmpty ? nil : id
        }
        return nil
    }

    // MARK: - edit-manifest.json

    static func manifestObject(_ outcome: EditOutcome, files: [EditFile], base: ModelDirectory, baseModelID: String?,
                               toolVersion: String, overridesSHA: String?) throws -> [String: Any] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        var interventions: [Any] = []
        for record in outcome.records {
            guard var object = try JSONSerialization.jsonObject(with: encoder.encode(record)) as? [String: Any] else {
                throw ModelError(file: manifestFile, reason: "an intervention record did not encode as an object")
            }
            if let file = object["file"] as? String { object["file"] = relativeName(file) }
            interventions.append(object)
        }
        var weights: [[String: String]] = []
        for url in base.weightFiles { weights.append(["file": url.lastPathComponent, "sha256": try FileDigest.sha256(url)]) }
        return [
            "tool": "backpack-edit",
            "tool_version": toolVersion,
            "created_utc": ISO8601DateFormatter().string(from: Date()),
            "base_model": [
                "directory": base.url.lastPathComponent,
                "model_id": baseModelID.map { $0 as Any } ?? NSNull(),
                "config_sha256": try FileDigest.sha256(base.folder.configURL),
                "weights": weights,
            ] as [String: Any],
            "edits": files.map { ["file": relativeName($0.url.path), "sha256": $0.sha256, "text": $0.text] },
            "interventions": interventions,
            "overridden_tokens": outcome.model.senseOverrides.keys.sorted(),
            "sense_overrides": overridesSHA.map { ["file": ModelFolder.senseOverridesFile, "sha256": $0] as Any } ?? NSNull(),
            "model_card": cardFile,
        ]
    }

    // MARK: - README.md (model card)

    /// Depends only on the inputs (no output name, no time), so a rewrite gives the same bytes.
    static func cardText(_ outcome: EditOutcome, files: [EditFile], base: ModelDirectory, baseModelID: String?,
                         license: [String: String], overridesSHA: String?, isBackpack: Bool, evaluation: Evaluation?,
                         toolVersion: String) -> String {
        // Front matter values as JSON strings: valid YAML double-quoted scalars for any text.
        var front = ["---"]
        if let id = baseModelID { front.append("base_model: \(jsonQuote(id))") }
        for key in ["license", "license_name", "license_link"] { if let v = license[key] { front.append("\(key): \(jsonQuote(v))") } }
        front.append("library_name: transformers")
        front.append("tags:")
        front += cardTags.map { "- \($0)" }
        front.append("---")

        let baseName = baseModelID.map { "`\($0)`" } ?? "the model in directory `\(base.url.lastPathComponent)`"
        var body = ["", "# \(baseModelID ?? base.url.lastPathComponent), edited with backpack-edit", "",
                    "An edited copy of \(baseName), written by backpack-edit \(toolVersion) (`backpack edit`).", ""]
        body += ["## Loading", ""]
        if isBackpack {
            body += ["```python", "from transformers import AutoModelForCausalLM",
                     "model = AutoModelForCausalLM.from_pretrained(\"PATH_OR_HUB_ID\", trust_remote_code=True)", "```", "",
                     "`trust_remote_code=True` runs `modeling_backpack_gpt2.py` from this folder (written for backpack-edit), which computes the Backpack with eager attention (the inverse-layer attention scaling that SDPA would drop) and applies the word-level edit from `\(ModelFolder.senseOverridesFile)`. `model_type` is `\(modelType)`, so transformers refuses to load this folder without it rather than build a plain GPT-2. Instantiating another class by name (`GPT2LMHeadModel`, the published Backpack code) would drop the edit: don't.", ""]
        } else {
            body += ["A plain GPT-2: the edit is folded into `model.safetensors`, so `AutoModelForCausalLM.from_pretrained(\"PATH_OR_HUB_ID\")` loads it with the edit.", ""]
        }
        body += ["## What the edit changes", ""]
        if let sha = overridesSHA {
            body.append("- Word-level edits: `\(ModelFolder.senseOverridesFile)` (SHA-256 `\(sha)`), the k sense vectors of \(outcome.model.senseOverrides.count) token id(s) replaced: \(outcome.model.senseOverrides.keys.sorted().map(String.init).joined(separator: ", ")).")
        }
        let folded = outcome.records.filter { $0.scope != .words }
        if !folded.isEmpty { body.append("- \(folded.count) vocabulary-wide / embedding intervention(s) folded into `model.safetensors`.") }
        body += ["- Provenance (base weights' SHA-256, every intervention's record): `\(manifestFile)`.", ""]

        body += ["## Edit files", ""]
        for f in files {
            let fence = String(repeating: "`", count: max(3, longestBacktickRun(f.text) + 1))
            body += ["### `\(relativeName(f.url.path))`", "", "SHA-256 `\(f.sha256)`", "", fence + "yaml", f.text.hasSuffix("\n") ? String(f.text.dropLast()) : f.text, fence, ""]
        }
        body += ["## Interventions", "", "| file | # | name | operation | scope | senses | tokens | result |", "|---|---|---|---|---|---|---|---|"]
        for r in outcome.records {
            body.append("| \(cell(relativeName(r.file))) | \(r.index) | \(cell(r.name ?? "")) | \(cell(r.operation)) | \(cell(r.scope.rawValue)) | \(r.senses.map(String.init).joined(separator: ", ")) | \(r.tokens.count) | \(cell(r.summary)) |")
        }
        body.append("")
        let fitted = outcome.records.flatMap { r in r.fitted.map { (r, $0) } }
        if !fitted.isEmpty {
            body += ["## Fitted scales", "", "| file | # | word | token | scale | bias before | bias after |", "|---|---|---|---|---|---|---|"]
            for (r, f) in fitted {
                body.append("| \(cell(relativeName(r.file))) | \(r.index) | \(cell(f.word)) | \(f.token) | \(String(format: "%.4f", f.scale)) | \(String(format: "%.4f", f.biasBefore)) | \(String(format: "%.4f", f.biasAfter)) |")
            }
            body.append("")
        }
        if let e = evaluation {
            body += ["## Evaluation", "", "Run `\(e.runID)` (the latest) of `\(e.file)`, as `backpack report` prints it:", "", "```text", e.table, "```", ""]
        }
        return (front + body).joined(separator: "\n")
    }

    static func cell(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    static func longestBacktickRun(_ s: String) -> Int {
        var best = 0, run = 0
        for c in s { if c == "`" { run += 1; best = max(best, run) } else { run = 0 } }
        return best
    }

    // MARK: - write-time check

    /// Refuses a finished folder that a loader could read while dropping the edit (see the type's
    /// documentation). Runs on the temporary folder, before it is renamed into place.
    static func verify(_ dir: URL, expectedOverrides: Int, isBackpack: Bool, code: [(String, Data)]) throws {
        let configURL = dir.appendingPathComponent(ModelFolder.configFile)
        func fail(_ reason: String) -> ModelError { ModelError(file: configURL.path, reason: "write-time check: \(reason)") }
        let config = JSONValue.object(try readJSONObject(configURL))
        if isBackpack {
            guard case .string(modelType)? = config["model_type"] else { throw fail("model_type must be \"\(modelType)\"") }
            for (auto, target) in autoMap {
                guard case .string(target)? = config["auto_map"]?[auto] else { throw fail("auto_map.\(auto) must be \"\(target)\"") }
                let file = String(target.split(separator: ".")[0]) + ".py"
                guard let shipped = code.first(where: { $0.0 == file })?.1,
                      (try? Data(contentsOf: dir.appendingPathComponent(file))) == shipped else {
                    throw fail("auto_map.\(auto) names \(file), which must be the shipped modeling code")
                }
            }
        }
        let overridesURL = dir.appendingPathComponent(ModelFolder.senseOverridesFile)
        let declared = config[editKey]?[BackpackEditRecord.senseOverridesKey], declaredSHA = config[editKey]?[BackpackEditRecord.senseOverridesSHA256Key]
        if expectedOverrides > 0 {
            guard case .string(ModelFolder.senseOverridesFile)? = declared else { throw fail("\(editKey).sense_overrides must name \(ModelFolder.senseOverridesFile)") }
            guard FileManager.default.fileExists(atPath: overridesURL.path) else { throw fail("\(ModelFolder.senseOverridesFile) is declared but missing") }
            guard case .string(let sha)? = declaredSHA, sha == (try FileDigest.sha256(overridesURL)) else {
                throw fail("\(editKey).sense_overrides_sha256 must be the SHA-256 of \(ModelFolder.senseOverridesFile)")
            }
        } else if declared != nil || FileManager.default.fileExists(atPath: overridesURL.path) {
            throw fail("no word-level edit, yet sense overrides are declared or present")
        }
        // The toolkit's own loader must see the same edit.
        let reread = try ModelDirectory(dir)
        guard try reread.senseOverrides().count == expectedOverrides else {
            throw fail("the written folder reads back with a different number of sense overrides")
        }
    }
}

/// The modeling code shipped in every edited Backpack folder (Sources/BackpackEditing/HuggingFace,
/// a SwiftPM resource of this module).
public enum HuggingFaceCode {
    public static let fileNames = ModelFolder.modelingFiles
    static let bundleName = "backpack-edit_BackpackEditing.resources"

    /// (file name, contents) of the shipped modeling files.
    public static func files() throws -> [(String, Data)] {
        // The bundle is found by hand (BackpackIO.ResourceBundle): Bundle.module would stop the program.
        guard let bundle = ResourceBundle.locate(bundleName, holding: fileNames.map { "HuggingFace/" + $0 }) else {
            let beside = ResourceBundle.candidates(bundleName)[0]
            throw ModelError(file: beside.path, reason: "missing: the resource bundle with the Hugging Face modeling code (\(fileNames.joined(separator: ", "))) must stay beside the backpack binary")
        }
        return try fileNames.map { name in
            let url = bundle.appendingPathComponent("HuggingFace/" + name)
            do { return (name, try Data(contentsOf: url)) } catch {
                throw ModelError(file: url.path, reason: "cannot read (\(error.localizedDescription))")
            }
        }
    }
}
