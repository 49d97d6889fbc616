// swift-tools-version: 6.0
import PackageDescription

// Release builds of the library use `-static-stdlib` (see the Makefile) so that
// libperfetto_mm.so depends only on the system C/C++ runtime. No target uses unsafe
// flags, so PerfettoCore can be a dependency of another package: the hot stored
// properties of the core's classes are `@exclusivity(unchecked)` instead (dynamic
// exclusivity checks on every field access cost more than the encoding itself).

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
        // Atomic loads and stores for the core's two-thread phases (not exported).
        .target(name: "CThreadSupport"),
        .target(name: "PerfettoCore", dependencies: ["CArrowABI", "CThreadSupport"]),
        // include/perfetto_mm.h as a Clang module (struct layouts for the exports).
        .target(name: "CPerfettoMM"),
        // The C ABI: only translates between C and the core.
        .target(name: "PerfettoMM", dependencies: ["PerfettoCore", "CPerfettoMM"], exclude: ["exports.map"]),
        // Writer scenarios: the Scenario type, its replay on a writer and JSON loading, shared
        // by the runner and the tests (Foundation allowed; never linked into the library).
        .target(name: "ScenarioSupport", dependencies: ["PerfettoCore"]),
        .executableTarget(name: "pmm-scenario", dependencies: ["PerfettoCore", "ScenarioSupport"]),
        // Builds Arrow C streams from Swift values, for tests and benchmarks.
        .target(name: "ArrowTestSupport", dependencies: ["CArrowABI"]),
        // Benchmark references in C (bench/reference): not part of any product.
        .target(name: "BenchReference", path: "bench/reference"),
        .executableTarget(name: "pmm-bench", dependencies: ["PerfettoCore", "ArrowTestSupport", "CArrowABI", "BenchReference"]),
        .testTarget(
            name: "PerfettoCoreTests",
            dependencies: ["PerfettoCore", "PerfettoMM", "CPerfettoMM", "ScenarioSupport", "ArrowTestSupport"]
        ),
    ]
)
