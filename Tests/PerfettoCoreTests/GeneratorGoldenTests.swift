import ArrowTestSupport
import Testing
@testable import PerfettoCore
import ScenarioSupport

/// The `micromegas` layout fed with Arrow data reproduces micromegas' own bytes.
@Suite(.serialized) struct GeneratorGoldenTests {
    /// Thread spans as Arrow batches and async spans as shuffled begin/end events.
    func generateScenario(_ scenario: Scenario, encoding: StringEncoding, batchSize: Int,
                          sink: TraceSink = .memory()) throws -> (TraceWriter, GenerationStats) {
        var events = asyncEvents(scenario.asyncSpans)
        var rng = SplitMix64(seed: UInt64(scenario.asyncSpans.count))
        events.shuffle(using: &rng)
        return try generate(
            processId: scenario.processId, exe: scenario.exe,
            threads: scenario.threads.map {
                (ThreadInfo(streamId: $0.streamId, threadId: $0.threadId, name: $0.threadName),
                 threadSpanBatches($0.spans, encoding: encoding, batchSize: batchSize))
            },
            asyncBatches: asyncEventBatches(events, encoding: encoding, batchSize: batchSize),
            spanTypes: scenario.spanTypes, layout: .micromegas, sink: sink)
    }

    @Test(arguments: Fixtures.goldenNames)
    func micromegasLayoutIsByteIdentical(name: String) throws {
        var scenario = try Fixtures.scenario(name)
        var expected = try Fixtures.golden(name)
        if name == "interning" {
            // Its async spans are not in begin order, which micromegas' generation always
            // writes; compare with the same calls in that order.
            scenario.asyncSpans = scenario.asyncSpans.enumerated()
                .sorted { ($0.element.begin, $0.offset) < ($1.element.begin, $1.offset) }.map(\.element)
            expected = try writeToMemory(scenario)
            #expect(expected != (try Fixtures.golden(name)))
        }
        for encoding in StringEncoding.allCases {
            let (writer, stats) = try generateScenario(scenario, encoding: encoding, batchSize: 700)
            #expect(try writer.takeBytes() == expected, "\(encoding)")
            #expect(stats.asyncSpans == (scenario.spanTypes.includesAsync ? scenario.asyncSpans.count : 0))
            if scenario.spanTypes.includesAsync {
                #expect(stats.matcher.complete == scenario.asyncSpans.count)
                #expect(stats.matcher.events == 2 * scenario.asyncSpans.count)
            }
        }
    }

    @Test func chunkedGenerationConcatenatesToTheWhole() throws {
        let scenario = try Fixtures.scenario("many_threads")
        var chunks: [[UInt8]] = []
        _ = try generateScenario(scenario, encoding: .dictionary32, batchSize: 100,
                                 sink: .chunks(chunkSize: 2000) { id, bytes in
                                     #expect(id == UInt64(chunks.count))
                                     chunks.append(Array(bytes))
                                 })
        #expect(Array(chunks.joined()) == (try Fixtures.golden("many_threads")))
        var decoder = TraceDecoder()
        for chunk in chunks { #expect(!(try decoder.decode(chunk)).isEmpty) }
    }

    /// Plain and dictionary strings, every index width, sliced arrays and every time
    /// and line type give the same bytes.
    @Test func everySupportedInputGivesTheSameBytes() throws {
        let scenario = try Fixtures.scenario("basic_thread")
        let expected = try Fixtures.golden("basic_thread")
        let variants: [(String, String, Int)] = [("tsn:UTC", "I", 0), ("tsn:", "i", 3), ("l", "l", 1), ("tsn:+00:00", "L", 5),
                                                 ("tsn:Europe/Paris", "S", 2)]
        for encoding in StringEncoding.allCases {
            for (timeFormat, lineFormat, padding) in variants {
                let writer = try TraceWriter(processId: scenario.processId, sink: .memory())
                let generator = try TraceGenerator(
                    writer: writer, exe: scenario.exe,
                    threads: scenario.threads.map { ThreadInfo(streamId: $0.streamId, threadId: $0.threadId, name: $0.threadName) },
                    spanTypes: .thread, rangeBegin: 0, rangeEnd: .max, layout: .lanes)
                let tracker = ArrowTestStream.Tracker()
                for thread in scenario.threads {
                    let stream = ArrowTestStream.make(threadSpanBatches(thread.spans, encoding: encoding, timeFormat: timeFormat,
                                                                        lineFormat: lineFormat, batchSize: 3, padding: padding),
                                                      tracker: tracker)
                    defer { ArrowTestStream.deallocate(stream) }
                    try generator.addThreadSpans(streamId: thread.streamId, stream: stream)
                }
                _ = try generator.finish()
                #expect(try writer.takeBytes() == expected, "\(encoding) \(timeFormat) \(lineFormat) padding \(padding)")
                #expect(tracker.live == 0)
            }
        }
    }
}
