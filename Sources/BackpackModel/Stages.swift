import BackpackModelFolder
import Foundation

extension LanguageModel {
    /// The steps of `forward(batch:)` one by one, each on inputs computed once beforehand, for
    /// timing where a forward pass spends its time (`backpack bench`). Names as the PyTorch side
    /// of the benchmark (Tools/bench/torch_bench.py): sense_network (C of the distinct ids, cache
    /// emptied first), trunk (hc), sense_weights (alpha), sense_sum (o), output (o E^T, all rows).
    public func stages(_ batch: [[Int]]) throws -> [(name: String, run: () -> Void)] {
        guard isBackpack else { throw ModelError(file: "bench", reason: "the step breakdown is for a Backpack model") }
        for (i, ids) in batch.enumerated() { try validate(ids, source: "input sequence \(i)") }
        let hc = trunk(batch)
        let context = Contextualization(batch: batch, perSequence: perSequence(hc: hc, batch), source: self)
        let ids = batch.flatMap { $0 }
        let table = senseVectors(ids)
        let sums = batch.enumerated().map { s, seq in senseSum(seq, alpha: context.perSequence[s], table: table).o }
        let all = batch.map { Array(0..<$0.count) }
        return [
            ("sense_network", { self.senseCache.removeAll(); _ = self.senseVectors(ids) }),
            ("trunk", { _ = self.trunk(batch) }),
            ("sense_weights", { _ = self.perSequence(hc: hc, batch) }),
            ("sense_sum", { for (s, seq) in batch.enumerated() { _ = self.senseSum(seq, alpha: context.perSequence[s], table: table) } }),
            ("output", { _ = self.unembed(Array(zip(sums, all))) }),
        ]
    }
}
