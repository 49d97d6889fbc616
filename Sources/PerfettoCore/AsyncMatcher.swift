#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Pairs async begin/end events into spans by span id (docs/async-spans.md, Pairing).
///
/// Events may arrive in any order, with duplicates. Memory is one 52-byte record per
/// distinct span id (in chunks, no growth copies) plus a 4-byte-slot hash index (1.25
/// to 2.5 slots per span); thread spans never pass through here. Not copyable: its
/// records live in reference storage.
public struct AsyncMatcher: ~Copyable {
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
        /// Pool id of the `stream_id` of the event the attributes came from (0: none).
        public var stream: UInt32 = 0
    }

    /// The event's strings and attributes (taken from the begin event, else the end event).
    public struct Attributes {
        public var parentSpanId: Int64
        public var depth: UInt32
        public var name: UInt32
        public var target: UInt32
        public var filename: UInt32
        public var line: UInt32
        /// Pool id of the event's `stream_id` (0: none).
        public var stream: UInt32

        public init(parentSpanId: Int64, depth: UInt32, name: UInt32, target: UInt32, filename: UInt32, line: UInt32,
                    stream: UInt32 = 0) {
            self.parentSpanId = parentSpanId
            self.depth = depth
            self.name = name
            self.target = target
            self.filename = filename
            self.line = line
            self.stream = stream
        }
    }

    public let rangeBegin: Int64
    public let rangeEnd: Int64
    public private(set) var counts = Counts()
    /// Set when more distinct span ids arrived than the index holds; later new ids are ignored.
    public private(set) var limitError: PerfettoError?
    let records = AsyncRecords()
    let index = SpanIndex()
    /// (filename pool id, line) pairs, interned: a record stores one 32-bit location id.
    var locationIds = IdMap(capacity: 64)
    /// The last locations looked up (most are found here, without `locationIds`' hashing).
    let recentLocations = LocationCache()
    var locationFiles: [UInt32] = []
    var locationLines: [UInt32] = []
    /// The span id of the last event read and its record (nil before the first).
    private var lastSpanId: Int64 = 0
    private var lastRecord: UnsafeMutablePointer<AsyncRecord>?

    public init(rangeBegin: Int64, rangeEnd: Int64) {
        self.rangeBegin = rangeBegin
        self.rangeEnd = rangeEnd
    }

    /// One begin (`isBegin`) or end event. Past the span limit, new span ids are ignored
    /// and `limitError` is set.
    public mutating func add(isBegin: Bool, time: Int64, spanId: Int64, attributes a: Attributes) {
        do { try addEvent(isBegin: isBegin, time: time, spanId: spanId, attributes: a) } catch {
            if limitError == nil { limitError = error }
        }
    }

    /// One begin or end event; throws when a new span id exceeds the index's limit.
    @inline(__always)
    mutating func addEvent(isBegin: Bool, time: Int64, spanId: Int64, attributes a: Attributes) throws(PerfettoError) {
        try addEvent(isBegin: isBegin, time: time, spanId: spanId) { a }
    }

    /// One begin or end event whose attributes `attributes` gives, called only when they
    /// are taken (an end event whose span has a begin does not need them).
    @inline(__always)
    mutating func addEvent(isBegin: Bool, time: Int64, spanId: Int64,
                           attributes: () -> Attributes) throws(PerfettoError) {
        guard time >= rangeBegin, time <= rangeEnd else {
            counts.eventsOutsideRange += 1
            return
        }
        counts.events += 1
        // An end event usually comes right after its begin: the record of the previous
        // event's span id is kept (records never move), sparing its index lookup.
        let r: UnsafeMutablePointer<AsyncRecord>
        if let last = lastRecord, lastSpanId == spanId {
            r = last
        } else {
            r = try index.findOrInsert(spanId, records)
            lastSpanId = spanId
            lastRecord = r
        }
        // Valid times are >= rangeBegin >= 0, so a negative time means "no such event".
        if isBegin {
            let begin = r.pointee.begin
            if begin >= 0 {
                counts.duplicates += 1
                if time >= begin { return }
            }
            r.pointee.begin = time
            take(attributes(), into: r)
        } else {
            let end = r.pointee.end
            if end >= 0 {
                counts.duplicates += 1
                if time >= end { return }
            }
            r.pointee.end = time
            if r.pointee.begin < 0 { take(attributes(), into: r) }
        }
    }

    @inline(__always)
    private mutating func take(_ a: Attributes, into r: UnsafeMutablePointer<AsyncRecord>) {
        r.pointee.parentSpanId = a.parentSpanId
        r.pointee.depth = a.depth
        r.pointee.name = a.name
        r.pointee.target = a.target
        r.pointee.location = location(a.filename, a.line)
        r.pointee.stream = a.stream
    }

    @inline(__always)
    private mutating func location(_ filename: UInt32, _ line: UInt32) -> UInt32 {
        let key = UInt64(filename) << 32 | UInt64(line)
        let cached = recentLocations.get(key)
        if cached != 0 { return UInt32(truncatingIfNeeded: cached &- 1) }
        let found = locationIds.get(key)
        if found != 0 {
            recentLocations.set(key, found)
            return UInt32(truncatingIfNeeded: found - 1)
        }
        let id = UInt32(truncatingIfNeeded: locationFiles.count)
        locationFiles.append(filename)
        locationLines.append(line)
        locationIds.set(key, UInt64(id) + 1)
        recentLocations.set(key, UInt64(id) + 1)
        return id
    }

    @inline(__always)
    func filename(_ location: UInt32) -> UInt32 { locationFiles[Int(location)] }
    @inline(__always)
    func line(_ location: UInt32) -> UInt32 { locationLines[Int(location)] }

    /// The paired spans (in first-seen order) and the final counts. Open spans end at
    /// the range end, spans begun before the range begin at its begin, and spans
    /// ending before they begin are dropped.
    public func resolve() -> (spans: [Span], counts: Counts) {
        var counts = self.counts
        var spans: [Span] = []
        spans.reserveCapacity(records.count)
        for i in 0..<records.count {
            let r = records[i].pointee
            var begin = r.begin, end = r.end
            let kind: Kind
            if begin >= 0 && end >= 0 {
                guard end >= begin else {
                    counts.dropped += 1
                    continue
                }
                counts.complete += 1
                kind = .complete
            } else if begin >= 0 {
                end = rangeEnd
                counts.openAtEnd += 1
                kind = .openAtEnd
            } else {
                begin = rangeBegin
                counts.begunBeforeRange += 1
                kind = .begunBeforeRange
            }
            spans.append(Span(spanId: records.spanId(i), parentSpanId: r.parentSpanId, depth: r.depth, begin: begin, end: end,
                              name: r.name, target: r.target, filename: filename(r.location), line: line(r.location),
                              kind: kind, stream: r.stream))
        }
        return (spans, counts)
    }

    /// The generator's resolve, once, at finish: gives every kept record its final times
    /// (in place) and returns the kept record indices in first-seen order with the
    /// counts, and how many of its first indices are already in `AsyncOrder`'s order
    /// (all of them for time-ordered input). `completeWithDuration` keeps only complete
    /// spans with begin < end.
    func resolveInPlace(completeWithDuration: Bool) -> (order: [UInt32], counts: Counts, sortedPrefix: Int) {
        var counts = self.counts
        var order: [UInt32] = []
        order.reserveCapacity(records.count)
        var sorted = true, sortedPrefix = 0
        var previous = -1
        // The previous kept record's key (`AsyncOrder.less` on it and the current one, without
        // reading it again).
        var previousBegin: Int64 = 0, previousEnd: Int64 = 0, previousDepth: UInt32 = 0
        let lanes = !completeWithDuration
        records.forEach { i, r in
            let begin = r.pointee.begin, end = r.pointee.end
            if begin >= 0 && end >= 0 {
                guard end >= begin else {
                    counts.dropped += 1
                    return
                }
                counts.complete += 1
                if completeWithDuration && begin == end { return }
            } else if begin >= 0 {
                r.pointee.end = rangeEnd
                counts.openAtEnd += 1
                if completeWithDuration { return }
            } else {
                r.pointee.begin = rangeBegin
                counts.begunBeforeRange += 1
                if completeWithDuration { return }
            }
            // The record's final times (set above for open and begun-before spans).
            let finalBegin = r.pointee.begin, finalEnd = r.pointee.end, depth = r.pointee.depth
            if sorted && previous >= 0 {
                if previousBegin != finalBegin {
                    sorted = previousBegin < finalBegin
                } else if lanes && previousEnd != finalEnd {
                    sorted = previousEnd > finalEnd
                } else if lanes && previousDepth != depth {
                    sorted = previousDepth < depth
                } else {
                    sorted = records.spanId(previous) < records.spanId(i)
                }
                if !sorted { sortedPrefix = order.count }
            }
            previous = i
            previousBegin = finalBegin
            previousEnd = finalEnd
            previousDepth = depth
            order.append(UInt32(truncatingIfNeeded: i))
        }
        return (order, counts, sorted ? order.count : sortedPrefix)
    }
}

