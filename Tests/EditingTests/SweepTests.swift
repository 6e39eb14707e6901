import BackpackEditing
import BackpackYAML
import Foundation
import Testing
import TestSupport

/// `{sweep: [...]}` in place of a value: the grid points, their names and coordinates, and every
/// error with its line and column.
@Suite struct SweepTests {
    static let url = Fixture.editsDirectory.appendingPathComponent("grid.yaml")
    static func expand(_ text: String) throws -> [EditFile] { try EditFile.expand(text, url: url) }

    /// The error of expanding `text`, or a recorded issue when it was accepted.
    static func error(_ text: String) -> String {
        do { _ = try expand(text); Issue.record("accepted:\n\(text)"); return "" } catch { return "\(error)" }
    }

    static func scale(_ f: EditFile, _ i: Int = 0) -> Float? {
        (f.interventions[i].operation as? Scale)?.factor
    }

    @Test func scaleSweepGivesOnePointPerValue() throws {
        let points = try Self.expand("""
            schema: backpack-edit/1
            interventions:
              - tokens: [5, 6]
                senses: [1]
                scale: {sweep: [0, 0.25, 1.0]}
            """)
        #expect(points.count == 3)
        #expect(points.map { $0.grid } == [[GridCoordinate(axis: "scale", value: "0")], [GridCoordinate(axis: "scale", value: "0.25")],
                                           [GridCoordinate(axis: "scale", value: "1.0")]])
        #expect(points.map { Self.scale($0) } == [0, 0.25, 1])
        #expect(points.map { YAMLSweep.pointName("family", $0.grid) } == ["family[scale=0]", "family[scale=0.25]", "family[scale=1.0]"])
        // Each point has its own text (the file plus its coordinates) and SHA-256.
        #expect(Set(points.map(\.sha256)).count == 3)
        #expect(points[1].text.hasSuffix("# sweep point: scale=0.25\n"))
        #expect(points[1].text.hasPrefix("schema: backpack-edit/1\n"))
    }

    @Test func fileWithoutSweepsIsOnePointWithoutCoordinates() throws {
        let text = "schema: backpack-edit/1\ninterventions:\n  - tokens: [5]\n    senses: [1]\n    scale: 0\n"
        let points = try Self.expand(text)
        #expect(points.count == 1 && points[0].grid.isEmpty && points[0].text == text)
        #expect(YAMLSweep.pointName("family", points[0].grid) == "family")
    }

    @Test func severalSweepsFormTheCartesianProduct() throws {
        let points = try Self.expand("""
            schema: backpack-edit/1
            interventions:
              - words: [a]
                senses: {localized: {pair: [he, she], top: {sweep: [1, 2, 4]}}}
                scale: {sweep: [0, 0.5]}
            """)
        #expect(points.count == 6)
        // The first sweep in the file varies slowest.
        #expect(points.map { $0.grid.map(\.description).joined(separator: ",") }
                == ["top=1,scale=0", "top=1,scale=0.5", "top=2,scale=0", "top=2,scale=0.5", "top=4,scale=0", "top=4,scale=0.5"])
        for p in points {
            guard case .localized(_, _, let top, _) = p.interventions[0].senses else { Issue.record("not localized"); continue }
            #expect("\(top)" == p.grid[0].value)
            #expect(Self.scale(p).map { "\($0)" } == (p.grid[1].value == "0" ? "0.0" : "0.5"))
        }
        #expect(YAMLSweep.pointName("remove", points[3].grid) == "remove[top=2,scale=0.5]")
    }

    @Test func strengthAmountAndSenseSets() throws {
        let points = try Self.expand("""
            schema: backpack-edit/1
            interventions:
              - name: proj
                tokens: [5]
                senses: {sweep: [[10], [10, 2], [10, 2, 3]]}
                project_out: {direction: {embedding_difference: [she, he]}, strength: {sweep: [0.5, 1]}}
              - name: push
                tokens: [6]
                senses: all
                add: {direction: {embedding_difference: [she, he]}, amount: {sweep: [-1, 2.5]}}
            """)
        #expect(points.count == 12)
        #expect(points[0].grid.map(\.axis) == ["senses", "strength", "amount"])
        #expect(Set(points.map { $0.grid[0].value }) == ["[10]", "[10,2]", "[10,2,3]"])
        let last = points[11]
        #expect(last.grid.map(\.value) == ["[10,2,3]", "1", "2.5"])
        guard case .indices(let idx) = last.interventions[0].senses else { Issue.record("not indices"); return }
        #expect(idx.map(\.0) == [10, 2, 3])
        guard let strength = (last.interventions[0].operation as? ProjectOut)?.strength,
              let amount = (last.interventions[1].operation as? Add)?.amount else { Issue.record("operations"); return }
        #expect(strength == 1 && amount == 2.5)
        // The name carries the sense set without a `/`, so it is a valid HDF5 group name.
        #expect(YAMLSweep.pointName("e", last.grid) == "e[senses=[10,2,3],strength=1,amount=2.5]")
    }

    @Test func sameKeyInTwoInterventionsIsQualified() throws {
        let points = try Self.expand("""
            schema: backpack-edit/1
            interventions:
              - name: first
                tokens: [5]
                senses: [1]
                scale: {sweep: [0, 1]}
              - tokens: [6]
                senses: [2]
                scale: {sweep: [0.5, 2]}
            """)
        #expect(points.count == 4)
        #expect(points[0].grid.map(\.axis) == ["first.scale", "intervention2.scale"])
        #expect(Self.scale(points[1], 1) == 2 && Self.scale(points[1], 0) == 0)
    }

    @Test func errorsNameTheirLineAndColumn() {
        let head = "schema: backpack-edit/1\ninterventions:\n  - tokens: [5]\n    senses: [1]\n"
        var e = Self.error(head + "    scale: {sweep: []}\n")
        #expect(e.contains("grid.yaml:5:") && e.contains("empty list"), "\(e)")
        e = Self.error(head + "    scale: {sweep: 0.5}\n")
        #expect(e.contains("grid.yaml:5:") && e.contains("expected a list of values"), "\(e)")
        e = Self.error(head + "    scale: {sweep: [0, 1], step: 2}\n")
        #expect(e.contains("grid.yaml:5:") && e.contains("unknown key 'step'"), "\(e)")
        e = Self.error(head + "    scale: {sweep: [0, 0.5, 0]}\n")
        #expect(e.contains("grid.yaml:5:29") && e.contains("appears twice"), "\(e)")
        // A value that is wrong where it is swept into: the value's own place.
        e = Self.error("schema: backpack-edit/1\ninterventions:\n  - tokens: [5]\n    senses: [1]\n"
                       + "    project_out: {direction: {embedding_difference: [she, he]}, strength: {sweep: [0.5, 2]}}\n")
        #expect(e.contains("grid.yaml:5:89") && e.contains("strength 2.0") && e.contains("[0, 1]"), "\(e)")
        // A sweep where the schema allows none.
        e = Self.error("schema: backpack-edit/1\ninterventions:\n  - tokens: {sweep: [[5], [6]]}\n    senses: [1]\n    scale: 0\n")
        #expect(e.contains("grid.yaml:3:13") && e.contains("sweep") && e.contains("not supported here") && e.contains("localized `top`"), "\(e)")
        e = Self.error("schema: backpack-edit/1\ninterventions:\n  - tokens: [5]\n    senses: [1]\n"
                       + "    project_out: {direction: {pca: {pairs: [[a, b]], k: {sweep: [1, 2]}}}}\n")
        #expect(e.contains("grid.yaml:5:") && e.contains("not supported here"), "\(e)")
        // More than 256 grid points: 7 x 7 x 7 = 343.
        let seven = "{sweep: [1, 2, 3, 4, 5, 6, 7]}"
        e = Self.error("schema: backpack-edit/1\ninterventions:\n  - words: [a]\n    senses: {localized: {pair: [he, she], top: \(seven)}}\n"
                       + "    project_out: {direction: {embedding_difference: [she, he]}, strength: {sweep: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}}\n"
                       + "  - tokens: [5]\n    senses: [1]\n    scale: \(seven)\n")
        #expect(e.contains("grid.yaml:8:12") && e.contains("more than 256") && e.contains("7 top x 7 strength x 7 scale"), "\(e)")
    }

    /// One edit is wanted (`backpack edit`): a file that sweeps over several values is refused,
    /// naming the count; a sweep over one value is that edit.
    @Test func parseRefusesAGrid() throws {
        let text = "schema: backpack-edit/1\ninterventions:\n  - tokens: [5]\n    senses: [1]\n    scale: {sweep: [0, 0.5, 1]}\n"
        #expect {
            _ = try EditFile.parse(text, url: Self.url)
        } throws: { error in
            "\(error)".contains("grid.yaml:5:12") && "\(error)".contains("expands to 3 variants") && "\(error)".contains("backpack eval")
        }
        let one = try EditFile.parse(text.replacingOccurrences(of: "[0, 0.5, 1]", with: "[0.5]"), url: Self.url)
        #expect(Self.scale(one) == 0.5 && one.grid == [GridCoordinate(axis: "scale", value: "0.5")])
    }

    /// `FILE.yaml[axis=value,...]` picks one point, named as eval names the variant.
    @Test func argumentPicksOnePoint() throws {
        let file = TestPaths.repoRoot.appendingPathComponent("Edits/sweep-seed-debias-localized.yaml").path
        #expect(EditFile.argument(file).point == nil)
        #expect(EditFile.argument(file + "[scale=0.4]").point == "scale=0.4")
        #expect(EditFile.argument(file + "[scale=0.4]").url.path == file)
        #expect(EditFile.argument("dir/x.yaml[senses=[10,2]]").point == "senses=[10,2]", "a list value keeps its brackets")
        let point = try EditFile.load(argument: file + "[scale=0.4]")
        #expect(point.grid == [GridCoordinate(axis: "scale", value: "0.4")] && Self.scale(point) == 0.4)
        #expect(try EditFile.loadGrid(argument: file).count == 6)
        #expect { _ = try EditFile.load(argument: file + "[scale=0.5]") } throws: { error in
            "\(error)".contains("no such grid point") && "\(error)".contains("[scale=0.4]")
        }
        #expect { _ = try EditFile.load(argument: file) } throws: { error in
            "\(error)".contains("expands to 6 variants") && "\(error)".contains("[scale=0]")
        }
        let plain = TestPaths.repoRoot.appendingPathComponent("Edits/remove-gender-sense.yaml").path
        #expect { _ = try EditFile.load(argument: plain + "[scale=0]") } throws: { error in "\(error)".contains("has no sweeps") }
    }

    @Test func shippedSweepsExpand() throws {
        let expected = ["sweep-remove-localized-senses": ("top", ["1", "2", "3", "4", "6", "8", "16"]),
                        "sweep-project-strength": ("strength", ["0", "0.25", "0.5", "0.75", "1"]),
                        "sweep-seed-debias-localized": ("scale", ["0", "0.2", "0.4", "0.6", "0.8", "1"])]
        for (name, (axis, values)) in expected {
            let points = try EditFile.loadGrid(TestPaths.repoRoot.appendingPathComponent("Edits/\(name).yaml"))
            #expect(points.map { $0.grid.map(\.axis) } == Array(repeating: [axis], count: values.count), "\(name)")
            #expect(points.map { $0.grid[0].value } == values, "\(name)")
        }
    }
}
