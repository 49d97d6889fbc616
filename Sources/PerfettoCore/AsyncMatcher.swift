/// Pairs async begin/end events into spans by span id (docs/async-spans.md, Pairing).
///
/// Events may arrive in any order, with duplicates. Memory is one record per async
/// span; thread spans never pass through here.
public struct AsyncMatcher {
    /// What the matcher saw and decided, reported to the caller.
    public struct Counts: Equatable, Sendable {
        /// Events inside the range, read.
        public var events = 0
        /// Events outside [range begin, range end], ignored.
        public var eventsOutsideRange = 0
        /// Spans with a begin and an end, end >= begin.
        public var complete = 0
        /// Spans with a begin and no end: they end at the range end.
        public var openAtEnd = 0
        /// Spans with an end and no begin: they begin at the range begin.
        public var begunBeforeRange = 0
        /// Extra begin or end events of a span (the earliest wins).
        public var duplicates = 0
        /// Spans whose end is earlier than their begin: not written.
        public var dropped = 0

        public init() {}
    }

    /// Whether a span's times came from its own events or from the range.
    public enum Kind: UInt8, Sendable {
        case complete, openAtEnd, begunBeforeRange
    }

    /// A paired span, with strings as `StringPool` ids.
    public struct Span: Equatable, Sendable {
        public var spanId: Int64
        public var parentSpanId: Int64
        public var depth: UInt32
        public var begin: Int64
        public var end: Int64
        public var name: UInt32
        public var target: UInt32
        public var filename: UInt32
        public var line: UInt32
        public var kind: Kind
    }

    struct Record {
        var spanId: Int64
        var parentSpanId: Int64 = 0
        var depth: UInt32 = 0
        var begin: Int64 = 0
        var end: Int64 = 0
        var hasBegin = false
        var hasEnd = false
        var name: UInt32 = 0
        var target: UInt32 = 0
        var filename: UInt32 = 0
        var line: UInt32 = 0
    }

    /// The event's strings and attributes (taken from the begin event, else the end event).
    public struct Attributes {
        public var parentSpanId: Int64
        public var depth: UInt32
        public var name: UInt32
        public var target: UInt32
        public var filename: UInt32
        public var line: UInt32

        public init(parentSpanId: Int64, depth: UInt32, name: UInt32, target: UInt32, filename: UInt32, line: UInt32) {
            self.parentSpanId = parentSpanId
            self.depth = depth
            self.name = name
            self.target = target
            self.filename = filename
            self.line = line
        }
    }

    public let rangeBegin: Int64
    public let rangeEnd: Int64
    public private(set) var counts = Counts()
    var records: [Record] = []
    var indexBySpanId = IdMap()

    public init(rangeBegin: Int64, rangeEnd: Int64) {
        self.rangeBegin = rangeBegin
        self.rangeEnd = rangeEnd
    }

    /// Number of distinct spans seen so far.
    public var spanCount: Int { records.count }

    /// One begin (`isBegin`) or end event.
    @inline(__always)
    public mutating func add(isBegin: Bool, time: Int64, spanId: Int64, attributes a: Attributes) {
        guard time >= rangeBegin, time <= rangeEnd else {
            counts.eventsOutsideRange += 1
            return
        }
        counts.events += 1
        let key = UInt64(bitPattern: spanId)
        var index = Int(indexBySpanId.get(key))
        if index == 0 {
            records.append(Record(spanId: spanId))
            index = records.count
            indexBySpanId.set(key, UInt64(index))
        }
        index -= 1
        if isBegin {
            if records[index].hasBegin {
                counts.duplicates += 1
                if time >= records[index].begin { return }
            }
            records[index].hasBegin = true
            records[index].begin = time
            take(a, into: &records[index])
        } else {
            if records[index].hasEnd {
                counts.duplicates += 1
                if time >= records[index].end { return }
            }
            records[index].hasEnd = true
            records[index].end = time
            if !records[index].hasBegin { take(a, into: &records[index]) }
        }
    }

    @inline(__always)
    private func take(_ a: Attributes, into record: inout Record) {
        record.parentSpanId = a.parentSpanId
        record.depth = a.depth
        record.name = a.name
        record.target = a.target
        record.filename = a.filename
        record.line = a.line
    }

    /// The paired spans (in first-seen order) and the final counts. Open spans end at
    /// the range end, spans begun before the range begin at its begin, and spans
    /// ending before they begin are dropped.
    public func resolve() -> (spans: [Span], counts: Counts) {
        var counts = self.counts
        var spans: [Span] = []
        spans.reserveCapacity(records.count)
        for r in records {
            var begin = r.begin, end = r.end
            let kind: Kind
            if r.hasBegin && r.hasEnd {
                guard end >= begin else {
                    counts.dropped += 1
                    continue
                }
                counts.complete += 1
                kind = .complete
            } else if r.hasBegin {
                end = rangeEnd
                counts.openAtEnd += 1
                kind = .openAtEnd
            } else {
                begin = rangeBegin
                counts.begunBeforeRange += 1
                kind = .begunBeforeRange
            }
            spans.append(Span(spanId: r.spanId, parentSpanId: r.parentSpanId, depth: r.depth, begin: begin, end: end,
                              name: r.name, target: r.target, filename: r.filename, line: r.line, kind: kind))
        }
        return (spans, counts)
    }
}
