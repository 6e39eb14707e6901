// swift-tools-version:6.0
import PackageDescription

// A package of one's own that adds a suite kind to backpack-edit (docs/EXTENDING.md): it depends
// on the toolkit by path, defines the kind in one file and registers it before evaluating.
let package = Package(
    name: "custom-suite",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "backpack-edit", path: "../..")],
    targets: [
        .executableTarget(name: "CustomSuite", dependencies: [
            .product(name: "BackpackEvaluation", package: "backpack-edit"),
            .product(name: "BackpackWorkflows", package: "backpack-edit"),
            .product(name: "BackpackResults", package: "backpack-edit"),
        ]),
    ]
)