/// (filename, line) keys recently interned and their location id + 1, direct-mapped (1,024
/// entries, 0: empty; 256 missed a quarter of the bench workload's 300 locations): a begin event's location is usually found here, sparing `IdMap`'s
/// hashing. Only a cache: keys that share a slot (outside data may choose them) evict each
/// other and fall back to the map, which hashes with a secret.
final class LocationCache {
    static let size = 1024
    private let keys = UnsafeMutablePointer<UInt64>.allocate(capacity: size)
    private let values = UnsafeMutablePointer<UInt64>.allocate(capacity: size)

    init() {
        keys.initialize(repeating: 0, count: Self.size)
        values.initialize(repeating: 0, count: Self.size)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    @inline(__always)
    private static func slot(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) &>> 54)
    }

    /// The value cached for `key`, or 0.
    @inline(__always)
    func get(_ key: UInt64) -> UInt64 {
        let s = Self.slot(key)
        return keys[s] == key ? values[s] : 0
    }

    @inline(__always)
    func set(_ key: UInt64, _ value: UInt64) {
        let s = Self.slot(key)
        keys[s] = key
        values[s] = value
    }
}

/// One span's pairing state but its id (kept apart, see `AsyncRecords`): 44 bytes
/// (4-byte aligned: 64-bit fields as two halves). A negative begin or end means that
/// event has not been seen.
struct AsyncRecord {
    private var parentLow: UInt32 = 0, parentHigh: UInt32 = 0
    private var beginLow: UInt32 = UInt32.max, beginHigh: UInt32 = UInt32.max
    private var endLow: UInt32 = UInt32.max, endHigh: UInt32 = UInt32.max
    var depth: UInt32 = 0
    var name: UInt32 = 0
    var target: UInt32 = 0
    /// Interned (filename, line): `AsyncMatcher.filename(_:)`, `line(_:)`.
    var location: UInt32 = 0
    /// Pool id of the stream id of the event the attributes came from (0: none).
    var stream: UInt32 = 0

