import Foundation
import PerfettoCore
import ScenarioSupport

/// The golden scenarios copied from micromegas into Tests/Fixtures/golden.
enum Fixtures {
    static let goldenDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/golden")

    static let goldenNames = ["minimal", "basic", "basic_thread", "basic_async", "interning",
                              "long_strings", "many_threads", "large"]

    static func scenario(_ name: String) throws -> Scenario {
        try ScenarioJSON.load(path: goldenDirectory.appendingPathComponent("\(name).json").path)
    }

    static func golden(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: goldenDirectory.appendingPathComponent("\(name).perfetto")))
    }
}

/// Writes `scenario` into memory and returns the bytes.
func writeToMemory(_ scenario: Scenario) throws -> [UInt8] {
    let writer = try TraceWriter(processId: scenario.processId, sink: .memory())
    try scenario.write(to: writer)
    return try writer.takeBytes()
}

/// Writes `scenario` through a chunk sink and returns the chunks in order.
func writeChunks(_ scenario: Scenario, chunkSize: Int) throws -> [[UInt8]] {
    final class Collector { var chunks: [[UInt8]] = []; var ids: [UInt64] = [] }
    let collector = Collector()
    let writer = try TraceWriter(processId: scenario.processId, sink: .chunks(chunkSize: chunkSize) { id, bytes in
        collector.ids.append(id)
        collector.chunks.append(Array(bytes))
    })
    try scenario.write(to: writer)
    guard collector.ids == (0..<UInt64(collector.ids.count)).map({ $0 }) else {
        throw TraceDecoder.DecodeError(description: "chunk ids out of order: \(collector.ids)")
    }
    return collector.chunks
}
