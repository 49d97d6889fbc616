import Foundation
import Testing
@testable import PerfettoCore
import ScenarioSupport

/// Random call sequences: every path (Swift memory, chunks, packet by packet, file
/// descriptor, C buffer, C callback) gives the same bytes, and those bytes decode to
/// exactly the calls made.
struct PropertyTests {
    static let alphabet: [String] = ["a", "z", "_", "0", " ", "é", "ß", "日", "本", "🚀", "👩‍💻", "\u{301}",
                                     "\u{0}", "\u{7F}", "\u{10FFFF}", "\"", "\\", "\n"]

    static func randomString(_ rng: inout SplitMix64) -> String {
        let long = rng.below(20) == 0
        let length = long ? 100 + Int(rng.below(500)) : Int(rng.below(12))
        return String((0..<length).map { _ in alphabet[Int(rng.below(UInt64(alphabet.count)))] }.joined())
    }

    static let extremeTimes: [UInt64] = [0, 1, 127, 128, UInt64(Int64.max), UInt64.max - 1, UInt64.max]
    static let extremeTids: [Int32] = [0, -1, Int32.min, Int32.max, 1, 4242]
    static let extremeLines: [UInt32] = [0, 1, 127, 128, UInt32.max]

    static func randomScenario(seed: UInt64) -> Scenario {
        var rng = SplitMix64(seed: seed)
        let pool = (0..<40).map { _ in randomString(&rng) }
        func pick() -> String { pool[Int(rng.below(UInt64(pool.count)))] }
        func time() -> UInt64 { rng.below(4) == 0 ? extremeTimes[Int(rng.below(7))] : rng.next() }
        func line() -> UInt32 { rng.below(3) == 0 ? extremeLines[Int(rng.below(5))] : UInt32(rng.below(5000)) }
        func span() -> Scenario.Span {
            Scenario.Span(begin: time(), end: time(), name: pick(), target: pick(), filename: pick(), line: line())
        }
        let threads = (0..<Int(rng.below(6))).map { _ in
            Scenario.Thread(streamId: randomString(&rng), threadId: rng.below(2) == 0 ? extremeTids[Int(rng.below(6))] : Int32(truncatingIfNeeded: rng.next()),
                            threadName: randomString(&rng), spans: (0..<Int(rng.below(1500))).map { _ in span() })
        }
        return Scenario(name: "random-\(seed)", processId: randomString(&rng), exe: randomString(&rng),
                        spanTypes: SpanTypes.allCases[Int(rng.below(3))], threads: threads,
                        asyncSpans: (0..<Int(rng.below(1500))).map { _ in span() })
    }

    @Test(arguments: 1...12 as ClosedRange<UInt64>)
    func allPathsAgreeAndDecodeToTheCalls(seed: UInt64) throws {
        let scenario = Self.randomScenario(seed: seed)
        let whole = try writeToMemory(scenario)

        var rng = SplitMix64(seed: seed &* 31)
        let chunkSize = 1 + Int(rng.below(5000))
        let chunks = try writeChunks(scenario, chunkSize: chunkSize)
        #expect(Array(chunks.joined()) == whole)
        let packets = try writeChunks(scenario, chunkSize: 1)
        #expect(Array(packets.joined()) == whole)

        #expect(try CABIReplay.buffer(scenario) == whole)
        let cChunks = try CABIReplay.chunks(scenario, chunkSize: chunkSize)
        #expect(cChunks == chunks)

        // Decode chunk by chunk: each parses alone, and the content is the calls.
        var decoder = TraceDecoder()
        var decoded: [TraceDecoder.Packet] = []
        for packet in packets {
            let one = try decoder.decode(packet)
            #expect(one.count == 1)
            decoded += one
        }
        #expect(decoded.compactMap(\.event) == expectedEvents(scenario))

        let descriptors = decoded.compactMap(\.descriptor)
        let pid = Int32(truncatingIfNeeded: XXH64.hash(scenario.processId))
        #expect(descriptors.first?.processName == scenario.exe)
        #expect(descriptors.first?.pid == pid)
        let threadDescriptors = descriptors.filter { $0.tid != nil }
        #expect(threadDescriptors.map(\.threadName) == scenario.threads.map(\.threadName))
        #expect(threadDescriptors.map(\.tid) == scenario.threads.map(\.threadId))
        #expect(threadDescriptors.allSatisfy { $0.pid == pid })
        #expect(descriptors.contains { $0.name == "Async Operations" } == scenario.spanTypes.includesAsync)
    }

    /// Each distinct string is interned once, with ids 1, 2, 3... in order of first use.
    @Test func internedIdsAreDenseAndInOrder() throws {
        let scenario = Self.randomScenario(seed: 77)
        let writer = try TraceWriter(processId: scenario.processId, sink: .memory())
        try scenario.write(to: writer)
        var spans = scenario.spanTypes.includesThread ? scenario.threads.flatMap(\.spans) : []
        if scenario.spanTypes.includesAsync { spans += scenario.asyncSpans }
        #expect(writer.names.count == Set(spans.map(\.name)).count)
        #expect(writer.categories.count == Set(spans.map(\.target)).count)
        #expect(writer.locations.count == Set(spans.map { "\($0.filename)\u{1}\($0.line)" }).count)
    }
}
