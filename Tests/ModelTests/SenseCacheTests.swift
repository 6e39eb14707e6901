import Foundation
import TestSupport
import Testing
@testable import BackpackModel

/// The sense cache's bound: past its capacity the least recently used ids go, ties by id (a
/// dictionary's order differs between processes, and which ids are recomputed decides rounding).
@Suite struct SenseCacheTests {
    static func vector(_ x: Float) -> [Float] { [x, x] }

    @Test func evictsTheLeastRecentlyUsedTiesById() {
        let cache = SenseCache(capacity: 3)
        cache.store([5: Self.vector(5), 2: Self.vector(2)])         // used together: a tie
        cache.store([9: Self.vector(9)])
        _ = cache.lookup([5])                                        // 5 used again: 2 is now the oldest
        cache.store([7: Self.vector(7)])
        #expect(cache.count == 3)
        #expect(Set(cache.lookup([2, 5, 7, 9]).keys) == [5, 7, 9])
        // 5, 7 and 9 were all just looked up together (a tie): the smallest id goes first
        cache.store([1: Self.vector(1)])
        #expect(Set(cache.lookup([1, 5, 7, 9]).keys) == [1, 7, 9])
        #expect(cache.lookup([7])[7] == Self.vector(7))
    }

    @Test func keepsABatchLargerThanItsCapacity() {
        let cache = SenseCache(capacity: 2)
        cache.store([1: Self.vector(1)])
        cache.store([2: Self.vector(2), 3: Self.vector(3), 4: Self.vector(4)])
        // the ids stored now are about to be used: all kept, the older one evicted
        #expect(Set(cache.lookup([1, 2, 3, 4]).keys) == [2, 3, 4])
    }

    @Test func aModelsVectorsDoNotDependOnEviction() throws {
        // A model whose cache holds 1 id still gives every id's vectors (recomputed when evicted).
        let roomy = try ModelDirectory(TestPaths.tinyModel).load()
        let tight = LanguageModel(parameters: roomy.parameters, senseCache: SenseCache(capacity: 1))
        let ids = [3, 17, 42, 3, 99, 17]
        let a = roomy.senseVectors(ids), b = tight.senseVectors(ids)
        #expect(a.keys.sorted() == [3, 17, 42, 99])
        for id in a.keys { #expect(try #require(b[id]).elementsEqual(try #require(a[id])) { abs($0 - $1) <= 1e-5 * max(1, abs($1)) }) }
        #expect(tight.senseCache.count <= 4)
    }
}
