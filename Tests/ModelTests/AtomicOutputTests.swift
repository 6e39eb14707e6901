import BackpackModel
import BackpackIO
import Foundation
import Testing
import TestSupport

@Suite struct AtomicOutputTests {
    @Test func replacesAnExistingDirectoryWholeAndLeavesNoTemporaries() throws {
        let parent = try TestPaths.temporaryDirectory("atomic")
        defer { try? FileManager.default.removeItem(at: parent) }
        let target = parent.appendingPathComponent("out")
        try AtomicOutput.directory(target) { try Data("old".utf8).write(to: $0.appendingPathComponent("a.txt")) }
        try AtomicOutput.directory(target) { try Data("new".utf8).write(to: $0.appendingPathComponent("b.txt")) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: target.path) == ["b.txt"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent.path) == ["out"])
    }

    @Test func aFailedFillLeavesThePreviousVersion() throws {
        struct Stop: Error {}
        let parent = try TestPaths.temporaryDirectory("atomic-fail")
        defer { try? FileManager.default.removeItem(at: parent) }
        let target = parent.appendingPathComponent("out")
        try AtomicOutput.directory(target) { try Data("old".utf8).write(to: $0.appendingPathComponent("a.txt")) }
        #expect(throws: Stop.self) {
            try AtomicOutput.directory(target) { dir in
                try Data("half".utf8).write(to: dir.appendingPathComponent("a.txt"))
                throw Stop()
            }
        }
        #expect(try String(contentsOf: target.appendingPathComponent("a.txt"), encoding: .utf8) == "old")
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent.path) == ["out"])
    }
}

@Suite struct OutputIsNotInputTests {
    /// An output inside an input folder reached through a symbolic link is still refused, even
    /// though the output does not exist yet.
    @Test func refusesAnOutputUnderALinkedInput() throws {
        let parent = try TestPaths.temporaryDirectory("not-input")
        defer { try? FileManager.default.removeItem(at: parent) }
        let input = parent.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        let link = parent.appendingPathComponent("link")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: input)
        #expect(throws: OutputError.self) {
            try AtomicOutput.checkNotInput(link.appendingPathComponent("edited/deeper"), inputs: [input])
        }
        #expect(throws: OutputError.self) {
            try AtomicOutput.checkNotInput(input.appendingPathComponent("edited"), inputs: [link])
        }
        try AtomicOutput.checkNotInput(parent.appendingPathComponent("elsewhere"), inputs: [link])
    }
}
