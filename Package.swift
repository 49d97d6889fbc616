// swift-tools-version: 6.0
import PackageDescription

// Release builds of the library use `-static-stdlib` (see the Makefile) so that
// libperfetto_mm.so depends only on the system C/C++ runtime.
let hotPathFlags: [SwiftSetting] = [
    // The writer keeps its buffers in final classes; dynamic exclusivity checks on
    // every field access cost more than the encoding itself.
    .unsafeFlags(["-enforce-exclusivity=unchecked"]),
]

let package = Package(
    name: "perfetto_mm",
    products: [
        .library(name: "perfetto_mm", type: .dynamic, targets: ["PerfettoMM"]),
        .library(name: "PerfettoCore", targets: ["PerfettoCore"]),
        .executable(name: "pmm-scenario", targets: ["pmm-scenario"]),
        .executable(name: "pmm-bench", targets: ["pmm-bench"]),
    ],
    targets: [
        // The core: wire encoder, writer, interner, chunker. No Foundation.
        // The Arrow C Data / Stream Interface structures (the spec's own definitions).
        .target(name: "CArrowABI"),
        .target(name: "PerfettoCore", dependencies: ["CArrowABI"], swiftSettings: hotPathFlags),
        // include/perfetto_mm.h as a Clang module (struct layouts for the exports).
        .target(name: "CPerfettoMM"),
        // The C ABI: only translates between C and the core.
        .target(name: "PerfettoMM", dependencies: ["PerfettoCore", "CPerfettoMM"], swiftSettings: hotPathFlags),
        // Scenario JSON loading, shared by the runner and the tests (Foundation allowed).
        .target(name: "ScenarioSupport", dependencies: ["PerfettoCore"]),
        .executableTarget(name: "pmm-scenario", dependencies: ["PerfettoCore", "ScenarioSupport"]),
        // Builds Arrow C streams from Swift values, for tests and benchmarks.
        .target(name: "ArrowTestSupport", dependencies: ["CArrowABI"]),
        .executableTarget(name: "pmm-bench", dependencies: ["PerfettoCore", "ArrowTestSupport", "CArrowABI"],
                          swiftSettings: hotPathFlags),
        .testTarget(
            name: "PerfettoCoreTests",
            dependencies: ["PerfettoCore", "PerfettoMM", "CPerfettoMM", "ScenarioSupport", "ArrowTestSupport"]
        ),
    ]
)
