// swift-tools-version:6.0
import PackageDescription

// The folders show the pipeline: checkpoint I/O -> tokenizer -> model -> editing -> evaluation
// -> results storage, with a thin command line on top.
let package = Package(
    name: "backpack-edit",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "backpack", targets: ["BackpackCLI"]),
        .library(name: "BackpackModel", targets: ["BackpackModel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
    ],
    targets: [
        // System libraries from Debian: libopenblas-dev, libhdf5-dev.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5"),

        // One JSON reader (order-keeping, depth-bounded), strict for safetensors, lenient for tokenizers.
        .target(name: "BackpackJSON"),
        .target(name: "BackpackCheckpoint",
                dependencies: ["BackpackJSON", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "BackpackTokenizer", dependencies: ["BackpackJSON"]),
        .target(name: "BackpackModel", dependencies: ["BackpackCheckpoint", "BackpackTokenizer", "CBLAS"],
                swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
        .target(name: "BackpackEditing",
                dependencies: ["BackpackModel", "BackpackTokenizer", "BackpackCheckpoint",
                               .product(name: "Yams", package: "Yams")]),
        .target(name: "BackpackEvaluation",
                dependencies: ["BackpackModel", "BackpackTokenizer", "BackpackEditing",
                               .product(name: "Yams", package: "Yams")]),
        .target(name: "BackpackResults", dependencies: ["CHDF5"], exclude: ["LAYOUT.md"]),
        // Hugging Face Hub: the shared model cache and the project's one HTTP download client.
        .target(name: "BackpackHub", dependencies: ["BackpackCheckpoint", "BackpackJSON"]),
        .executableTarget(name: "BackpackCLI",
                          dependencies: ["BackpackCheckpoint", "BackpackTokenizer", "BackpackModel",
                                         "BackpackEditing", "BackpackEvaluation", "BackpackResults", "BackpackHub",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        // Locates ../shared and the built `backpack` binary for the test targets.
        .target(name: "TestSupport", dependencies: ["BackpackCheckpoint"], path: "Tests/TestSupport"),
        .testTarget(name: "CheckpointTests", dependencies: ["BackpackCheckpoint", "TestSupport"]),
        .testTarget(name: "TokenizerTests", dependencies: ["BackpackTokenizer", "BackpackJSON", "TestSupport"],
                    resources: [.copy("Goldens")]),
        .testTarget(name: "ModelTests", dependencies: ["BackpackModel", "BackpackCheckpoint", "TestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "EditingTests", dependencies: ["BackpackEditing", "BackpackModel", "TestSupport"],
                    exclude: ["Edits"]),
        .testTarget(name: "EvaluationTests", dependencies: ["BackpackEvaluation", "BackpackModel", "TestSupport"]),
        .testTarget(name: "ResultsTests", dependencies: ["BackpackResults", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["BackpackCheckpoint", "TestSupport"]),
        .testTarget(name: "HubTests", dependencies: ["BackpackHub", "BackpackModel", "TestSupport"],
                    exclude: ["hub_server.py"]),

        // Hostile inputs, size limits, kill-during-write (docs/HARDENING.md).
        .testTarget(name: "HardeningTests",
                    dependencies: ["BackpackCheckpoint", "BackpackTokenizer", "BackpackModel", "BackpackEditing", "TestSupport"],
                    exclude: ["Corpus"]),
        // libFuzzer harnesses: `make fuzz` builds them with -sanitize=fuzzer,address -D FUZZING;
        // a plain build makes replay tools (`FuzzX FILE...` runs each file through the harness).
        .target(name: "FuzzSupport", path: "Fuzz/Sources/FuzzSupport"),
        .executableTarget(name: "FuzzSafetensors", dependencies: ["BackpackCheckpoint", "FuzzSupport"],
                          path: "Fuzz/Sources/FuzzSafetensors", swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzTorch", dependencies: ["BackpackCheckpoint", "FuzzSupport"],
                          path: "Fuzz/Sources/FuzzTorch", swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzConfig", dependencies: ["BackpackModel", "FuzzSupport"],
                          path: "Fuzz/Sources/FuzzConfig", swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzTokenizerFiles", dependencies: ["BackpackTokenizer", "FuzzSupport"],
                          path: "Fuzz/Sources/FuzzTokenizerFiles", swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzEncode", dependencies: ["BackpackTokenizer", "FuzzSupport"],
                          path: "Fuzz/Sources/FuzzEncode", swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzEditFile", dependencies: ["BackpackEditing", "FuzzSupport"],
                          path: "Fuzz/Sources/FuzzEditFile", swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ]
)
