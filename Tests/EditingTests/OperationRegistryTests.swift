import BackpackEditing
import BackpackModel
import BackpackYAML
import Foundation
import Testing
import TestSupport

/// An operation defined outside BackpackEditing, as a package that depends on this one defines
/// it (docs/EDITS.md, "Adding an operation"): `negate: true` multiplies the selected senses by -1.
struct Negate: EditOperation, ResolvedEditOperation {
    static let name = "negate"
    static let keys: [String] = []
    static let scopes: Set<EditScope> = [.words, .vocabulary]

    init(yaml node: YAMLNode, reader: YAMLReader) throws {
        guard try reader.bool(node, "negate") else {
            throw EditError(reader.place(node), "negate: expected `negate: true` (false edits nothing: leave the intervention out)")
        }
    }

    // Names no words or files, so it is its own resolution; C' = -C is linear, so it also folds
    // into the vocabulary.
    func effect(_ context: OperationApplication) throws -> OperationEffect { OperationEffect(.uniform(.scale(-1))) }
}

/// Operations whose names are taken: an intervention key, and a built-in operation's.
struct NamedWords: EditOperation, ResolvedEditOperation {
    static let name = "words"
    static let keys: [String] = []
    static let scopes: Set<EditScope> = [.words]
    init(yaml node: YAMLNode, reader: YAMLReader) throws {}
    func effect(_ context: OperationApplication) throws -> OperationEffect { OperationEffect(.uniform(.scale(1))) }
}

struct NamedScale: EditOperation, ResolvedEditOperation {
    static let name = "scale"
    static let keys: [String] = []
    static let scopes: Set<EditScope> = [.words]
    init(yaml node: YAMLNode, reader: YAMLReader) throws {}
    func effect(_ context: OperationApplication) throws -> OperationEffect { OperationEffect(.uniform(.scale(1))) }
}

@Suite struct OperationRegistryTests {
    let head = "schema: backpack-edit/1\ninterventions:\n"

    func error(_ text: String) -> String {
        do { _ = try parse(text); Issue.record("accepted:\n\(text)"); return "" } catch { return "\(error)" }
    }

    @Test func aRegisteredOperationIsReadAndApplied() throws {
        try EditOperations.register(Negate.self)
        try EditOperations.register(Negate.self)   // the same type again: nothing changes
        #expect(EditOperations.all.filter { $0.name == "negate" }.count == 1)
        #expect(EditOperations.named("negate") != nil)

        let model = try Fixture.model()
        let file = try parse(head + "  - tokens: [73, 259]\n    senses: [1, 3]\n    negate: true\n")
        #expect(file.interventions[0].operation is Negate)
        let outcome = try Editor.apply([file], to: model, tokenizer: nil)
        #expect(outcome.records[0].operation == "negate" && outcome.records[0].senses == [1, 3])
        #expect(outcome.records[0].summary == "negate of sense(s) [1, 3] for 2 token(s)")
        let d = model.config.nEmbd, k = model.config.senses
        let before = model.senseVectors([73, 259, 421]), after = outcome.model.senseVectors([73, 259, 421])
        for id in [73, 259, 421] {
            let b = try #require(before[id]), a = try #require(after[id])
            for l in 0..<k {
                let negated = id != 421 && [1, 3].contains(l)
                #expect(zip(a[(l * d)..<((l + 1) * d)], b[(l * d)..<((l + 1) * d)]).allSatisfy { $0 == (negated ? -$1 : $1) },
                        "token \(id) sense \(l)")
            }
        }

        // At vocabulary scope it folds into the sense network: every token's sense 2 is negated.
        let folded = try Editor.apply([try parse(head + "  - scope: vocabulary\n    senses: [2]\n    negate: true\n")], to: model, tokenizer: nil)
        #expect(folded.model.senseOverrides.isEmpty)
        let all = folded.model.senseVectors([5, 421])
        for id in [5, 421] {
            let b = try #require(model.senseVectors([id])[id]), a = try #require(all[id])
            var worst: Float = 0
            for e in 0..<d { worst = max(worst, abs(a[2 * d + e] + b[2 * d + e])) }
            #expect(worst <= 1e-6, "token \(id): max |C'(x)_2 + C(x)_2| = \(worst)")
            #expect(a[0..<d] == b[0..<d])
        }

        // What it does not support is refused with its place, naming the operations that can.
        let e = error(head + "  - tokens: [73]\n    target: input_embedding\n    negate: true\n")
        #expect(e.contains("inline.yaml:3:5: target input_embedding: expected scale, project_out or add, found negate"), "\(e)")
        let f = error(head + "  - tokens: [73]\n    senses: [1]\n    negate: false\n")
        #expect(f.contains("inline.yaml:5:13: negate: expected `negate: true`"), "\(f)")
        // It declares no sweepable parameter: a sweep in it is refused, naming the places that allow one.
        let g = error(head + "  - tokens: [73]\n    senses: [1]\n    negate: {sweep: [true, false]}\n")
        #expect(g.contains("inline.yaml:5:13") && g.contains("not supported here") && g.contains("add `amount`"), "\(g)")
    }

    @Test func anUnknownOperationIsAnErrorListingTheRegisteredOnes() throws {
        try EditOperations.register(Negate.self)
        let e = error(head + "  - tokens: [1]\n    senses: [0]\n    negat: true\n")
        #expect(e.contains("inline.yaml:5:5: intervention: unknown key 'negat'; expected one of name, words, tokens, scope, variants, pieces, senses, target, scale, project_out, replace_association, add, fit_scale, erase, negate"), "\(e)")
        let none = error(head + "  - tokens: [1]\n    senses: [0]\n")
        #expect(none.contains("inline.yaml:3:5: intervention: expected exactly one operation (scale, project_out, replace_association, add, fit_scale, erase, negate), found none"), "\(none)")
    }

    @Test func takenNamesAreRefused() {
        #expect { try EditOperations.register(NamedWords.self) } throws: { "\($0)".contains("`words` is an intervention key") }
        #expect { try EditOperations.register(NamedScale.self) } throws: { "\($0)".contains("the name is taken by Scale") }
        #expect(!EditOperations.all.contains { $0 == NamedWords.self || $0 == NamedScale.self })
    }

    /// Every built-in operation passes the checks `register` makes of others' operations.
    @Test func builtInOperationsAreWellFormed() {
        let names = EditOperations.builtIn.map { $0.name }
        #expect(names == ["scale", "project_out", "replace_association", "add", "fit_scale", "erase"])
        #expect(Set(names).count == names.count && Set(names).isDisjoint(with: Intervention.keys))
        for op in EditOperations.builtIn {
            #expect(op.sweepable.allSatisfy { $0 == op.name || op.keys.contains($0) }, "\(op.name)")
            #expect(!op.scopes.isEmpty && !op.keys.contains(op.name), "\(op.name)")
        }
        #expect(EditFile.sweepPlaces == "an intervention's `scale`, `senses` (explicit sense sets), localized `top`, project_out `strength` and add `amount`")
    }
}
