import PerfettoCore

/// A writer scenario: one trace as the sequence of writer calls it stands for
/// (docs/byte-format.md, Scenarios). Used by the scenario runner, tests and benchmarks.
public struct Scenario: Sendable {
    public struct Span: Sendable, Equatable {
        public var begin: UInt64
        public var end: UInt64
        public var name: String
        public var target: String
        public var filename: String
        public var line: UInt32

        public init(begin: UInt64, end: UInt64, name: String, target: String, filename: String, line: UInt32) {
            self.begin = begin
            self.end = end
            self.name = name
            self.target = target
            self.filename = filename
            self.line = line
        }
    }

    public struct Thread: Sendable {
        public var streamId: String
        public var threadId: Int32
        public var threadName: String
        public var spans: [Span]

        public init(streamId: String, threadId: Int32, threadName: String, spans: [Span]) {
            self.streamId = streamId
            self.threadId = threadId
            self.threadName = threadName
            self.spans = spans
        }
    }

    public var name: String
    public var processId: String
    public var exe: String
    public var spanTypes: SpanTypes
    public var threads: [Thread]
    public var asyncSpans: [Span]

    public init(name: String, processId: String, exe: String, spanTypes: SpanTypes,
                threads: [Thread], asyncSpans: [Span]) {
        self.name = name
        self.processId = processId
        self.exe = exe
        self.spanTypes = spanTypes
        self.threads = threads
        self.asyncSpans = asyncSpans
    }

    /// Makes the scenario's calls on `writer`, then flushes it.
    public func write(to writer: TraceWriter) throws(PerfettoError) {
        try writer.emitProcessDescriptor(exe: exe)
        for thread in threads {
            try writer.emitThreadDescriptor(streamId: thread.streamId, threadId: thread.threadId,
                                            threadName: thread.threadName)
        }
        if spanTypes.includesAsync { try writer.emitAsyncTrackDescriptor() }
        if spanTypes.includesThread {
            for thread in threads {
                try writer.setCurrentThread(streamId: thread.streamId)
                for s in thread.spans {
                    try writer.emitSpan(begin: s.begin, end: s.end, name: s.name, target: s.target,
                                        filename: s.filename, line: s.line)
                }
            }
        }
        if spanTypes.includesAsync {
            for s in asyncSpans {
                try writer.emitAsyncSpanBegin(timestamp: s.begin, name: s.name, target: s.target,
                                              filename: s.filename, line: s.line)
                try writer.emitAsyncSpanEnd(timestamp: s.end, name: s.name, target: s.target,
                                            filename: s.filename, line: s.line)
            }
        }
        try writer.flush()
    }
}
