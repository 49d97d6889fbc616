import Foundation
import Testing
@testable import PerfettoCore
import ScenarioSupport

/// micromegas' writer's bytes, reproduced through every sink.
struct GoldenTests {
    @Test(arguments: Fixtures.goldenNames)
    func memorySinkMatchesGolden(name: String) throws {
        let scenario = try Fixtures.scenario(name)
        let bytes = try writeToMemory(scenario)
        #expect(bytes == (try Fixtures.golden(name)))
    }

    @Test(arguments: Fixtures.goldenNames)
    func chunksConcatenateToGoldenAndParseAlone(name: String) throws {
        let golden = try Fixtures.golden(name)
        for chunkSize in [1, 100, 1500, 8192, 1 << 20] {
            let chunks = try writeChunks(try Fixtures.scenario(name), chunkSize: chunkSize)
            #expect(Array(chunks.joined()) == golden, "chunk size \(chunkSize)")
            var decoder = TraceDecoder()
            for (index, chunk) in chunks.enumerated() {
                let packets = try decoder.decode(chunk)
                #expect(!packets.isEmpty)
                if index < chunks.count - 1 {
                    #expect(chunk.count >= chunkSize, "chunk \(index) is short")
                    // Cut as soon as it was full: without its last packet it is short.
                    #expect(chunk.count - lastPacketSize(chunk) < chunkSize, "chunk \(index) overfull")
                }
                if chunkSize == 1 { #expect(packets.count == 1) }
            }
        }
    }

    @Test(arguments: ["basic", "many_threads"])
    func fileDescriptorSinkMatchesGolden(name: String) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pmm-\(UUID().uuidString).perfetto").path
        defer { unlink(path) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        #expect(fd >= 0)
        let writer = try TraceWriter(processId: try Fixtures.scenario(name).processId, sink: .fileDescriptor(fd, bufferSize: 4096))
        try Fixtures.scenario(name).write(to: writer)
        close(fd)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path))) == (try Fixtures.golden(name)))
    }

    @Test func goldenTraceDecodesToScenarioCalls() throws {
        let scenario = try Fixtures.scenario("interning")
        var decoder = TraceDecoder()
        let packets = try decoder.decode(try Fixtures.golden("interning"))
        #expect(packets.first?.sequenceFlags == 3 && packets.first?.firstPacketOnSequence == true)
        #expect(packets.dropFirst().allSatisfy { $0.sequenceFlags == 2 && !$0.firstPacketOnSequence })
        #expect(packets.allSatisfy { $0.trustedSequenceId == 1 })
        #expect(packets.compactMap(\.event) == expectedEvents(scenario))
    }

    func lastPacketSize(_ chunk: [UInt8]) -> Int {
        var reader = TraceDecoder.Reader(chunk, 0..<chunk.count)
        var start = 0
        while !reader.atEnd {
            start = reader.i
            _ = try? reader.field()
        }
        return chunk.count - start
    }
}

/// The events a scenario's calls produce, in order, resolved.
func expectedEvents(_ scenario: Scenario) -> [TraceDecoder.Event] {
    var events: [TraceDecoder.Event] = []
    func add(_ type: UInt64, _ track: UInt64, _ ts: UInt64, _ s: Scenario.Span) {
        events.append(.init(type: type, track: track, timestamp: ts, name: s.name, category: s.target,
                            filename: s.filename, line: s.line))
    }
    if scenario.spanTypes.includesThread {
        for thread in scenario.threads {
            let track = XXH64.hash(thread.streamId)
            for s in thread.spans {
                add(1, track, s.begin, s)
                add(2, track, s.end, s)
            }
        }
    }
    if scenario.spanTypes.includesAsync {
        let track = XXH64.hash("async_track", seed: XXH64.hash(scenario.processId))
        for s in scenario.asyncSpans {
            add(1, track, s.begin, s)
            add(2, track, s.end, s)
        }
    }
    return events
}
