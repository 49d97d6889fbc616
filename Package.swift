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
        .target(name: "PerfettoCore", swiftSettings: hotPathFlags),
        // The C ABI: only translates between C and the core.
        .target(name: "PerfettoMM", dependencies: ["PerfettoCore"], swiftSettings: hotPathFlags),
        // Scenario JSON loading, shared by the runner and the tests (Foundation allowed).
        .target(name: "ScenarioSupport", dependencies: ["PerfettoCore"]),
        .executableTarget(name: "pmm-scenario", dependencies: ["PerfettoCore", "ScenarioSupport"]),
        .executableTarget(name: "pmm-bench", dependencies: ["PerfettoCore"], swiftSettings: hotPathFlags),
        .testTarget(
            name: "PerfettoCoreTests",
            dependencies: ["PerfettoCore", "PerfettoMM", "ScenarioSupport"]
        ),
    ]
)
