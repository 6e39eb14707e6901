import BackpackEditing
import BackpackJSON
import BackpackModelFolder
import Foundation
import Testing
import TestSupport

/// The model-folder contract is written once in Swift (ModelFolder) and once in the Python
/// modeling code shipped in every edited folder; the two must agree.
@Suite struct ModelFolderTests {
    /// `NAME = "value"` lines of a Python file.
    func constants(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            let parts = t.components(separatedBy: " = ")
            guard parts.count == 2, parts[1].hasPrefix("\""), parts[1].hasSuffix("\""), parts[1].count >= 2 else { continue }
            out[parts[0]] = String(parts[1].dropFirst().dropLast())
        }
        return out
    }

    @Test func pythonModelingCodeSpellsTheSwiftConstants() throws {
        let files = Dictionary(uniqueKeysWithValues: try HuggingFaceCode.files().map { ($0.0, String(decoding: $0.1, as: UTF8.self)) })
        #expect(files.keys.sorted() == ModelFolder.modelingFiles.sorted())
        let modeling = try #require(files["modeling_backpack_gpt2.py"])
        let configuration = try #require(files["configuration_backpack_gpt2.py"])
        let m = constants(modeling), c = constants(configuration)
        #expect(m["OVERRIDES_FILE"] == ModelFolder.senseOverridesFile)
        #expect(m["EDIT_KEY"] == ModelFolder.editKey)
        #expect(m["OVERRIDES_KEY"] == BackpackEditRecord.senseOverridesKey)
        #expect(m["OVERRIDES_SHA_KEY"] == BackpackEditRecord.senseOverridesSHA256Key)
        #expect(c["model_type"] == ModelFolder.editedModelType)
        // auto_map names a class defined in the shipped file of that module.
        for (_, target) in ModelFolder.autoMap {
            let parts = target.split(separator: ".").map(String.init)
            let text = try #require(files[parts[0] + ".py"], "auto_map names \(parts[0]).py, which is not shipped")
            #expect(text.contains("class \(parts[1])("), "\(parts[0]).py defines no class \(parts[1])")
        }
    }

    @Test func configIsReadOnceInOrderAndTyped() throws {
        let folder = try ModelFolder(TestPaths.tinyModel)
        let data = try Data(contentsOf: TestPaths.tinyModel.appendingPathComponent(ModelFolder.configFile))
        let text = String(decoding: data, as: UTF8.self)
        // Members in file order: each key's first occurrence in the text increases.
        let offsets = folder.configMembers.map { text.range(of: "\"\($0.0)\"")?.lowerBound }
        #expect(offsets.allSatisfy { $0 != nil })
        #expect(zip(offsets, offsets.dropFirst()).allSatisfy { $0! < $1! })
        #expect(folder.config == (try BackpackConfig.load(folder.configURL)))
        #expect(folder.edit == nil)
    }

    @Test func editRecordRoundTrips() throws {
        let record = BackpackEditRecord(senseOverrides: ModelFolder.senseOverridesFile, senseOverridesSHA256: String(repeating: "ab", count: 32),
                                        tool: "backpack-edit", toolVersion: "1.2.3", manifest: ModelFolder.manifestFile,
                                        baseAutoMap: .null, baseModelType: .string("gpt2"))
        let dir = try TestPaths.temporaryDirectory("folder")
        defer { try? FileManager.default.removeItem(at: dir) }
        var members = try ModelFolder(TestPaths.tinyModel).configMembers
        members.append((ModelFolder.editKey, record.jsonValue))
        let config = JSONValue.object(members)
        let encoded = try JSONEncoder().encode(config)
        try encoded.write(to: dir.appendingPathComponent(ModelFolder.configFile))
        let read = try #require(try ModelFolder(dir).edit)
        #expect(read.senseOverrides == record.senseOverrides)
        #expect(read.senseOverridesSHA256 == record.senseOverridesSHA256)
        #expect(read.toolVersion == "1.2.3")
        #expect(read.manifest == ModelFolder.manifestFile)
        guard case .string("gpt2")? = read.baseModelType else { Issue.record("base_model_type not read back"); return }
        // A wrongly typed field is an error naming the key.
        var bad = try ModelFolder(TestPaths.tinyModel).configMembers
        bad.append((ModelFolder.editKey, .object([("sense_overrides", .integer(3))])))
        try JSONEncoder().encode(JSONValue.object(bad)).write(to: dir.appendingPathComponent(ModelFolder.configFile))
        do {
            _ = try ModelFolder(dir)
            Issue.record("a non-string sense_overrides was accepted")
        } catch let e as ModelError {
            #expect(e.description.contains("backpack_edit"))
        }
    }

    @Test func tokenizerFileNamesAreTheContracts() {
        #expect(ModelFolder.tokenizerFiles.first == ModelFolder.tokenizerJSONFile)
        #expect(Set(ModelFolder.tokenizerFiles).count == ModelFolder.tokenizerFiles.count)
        for pair in ModelFolder.vocabularyMergesFiles {
            #expect(ModelFolder.tokenizerFiles.contains(pair.vocabulary) && ModelFolder.tokenizerFiles.contains(pair.merges))
        }
    }
}
