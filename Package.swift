// swift-tools-version:6.0
import PackageDescription

// The folders show the pipeline: the model-folder contract and checkpoint I/O -> tokenizer ->
// model -> prompts -> editing | evaluation -> results storage, with a thin command line on top.
let package = Package(
    name: "backpack-edit",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "backpack", targets: ["BackpackCLI"]),
        // The libraries the README shows: a package that depends on this one imports them.
        .library(name: "BackpackCheckpoint", targets: ["BackpackCheckpoint"]),
        .library(name: "BackpackTokenizer", targets: ["BackpackTokenizer"]),
        .library(name: "BackpackModel", targets: ["BackpackModel"]),
        .library(name: "BackpackEditing", targets: ["BackpackEditing"]),
        .library(name: "BackpackEvaluation", targets: ["BackpackEvaluation"]),
        .library(name: "BackpackResults", targets: ["BackpackResults"]),
        .library(name: "BackpackIO", targets: ["BackpackIO"]),
        .library(name: "BackpackYAML", targets: ["BackpackYAML"]),
        .library(name: "BackpackHub", targets: ["BackpackHub"]),
        .library(name: "BackpackModelFolder", targets: ["BackpackModelFolder"]),
        .library(name: "BackpackPrompts", targets: ["BackpackPrompts"]),
        .library(name: "BackpackWorkflows", targets: ["BackpackWorkflows"]),
        .library(name: "BackpackBench", targets: ["BackpackBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        // `backpack explore`'s HTTP server (SwiftNIO underneath); its testing module drives the API tests.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // System libraries from Debian: libopenblas-dev, libhdf5-dev.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"])]),

        // One JSON reader (order-keeping, depth-bounded), strict for safetensors, lenient for tokenizers.
        .target(name: "BackpackJSON"),
        // The one YAML layer: every YAML text (edit files, suites, sweeps, model-card front
        // matter) is composed here under size, depth and alias-expansion limits; word lists, pair lists.
        .target(name: "BackpackYAML", dependencies: ["BackpackJSON", .product(name: "Yams", package: "Yams")]),
        // Files written whole or not at all (temporary sibling + rename), output checks, SHA-256.
        .target(name: "BackpackIO", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        // The contract of a Hugging Face model folder: file names, config.json (ordered and typed),
        // the backpack_edit record, the model card.
        .target(name: "BackpackModelFolder", dependencies: ["BackpackJSON", "BackpackYAML", "BackpackIO"]),
        .target(name: "BackpackCheckpoint", dependencies: ["BackpackJSON", "BackpackModelFolder"]),
        // GPT-2's BPE files are built in (GPT2/README.md): models with GPT-2's vocabulary need no tokenizer files.
        .target(name: "BackpackTokenizer", dependencies: ["BackpackJSON", "BackpackIO", "BackpackModelFolder"],
                exclude: ["GPT2/README.md"], resources: [.copy("GPT2/encoder.json"), .copy("GPT2/vocab.bpe")]),
        .target(name: "BackpackModel", dependencies: ["BackpackModelFolder", "BackpackCheckpoint", "BackpackTokenizer", "BackpackIO", "CBLAS"]),
        // Pronoun suites (prompts with a placeholder, nouns, the compared pair): read by editing
        // (fit_scale) and by evaluation (pronoun-bias) alike.
        .target(name: "BackpackPrompts", dependencies: ["BackpackYAML", "BackpackTokenizer"]),
        // HuggingFace/: the modeling code copied into every edited model folder.
        .target(name: "BackpackEditing",
                dependencies: ["BackpackModel", "BackpackModelFolder", "BackpackTokenizer", "BackpackCheckpoint", "BackpackIO",
                               "BackpackYAML", "BackpackPrompts", "BackpackJSON", "CBLAS"],
                resources: [.copy("HuggingFace")]),
        .target(name: "BackpackEvaluation",
                dependencies: ["BackpackModel", "BackpackModelFolder", "BackpackCheckpoint", "BackpackTokenizer", "BackpackPrompts", "BackpackResults",
                               "BackpackYAML", "BackpackIO", "BackpackJSON"]),
        .target(name: "BackpackResults", dependencies: ["CHDF5", "BackpackIO"], exclude: ["LAYOUT.md"]),
        // Hugging Face Hub: the shared model cache and the project's one HTTP download client.
        .target(name: "BackpackHub", dependencies: ["BackpackModelFolder", "BackpackCheckpoint", "BackpackJSON", "BackpackIO"]),
        // What the commands do, as library calls: edit files as variants, one evaluation run, a
        // suite's data fetched from the source its file names, the paper's reproduction, what ships.
        .target(name: "BackpackWorkflows",
                dependencies: ["BackpackModel", "BackpackModelFolder", "BackpackTokenizer", "BackpackEditing", "BackpackEvaluation",
                               "BackpackResults", "BackpackIO", "BackpackYAML", "BackpackHub"]),
        // `backpack bench`: the timing protocol, the measurements and the JSON lines Tools/bench/compare.py reads.
        .target(name: "BackpackBench",
                dependencies: ["BackpackWorkflows", "BackpackModel", "BackpackModelFolder", "BackpackTokenizer", "BackpackEditing",
                               "BackpackEvaluation", "BackpackResults", "BackpackIO", "BackpackJSON", "BackpackExplorer"]),
        // `backpack explore`: the JSON API over a loaded model (Explorer*.swift), its HTTP server with
        // token, Host and Origin checks (Server/), and the page, embedded in the binary (Page/).
        .target(name: "BackpackExplorer",
                dependencies: ["BackpackWorkflows", "BackpackModel", "BackpackModelFolder", "BackpackTokenizer", "BackpackEditing",
                               "BackpackEvaluation", "BackpackResults", "BackpackIO", "BackpackYAML", "BackpackJSON",
                               .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log")],
                resources: [.embedInCode("Page/index.html"), .embedInCode("Page/explorer.js"), .embedInCode("Page/explorer.css"),
                            .embedInCode("Page/openapi.json")]),
        // The command line: flags in, one library call, output printed.
        .executableTarget(name: "BackpackCLI",
                          dependencies: ["BackpackModelFolder", "BackpackCheckpoint", "BackpackTokenizer", "BackpackModel", "BackpackIO",
                                         "BackpackYAML", "BackpackPrompts", "BackpackEditing", "BackpackEvaluation", "BackpackResults",
                                         "BackpackHub", "BackpackWorkflows", "BackpackBench", "BackpackExplorer",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        // Locates the repository's fixtures and data (Tests/Fixtures, Data/) and the built `backpack` binary.
        // Test targets that run the binary depend on BackpackCLI, so that it is built with them.
        .target(name: "TestSupport", dependencies: ["BackpackCheckpoint"], path: "Tests/TestSupport"),
        .testTarget(name: "CheckpointTests", dependencies: ["BackpackIO", "BackpackCheckpoint", "TestSupport"]),
        .testTarget(name: "TokenizerTests", dependencies: ["BackpackTokenizer", "BackpackJSON", "TestSupport"],
                    resources: [.copy("Goldens")]),
        .testTarget(name: "ModelTests", dependencies: ["BackpackTokenizer", "BackpackModel", "BackpackModelFolder", "BackpackCheckpoint", "BackpackIO", "TestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "EditingTests", dependencies: ["BackpackCheckpoint", "BackpackJSON", "BackpackTokenizer", "BackpackEditing", "BackpackModel", "BackpackModelFolder", "BackpackPrompts",
                                                         "BackpackYAML", "BackpackIO", "TestSupport"],
                    exclude: ["Edits"]),
        .testTarget(name: "EvaluationTests", dependencies: ["BackpackEvaluation", "BackpackModel", "BackpackModelFolder", "BackpackResults",
                                                            "BackpackCheckpoint", "BackpackEditing", "BackpackPrompts", "BackpackTokenizer",
                                                            "BackpackIO", "TestSupport", "BackpackCLI"]),
        .testTarget(name: "ExplorerTests", dependencies: ["BackpackExplorer", "BackpackEditing", "BackpackModel", "BackpackIO", "TestSupport", "BackpackCLI",
                                                          .product(name: "HummingbirdTesting", package: "hummingbird")]),
        .testTarget(name: "ResultsTests", dependencies: ["BackpackResults", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["BackpackCheckpoint", "BackpackIO", "BackpackModelFolder", "TestSupport", "BackpackCLI"]),
        .testTarget(name: "HubTests", dependencies: ["BackpackCheckpoint", "BackpackHub", "BackpackModel", "BackpackIO", "TestSupport", "BackpackCLI"],
                    exclude: ["hub_server.py"]),

        // Hostile inputs, size limits, kill-during-write (docs/HARDENING.md).
        .testTarget(name: "HardeningTests",
                    dependencies: ["BackpackCheckpoint", "BackpackTokenizer", "BackpackModel", "BackpackModelFolder", "BackpackEditing",
                                   "BackpackPrompts", "BackpackYAML", "BackpackResults", "BackpackIO", "TestSupport", "BackpackCLI"],
                    exclude: ["Corpus"]),
        // libFuzzer harnesses: `make fuzz` builds them with -sanitize=fuzzer,address -D FUZZING;
        // a plain build makes replay tools (`FuzzX FILE...` runs each file through the harness).
        .target(name: "FuzzSupport", path: "Fuzz/Sources/FuzzSupport"),
        .executableTarget(name: "FuzzSafetensors", dependencies: ["BackpackCheckpoint", "FuzzSupport"],
                          path: "Fuzz/Sources/FuzzSafetensors"),
        .executableTarget(name: "FuzzTorch", dependencies: ["BackpackCheckpoint", "FuzzSupport"],
                          path: "Fuzz/Sources/FuzzTorch"),
        .executableTarget(name: "FuzzConfig", dependencies: ["BackpackModelFolder", "FuzzSupport"],
                          path: "Fuzz/Sources/FuzzConfig"),
        .executableTarget(name: "FuzzTokenizerFiles", dependencies: ["BackpackTokenizer", "FuzzSupport"],
                          path: "Fuzz/Sources/FuzzTokenizerFiles"),
        .executableTarget(name: "FuzzEncode", dependencies: ["BackpackTokenizer", "FuzzSupport"],
                          path: "Fuzz/Sources/FuzzEncode"),
        .executableTarget(name: "FuzzEditFile", dependencies: ["BackpackEditing", "BackpackPrompts", "FuzzSupport"],
                          path: "Fuzz/Sources/FuzzEditFile"),
    ]
)