    init() {}

    var parentSpanId: Int64 {
        @inline(__always) get { Self.join(parentLow, parentHigh) }
        @inline(__always) set { (parentLow, parentHigh) = Self.split(newValue) }
    }
    var begin: Int64 {
        @inline(__always) get { Self.join(beginLow, beginHigh) }
        @inline(__always) set { (beginLow, beginHigh) = Self.split(newValue) }
    }
    var end: Int64 {
        @inline(__always) get { Self.join(endLow, endHigh) }
        @inline(__always) set { (endLow, endHigh) = Self.split(newValue) }
    }

    /// The parent span id of the record at `r`, read from its own 8 bytes only: another
    /// thread may be writing the record's times meanwhile (`TraceGenerator.findParents`).
    @inline(__always)
    static func parentSpanId(at r: UnsafeMutablePointer<AsyncRecord>) -> Int64 {
        // The two halves are the first fields (`parentIdOffsets`, checked by a test).
        let raw = UnsafeRawPointer(r)
        return join(raw.load(as: UInt32.self), raw.load(fromByteOffset: 4, as: UInt32.self))
    }

    /// Where the parent id's halves are in a record: (0, 4), as `parentSpanId(at:)` reads them.
    static var parentIdOffsets: [Int?] {
        [MemoryLayout<AsyncRecord>.offset(of: \.parentLow), MemoryLayout<AsyncRecord>.offset(of: \.parentHigh)]
    }

    @inline(__always)
    private static func join(_ low: UInt32, _ high: UInt32) -> Int64 {
        Int64(bitPattern: UInt64(high) << 32 | UInt64(low))
    }

    @inline(__always)
    private static func split(_ value: Int64) -> (UInt32, UInt32) {
        let bits = UInt64(bitPattern: value)
        return (UInt32(truncatingIfNeeded: bits), UInt32(truncatingIfNeeded: bits >> 32))
    }
}

