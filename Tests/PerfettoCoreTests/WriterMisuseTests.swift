import Testing
@testable import PerfettoCore

/// Misuse is an error, never a trap, and leaves the writer's output intact.
struct WriterMisuseTests {
    @Test func spanBeforeThreadIsACallOrderError() throws {
        let writer = try TraceWriter(processId: "p", sink: .memory())
        #expect(throws: PerfettoError.callOrder("emit_span called before set_current_thread")) {
            try writer.emitSpan(begin: 1, end: 2, name: "n", target: "t", filename: "f", line: 1)
        }
        #expect(writer.packetCount == 0)
        #expect(try writer.takeBytes().isEmpty)
    }

    @Test func asyncBeforeTrackIsACallOrderError() throws {
        let writer = try TraceWriter(processId: "p", sink: .memory())
        #expect(throws: PerfettoError.callOrder("async span event before emit_async_track_descriptor")) {
            try writer.emitAsyncSpanBegin(timestamp: 1, name: "n", target: "t", filename: "f", line: 1)
        }
        try writer.emitAsyncTrackDescriptor()
        try writer.emitAsyncTrackDescriptor()  // idempotent
        #expect(writer.packetCount == 1)
        try writer.emitAsyncSpanBegin(timestamp: 1, name: "n", target: "t", filename: "f", line: 1)
        #expect(writer.packetCount == 2)
    }

    @Test func invalidUTF8InternsNothing() throws {
        let writer = try TraceWriter(processId: "p", sink: .memory())
        try writer.setCurrentThread(streamId: "s")
        let bad: [UInt8] = [0x66, 0xFF]
        _ = Array("name".utf8).withUnsafeBytes { name in
            bad.withUnsafeBytes { bad in
                #expect(throws: PerfettoError.invalidUTF8("filename")) {
                    try writer.emitSpan(begin: 1, end: 2, name: name, target: name, filename: bad, line: 1)
                }
            }
        }
        #expect(writer.names.count == 0 && writer.categories.count == 0 && writer.locations.count == 0)
        #expect(writer.stopError == nil)
    }

    @Test func failingSinkStopsTheWriter() throws {
        var calls = 0
        let writer = try TraceWriter(processId: "p", sink: .chunks(chunkSize: 1) { _, _ throws(PerfettoError) in
            calls += 1
            throw .sinkFailed(status: 5)
        })
        #expect(throws: PerfettoError.sinkFailed(status: 5)) { try writer.emitProcessDescriptor(exe: "x") }
        #expect(throws: PerfettoError.writerStopped(PerfettoError.sinkFailed(status: 5).description)) {
            try writer.emitProcessDescriptor(exe: "x")
        }
        #expect(calls == 1)
    }

    @Test func badSinkArgumentsAreRejected() {
        #expect(throws: PerfettoError.invalidArgument("chunk size must be positive, got 0")) {
            try TraceWriter(processId: "p", sink: .chunks(chunkSize: 0) { _, _ in })
        }
        #expect(throws: PerfettoError.invalidArgument("file descriptor must be >= 0, got -1")) {
            try TraceWriter(processId: "p", sink: .fileDescriptor(-1))
        }
        #expect(throws: PerfettoError.invalidArgument("buffer size must be positive, got 0")) {
            try TraceWriter(processId: "p", sink: .fileDescriptor(1, bufferSize: 0))
        }
    }

    @Test func takeBufferNeedsAMemorySink() throws {
        let writer = try TraceWriter(processId: "p", sink: .chunks(chunkSize: 10) { _, _ in })
        #expect(throws: PerfettoError.callOrder("taking the buffer needs a writer created with a memory sink")) {
            try writer.takeBytes()
        }
    }
}