/// Records in fixed chunks of 4,096: growing never copies, and at most one chunk is
/// partly empty. Span ids are stored apart from the rest (8 + 44 bytes a span), so
/// hash probes and rehashing read only ids.
final class AsyncRecords {
    static let chunkShift = 12
    static let chunkSize = 1 << chunkShift
    @exclusivity(unchecked) private var chunks: [UnsafeMutablePointer<AsyncRecord>] = []
    @exclusivity(unchecked) private var idChunks: [UnsafeMutablePointer<Int64>] = []
    @exclusivity(unchecked) private(set) var count = 0

    deinit {
        for (c, chunk) in chunks.enumerated() {
            chunk.deinitialize(count: Swift.min(Self.chunkSize, count - c * Self.chunkSize))
            free(chunk)
            free(idChunks[c])
        }
    }

    /// Record `i` (0 ..< count).
    @inline(__always)
    subscript(_ i: Int) -> UnsafeMutablePointer<AsyncRecord> {
        chunks[i >> Self.chunkShift] + (i & (Self.chunkSize - 1))
    }

    /// The span id of record `i`.
    @inline(__always)
    func spanId(_ i: Int) -> Int64 {
        idChunks[i >> Self.chunkShift][i & (Self.chunkSize - 1)]
    }

    /// Appends a record for `spanId` and returns it. Chunks come from malloc, so that running
    /// out of memory is an error the caller gets, not the end of the process.
    @inline(__always)
    func append(_ spanId: Int64) throws(PerfettoError) -> UnsafeMutablePointer<AsyncRecord> {
        let offset = count & (Self.chunkSize - 1)
        if offset == 0 { try addChunk() }
        let p = chunks[chunks.count - 1] + offset
        p.initialize(to: AsyncRecord())
        idChunks[idChunks.count - 1][offset] = spanId
        count += 1
        return p
    }

    private func addChunk() throws(PerfettoError) {
        guard let records = malloc(Self.chunkSize * MemoryLayout<AsyncRecord>.stride) else { throw .outOfMemory }
        guard let ids = malloc(Self.chunkSize * MemoryLayout<Int64>.stride) else {
            free(records)
            throw .outOfMemory
        }
        chunks.append(records.bindMemory(to: AsyncRecord.self, capacity: Self.chunkSize))
        idChunks.append(ids.bindMemory(to: Int64.self, capacity: Self.chunkSize))
    }

    /// Calls `body` with each record's index and address, in order.
    @inline(__always)
    func forEach<E: Error>(_ body: (Int, UnsafeMutablePointer<AsyncRecord>) throws(E) -> Void) throws(E) {
        var i = 0
        for chunk in chunks {
            let n = Swift.min(Self.chunkSize, count - i)
            for k in 0..<n { try body(i + k, chunk + k) }
            i += n
        }
    }

    /// Calls `body` with each record's index and span id, in order.
    @inline(__always)
    func forEachId(_ body: (Int, Int64) -> Void) {
        var i = 0
        for chunk in idChunks {
            let n = Swift.min(Self.chunkSize, count - i)
            for k in 0..<n { body(i + k, chunk[k]) }
            i += n
        }
    }
}

/// Span id -> record index: open addressing over 4-byte slots, linear probing, at most
/// 80% full. A slot holds the record index + 1 in its low `bits` bits and a fingerprint of
/// the id in the others, so probing past other ids rarely reads a record. Fibonacci
/// hashing spreads sequential ids (as micromegas assigns them) evenly; the id is first
/// mixed with a secret of the index, so that ids cannot be chosen to share a home slot
/// (span ids are outside data: multiples of the hash constant's inverse all went to slot
/// 0, and each insertion probed past every id before it, quadratic time).
final class SpanIndex {
    /// log2 of the slot count; at most 30, leaving at least 2 fingerprint bits.
    @exclusivity(unchecked) private var bits = 10
    @exclusivity(unchecked) private var slots: UnsafeMutablePointer<UInt32>
    @exclusivity(unchecked) private(set) var count = 0
    /// The most ids the slots hold before growing (80% of them).
    @exclusivity(unchecked) private var limit = (1 << 10) * 4 / 5
    /// Mixed into every id before hashing (not part of any output: records keep their
    /// insertion order whatever the slots).
    private let seed: UInt64
    static let maxBits = 30

    init() {
        // calloc'ed, as growing is (a failed growth is an error, see grow); 4 KiB: if even
        // that fails, there is nothing to report it with.
        let size = 1 << bits
        let memory = calloc(size, MemoryLayout<UInt32>.stride)
            ?? UnsafeMutableRawPointer(UnsafeMutablePointer<UInt32>.allocate(capacity: size))
        memset(memory, 0, size * MemoryLayout<UInt32>.stride)
        slots = memory.bindMemory(to: UInt32.self, capacity: size)
        seed = HashSeed.make(UnsafeRawPointer(slots))
    }

    deinit { free(slots) }

    /// The home slot and the fingerprint (already shifted) of `id`. `bits` is 10 ... 30, so
    /// the shifts are in range and the masking operators (no range checks) shift the same.
    @inline(__always)
    private static func hash(_ id: Int64, _ bits: Int, _ seed: UInt64) -> (slot: Int, fingerprint: UInt32) {
        let h = (UInt64(bitPattern: id) ^ seed) &* 0x9E37_79B9_7F4A_7C15
        let b = UInt64(truncatingIfNeeded: bits)
        let slot = Int(truncatingIfNeeded: h &>> (64 &- b))
        let fingerprint = UInt32(truncatingIfNeeded: h &>> (32 &- b)) & ~((UInt32(1) &<< UInt32(truncatingIfNeeded: b)) &- 1)
        return (slot, fingerprint)
    }

    /// Reads the home slot of each of `ids[0 ..< n]` (a result no one uses), so that the
    /// cache misses of a tile's lookups overlap instead of coming one after the other.
    @inline(__always)
    func touch(_ ids: UnsafePointer<Int64>, _ n: Int) {
        let bits = self.bits, seed = self.seed
        var seen: UInt32 = 0
        for j in 0..<n { seen |= slots[Self.hash(ids[j], bits, seed).slot] }
        touched = seen
    }

    /// Where `touch` leaves what it read (so the reads are not optimized away).
    @exclusivity(unchecked) private var touched: UInt32 = 0

    /// The record index of `id`, or -1.
    @inline(__always)
    func find(_ id: Int64, _ records: AsyncRecords) -> Int {
        probe(id, records).index
    }

    /// Looks `id` up: its record index (or -1), the empty slot where the search ended (where
    /// `id` would go) and its fingerprint.
    @inline(__always)
    private func probe(_ id: Int64, _ records: AsyncRecords) -> (index: Int, slot: Int, fingerprint: UInt32) {
        let (home, fp) = Self.hash(id, bits, seed)
        let mask = (1 &<< bits) &- 1
        let low = UInt32(truncatingIfNeeded: mask)
        var i = home
        while true {
            let slot = slots[i]
            if slot == 0 { return (-1, i, fp) }
            if slot & ~low == fp {
                // A used slot holds its record index + 1 (>= 1) in its low bits.
                let index = Int(slot & low) &- 1
                if records.spanId(index) == id { return (index, i, fp) }
            }
            i = (i &+ 1) & mask
        }
    }

    /// The record of `id`, appended to `records` if new.
    @inline(__always)
    func findOrInsert(_ id: Int64, _ records: AsyncRecords) throws(PerfettoError) -> UnsafeMutablePointer<AsyncRecord> {
        while true {
            let found = probe(id, records)
            if found.index >= 0 { return records[found.index] }
            if count < limit {
                let record = try records.append(id)
                count += 1
                slots[found.slot] = found.fingerprint | UInt32(truncatingIfNeeded: records.count)
                return record
            }
            try grow(records)
        }
    }

    private func grow(_ records: AsyncRecords) throws(PerfettoError) {
        guard bits < Self.maxBits else {
            throw .invalidData("async events: more than \(count) distinct span ids")
        }
        let size = 1 << (bits + 1), mask = size - 1, bits = self.bits + 1, seed = self.seed
        guard let memory = calloc(size, MemoryLayout<UInt32>.stride) else { throw .outOfMemory }
        free(slots)
        self.bits = bits
        limit = size * 4 / 5
        let grown = memory.bindMemory(to: UInt32.self, capacity: size)
        records.forEachId { index, id in
            let (home, fp) = Self.hash(id, bits, seed)
            var i = home
            while grown[i] != 0 { i = (i + 1) & mask }
            grown[i] = fp | UInt32(truncatingIfNeeded: index + 1)
        }
        slots = grown
    }
}
