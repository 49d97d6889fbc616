/// Spreads overlapping async spans over lane tracks so that on every lane slices nest
/// or are disjoint (docs/async-spans.md, layout `lanes`).
///
/// Spans are placed in the order `AsyncOrder.sort` gives for lanes (begin, then longer
/// first, then shallower, then span id). A child goes on its parent's lane, nested, when
/// it lies within the parent and within the innermost slice still open there; any other
/// span takes the lowest-numbered free lane, and a new lane only when none is free. A
/// lane is free once its outermost slice has ended, so lanes never outnumber the spans
/// open at one instant. A child is nested only while its lane's stack stays within
/// Perfetto's depth limit (`maxNesting`); deeper, it takes a lane like any other span.
///
/// Spans are matcher records (by index): per record, 8 bytes of layout state
/// (`LaneRecordState`, shared by a generation's layouts); per lane, 28 bytes, in raw
/// storage that grows by doubling; the ring, 4 bytes a bucket. Both are sized by the spans
/// the layout will place, so the many small layouts of `thread-lanes` (one per thread)
/// stay small.
///
/// Busy lanes are found free again by the end of their outermost slice: in a ring of
/// time buckets of 2^`timeShift` ns (a lane sits in the bucket of its end), so that
/// passing a bucket frees its lanes without comparisons, and in a min-heap for the
/// ends beyond the ring and those of the bucket being passed.
final class LaneLayout {
    /// Where a span went.
    struct Placement: Equatable {
        var lane: Int
        /// The lane was created for this span (its descriptor must come first).
        var isNewLane: Bool
    }

    static let none = UInt32.max
    static let openBit: UInt32 = 1 << 31
    /// The most buckets of the ring (a layout of fewer spans has fewer, a power of two).
    static let maxRingSize = 1024
    static let initialLaneCapacity = 1024
    /// The most slices open at once on one lane: Perfetto's trace processor stops pushing
    /// slices at depth 512 (`kMaxDepth`), so a slice begun deeper is never ended there and
    /// every duration on the lane goes wrong (`TraceValidator`'s `depth_limit`).
    static let maxNesting = 512

    /// Lanes created so far.
    @exclusivity(unchecked) private(set) var laneCount = 0
    /// Per record: its lane state and the slice below it (shared by the layouts of one
    /// generation: a record is placed by one layout only).
    private let records: LaneRecordState
    private let state: UnsafeMutablePointer<UInt32>
    private let below: UnsafeMutablePointer<UInt32>
    /// Per lane: the innermost open slice (top of the stack), or `none`.
    @exclusivity(unchecked) private var tops: UnsafeMutablePointer<UInt32>
    /// Per lane: how many slices its stack holds (those still open once the ended ones
    /// above the innermost open slice are popped).
    @exclusivity(unchecked) private var depths: UnsafeMutablePointer<Int32>
    /// Per lane in the ring: the end of its outermost slice, and the next lane of its bucket (-1: none).
    @exclusivity(unchecked) private var laneEnds: UnsafeMutablePointer<Int64>
    @exclusivity(unchecked) private var laneNext: UnsafeMutablePointer<Int32>
    @exclusivity(unchecked) private var laneCapacity = 0
    /// Per bucket of the ring (bucket number mod `ringSize`): its first lane, or -1.
    private let buckets: UnsafeMutablePointer<Int32>
    /// Buckets in the ring (a power of two; any size gives the same placements).
    private let ringSize: Int
    private let timeShift: UInt64
    /// The bucket of the last span placed: the ring holds the lanes ending in buckets
    /// `cursor + 1 ..< cursor + ringSize`.
    @exclusivity(unchecked) private var cursor: Int64 = 0
    /// The busy lanes that are not in the ring, by end.
    @exclusivity(unchecked) private var busy = BusyLanes()
    /// The free lanes.
    @exclusivity(unchecked) private var free = LaneSet()

    /// `typicalGap`: about the time between two begins (sizes the ring's buckets; any
    /// value gives the same placements); `spanCount`: how many spans will be placed;
    /// `records`: the per-record state, for every record the layout may place.
    init(records: LaneRecordState, typicalGap: Int64, spanCount: Int) {
        self.records = records
        state = records.state
        below = records.below
        tops = .allocate(capacity: 1)
        depths = .allocate(capacity: 1)
        laneEnds = .allocate(capacity: 1)
        laneNext = .allocate(capacity: 1)
        var ring = 16
        while ring < Swift.min(spanCount, Self.maxRingSize) { ring <<= 1 }
        ringSize = ring
        buckets = .allocate(capacity: ring)
        buckets.initialize(repeating: -1, count: ring)
        timeShift = UInt64(63 - UInt64(Swift.max(typicalGap, 1)).leadingZeroBitCount)
        // Room for the lanes of most traces up front: placing then allocates nothing (it
        // may run on a worker thread, whose allocations would open a malloc arena of its own).
        grow(to: Swift.min(spanCount, Self.initialLaneCapacity))
    }

    deinit {
        tops.deallocate()
        depths.deallocate()
        laneEnds.deallocate()
        laneNext.deallocate()
        buckets.deallocate()
        busy.deallocate()
        free.deallocate()
    }

    /// Places record `index` (the next in sorted order: begins never decrease), covering
    /// [begin, end] (0 <= begin <= end), whose parent is record `parent` (-1: none or unknown).
    @inline(__always)
    func place(_ index: Int, begin: Int64, end: Int64, parent: Int, _ records: AsyncRecords) -> Placement {
        releaseEnded(by: begin)
        if parent >= 0, parent != index, state[parent] & Self.openBit != 0 {
            let p = records[parent]
            if p.pointee.begin <= begin, end <= p.pointee.end {
                let lane = Int(state[parent] & ~Self.openBit) - 1
                var last = tops[lane]
                var depth = depths[lane]
                while last != Self.none, records[Int(last)].pointee.end <= begin {
                    state[Int(last)] &= ~Self.openBit
                    last = below[Int(last)]
                    depth -= 1
                }
                tops[lane] = last
                depths[lane] = depth
                if state[parent] & Self.openBit != 0, last != Self.none, end <= records[Int(last)].pointee.end,
                   depth < Int32(Self.maxNesting) {
                    push(index, lane)
                    return Placement(lane: lane, isNewLane: false)
                }
            }
        }
        let lane: Int
        let isNew: Bool
        if let freeLane = free.popLowest() {
            lane = freeLane
            isNew = false
        } else {
            lane = laneCount
            if lane == laneCapacity { grow(to: laneCapacity * 2) }
            laneCount += 1
            tops[lane] = Self.none
            depths[lane] = 0
            isNew = true
        }
        push(index, lane)
        // Busy until `end`: in the ring when its bucket is ahead of this one and within reach.
        let bucket = Int64(bitPattern: UInt64(bitPattern: end) >> timeShift)
        if bucket > cursor, bucket - cursor < Int64(ringSize) {
            let b = Int(bucket) & (ringSize - 1)
            laneEnds[lane] = end
            laneNext[lane] = buckets[b]
            buckets[b] = Int32(truncatingIfNeeded: lane)
        } else {
            busy.push(end: end, lane: lane)
        }
        return Placement(lane: lane, isNewLane: isNew)
    }

    /// Frees every busy lane whose outermost slice ended by `time`: the lanes of the
    /// buckets passed since the last span (all ended before this bucket began), those of
    /// this bucket that ended (the others go to the heap), and those of the heap.
    @inline(__always)
    private func releaseEnded(by time: Int64) {
        let bucket = Int64(bitPattern: UInt64(bitPattern: time) >> timeShift)
        if bucket > cursor {
            let steps = Swift.min(bucket - cursor, Int64(ringSize))
            var passed = cursor
            for _ in 0..<steps {
                let b = Int(passed) & (ringSize - 1)
                var lane = buckets[b]
                buckets[b] = -1
                while lane >= 0 {
                    let next = laneNext[Int(lane)]
                    release(Int(lane))
                    lane = next
                }
                passed += 1
            }
            cursor = bucket
        }
        let b = Int(bucket) & (ringSize - 1)
        var lane = buckets[b]
        if lane >= 0 {
            buckets[b] = -1
            while lane >= 0 {
                let next = laneNext[Int(lane)]
                let end = laneEnds[Int(lane)]
                if end <= time { release(Int(lane)) } else { busy.push(end: end, lane: Int(lane)) }
                lane = next
            }
        }
        // (`minEnd` is Int64.max when no lane is busy: a span beginning at Int64.max must
        // not pop an empty heap.)
        while !busy.isEmpty, busy.minEnd <= time { release(busy.popMin()) }
    }

    /// Lane `lane`'s outermost slice has ended: every slice on it is closed, it is free.
    @inline(__always)
    private func release(_ lane: Int) {
        var p = tops[lane]
        while p != Self.none {
            state[Int(p)] &= ~Self.openBit
            p = below[Int(p)]
        }
        tops[lane] = Self.none
        depths[lane] = 0
        free.insert(lane)
    }

    @inline(__always)
    private func push(_ index: Int, _ lane: Int) {
        below[index] = tops[lane]
        tops[lane] = UInt32(truncatingIfNeeded: index)
        depths[lane] &+= 1
        state[index] = UInt32(truncatingIfNeeded: lane + 1) | Self.openBit
    }

    /// Room for `capacity` lanes (there are never more lanes than records, < 2^31).
    private func grow(to capacity: Int) {
        let capacity = Swift.max(1, capacity)
        func grown<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<T> {
            let q = UnsafeMutablePointer<T>.allocate(capacity: capacity)
            q.moveInitialize(from: p, count: laneCount)
            p.deallocate()
            return q
        }
        tops = grown(tops)
        depths = grown(depths)
        laneEnds = grown(laneEnds)
        laneNext = grown(laneNext)
        busy.reserve(capacity)
        free.reserve(capacity)
        laneCapacity = capacity
    }
}

/// Per matcher record, what lane layouts keep (8 bytes): 0 until placed, then its lane + 1,
/// with `LaneLayout.openBit` while it is still open on its lane; and the record below it on
/// its lane's stack of open slices. One for all the layouts of a generation (thread-lanes
/// has one layout per thread), as each record is placed by one layout.
final class LaneRecordState {
    let state: UnsafeMutablePointer<UInt32>
    let below: UnsafeMutablePointer<UInt32>

    init(recordCount: Int) {
        state = .allocate(capacity: Swift.max(recordCount, 1))
        state.initialize(repeating: 0, count: recordCount)
        below = .allocate(capacity: Swift.max(recordCount, 1))
        below.initialize(repeating: LaneLayout.none, count: recordCount)
    }

    deinit {
        state.deallocate()
        below.deallocate()
    }
}

/// Recently placed spans by id (direct-mapped): a child's parent is usually among
/// them, which spares a hash lookup in the span index.
final class RecentSpans {
    static let size = 1024
    private let ids = UnsafeMutablePointer<Int64>.allocate(capacity: size)
    private let indices = UnsafeMutablePointer<Int32>.allocate(capacity: size)

    init() {
        ids.initialize(repeating: 0, count: Self.size)
        indices.initialize(repeating: -1, count: Self.size)
    }

    deinit {
        ids.deallocate()
        indices.deallocate()
    }

    @inline(__always)
    private static func slot(_ id: Int64) -> Int { Int(truncatingIfNeeded: UInt64(bitPattern: id) & UInt64(size - 1)) }

    /// The record index of `id` if it is cached, else -1.
    @inline(__always)
    func get(_ id: Int64) -> Int {
        let s = Self.slot(id)
        return ids[s] == id ? Int(indices[s]) : -1
    }

    @inline(__always)
    func set(_ id: Int64, _ index: Int) {
        let s = Self.slot(id)
        ids[s] = id
        indices[s] = Int32(truncatingIfNeeded: index)
    }
}

/// The order async spans are written in, over matcher record indices.
enum AsyncOrder {
    /// `lanes`: begin, then end descending, depth, span id. Otherwise (micromegas):
    /// begin, then span id. Span ids are unique, so the order is total.
    @inline(__always)
    static func less(_ i: UInt32, _ j: UInt32, _ records: AsyncRecords, lanes: Bool) -> Bool {
        let a = records[Int(i)], b = records[Int(j)]
        let ab = a.pointee.begin, bb = b.pointee.begin
        if ab != bb { return ab < bb }
        if lanes {
            let ae = a.pointee.end, be = b.pointee.end
            if ae != be { return ae > be }
            let ad = a.pointee.depth, bd = b.pointee.depth
            if ad != bd { return ad < bd }
        }
        return records.spanId(Int(i)) < records.spanId(Int(j))
    }

    /// Sorts `order` (record indices; every begin >= 0). A nearly sorted order (time-
    /// ordered events, a few equal begins) is finished by insertion; otherwise a radix
    /// sort by begin, then ties by `less`.
    /// `sortedPrefix`: how many of the first indices are known to be in order already.
    static func sort(_ order: inout [UInt32], _ records: AsyncRecords, lanes: Bool, sortedPrefix: Int = 0) {
        let n = order.count
        guard n > 1 else { return }
        if insertionSort(&order, records, lanes: lanes, budget: n, from: sortedPrefix) { return }
        var minBegin = Int64.max, maxBegin = Int64.min
        for k in 0..<n {
            let b = records[Int(order[k])].pointee.begin
            minBegin = Swift.min(minBegin, b)
            maxBegin = Swift.max(maxBegin, b)
        }
        // Pack (begin - min, position) into one UInt64 when it fits, else compare.
        let range = UInt64(bitPattern: maxBegin &- minBegin)
        let positionBits = UInt64.bitWidth - UInt64(n - 1).leadingZeroBitCount
        guard range.leadingZeroBitCount >= positionBits else {
            order.sort { less($0, $1, records, lanes: lanes) }
            return
        }
        var keys = [UInt64](repeating: 0, count: n)
        for k in 0..<n {
            let b = records[Int(order[k])].pointee.begin
            keys[k] = UInt64(bitPattern: b &- minBegin) << UInt64(positionBits) | UInt64(k)
        }
        radixSort(&keys, fromBit: positionBits)
        let positionMask = (UInt64(1) << UInt64(positionBits)) - 1
        let unsorted = order
        for k in 0..<n { order[k] = unsorted[Int(keys[k] & positionMask)] }
        // Equal begins: order by the rest of the key.
        var k = 0
        while k < n {
            let b = records[Int(order[k])].pointee.begin
            var j = k + 1
            while j < n, records[Int(order[j])].pointee.begin == b { j += 1 }
            if j - k > 1 { order[k..<j].sort { less($0, $1, records, lanes: lanes) } }
            k = j
        }
    }

    /// Insertion sort giving up after `budget` moves (the order is then still a
    /// permutation of the input). True when sorted.
    /// Starts at `from` (the indices before it are in order).
    static func insertionSort(_ order: inout [UInt32], _ records: AsyncRecords, lanes: Bool, budget: Int,
                              from: Int = 1) -> Bool {
        var moves = 0
        return order.withUnsafeMutableBufferPointer { o in
            for k in Swift.max(1, from)..<Swift.max(1, o.count) {
                let x = o[k]
                var j = k
                while j > 0, less(x, o[j - 1], records, lanes: lanes) {
                    o[j] = o[j - 1]
                    j -= 1
                    moves += 1
                }
                o[j] = x
                if moves > budget { return false }
            }
            return true
        }
    }

    /// Stable LSD radix sort by bits `fromBit` and up, 11 bits a pass, skipping digits
    /// where every key is equal.
    static func radixSort(_ keys: inout [UInt64], fromBit: Int) {
        let n = keys.count
        guard n > 1 else { return }
        var differing: UInt64 = 0
        let first = keys[0]
        for key in keys { differing |= key ^ first }
        var scratch = [UInt64](repeating: 0, count: n)
        var counts = [Int](repeating: 0, count: 2048)
        var shift = UInt64(fromBit)
        while shift < 64 {
            if (differing >> shift) & 0x7FF != 0 {
                keys.withUnsafeMutableBufferPointer { src in
                    scratch.withUnsafeMutableBufferPointer { dst in
                        counts.withUnsafeMutableBufferPointer { c in
                            for i in 0..<2048 { c[i] = 0 }
                            for key in src { c[Int((key >> shift) & 0x7FF)] += 1 }
                            var total = 0
                            for i in 0..<2048 {
                                let count = c[i]
                                c[i] = total
                                total += count
                            }
                            for key in src {
                                let digit = Int((key >> shift) & 0x7FF)
                                dst[c[digit]] = key
                                c[digit] += 1
                            }
                        }
                    }
                }
                swap(&keys, &scratch)
            }
            shift += 11
        }
    }
}

/// A set of lane numbers (a bitset) that gives back its lowest first. Raw storage:
/// `reserve` before inserting lanes, `deallocate` at the end.
struct LaneSet {
    private var words = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
    private var wordCount = 0
    /// No word below this one has a bit set.
    private var firstWord = 0

    /// Room for lanes 0 ..< `capacity` (growing).
    mutating func reserve(_ capacity: Int) {
        let count = (capacity + 63) >> 6
        guard count > wordCount else { return }
        let grown = UnsafeMutablePointer<UInt64>.allocate(capacity: count)
        grown.update(from: words, count: wordCount)
        (grown + wordCount).initialize(repeating: 0, count: count - wordCount)
        words.deallocate()
        words = grown
        wordCount = count
    }

    func deallocate() { words.deallocate() }

    @inline(__always)
    mutating func insert(_ lane: Int) {
        let w = lane >> 6
        words[w] |= 1 << UInt64(lane & 63)
        firstWord = Swift.min(firstWord, w)
    }

    @inline(__always)
    mutating func popLowest() -> Int? {
        while firstWord < wordCount {
            let word = words[firstWord]
            if word != 0 {
                words[firstWord] = word & (word - 1)
                return firstWord << 6 | word.trailingZeroBitCount
            }
            firstWord += 1
        }
        return nil
    }
}

/// Lanes in use, by the end of their outermost slice: a 4-ary min-heap on ends (half
/// the depth of a binary one; the four children share a cache line). Lanes ending at the
/// same time are freed by the same `place`, so ties may come out in any order. Raw
/// storage: `reserve` room for every lane, `deallocate` at the end.
struct BusyLanes {
    private var ends = UnsafeMutablePointer<Int64>.allocate(capacity: 1)
    private var lanes = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    private var count = 0
    private var capacity = 0

    /// The smallest end, or Int64.max when no lane is busy.
    var minEnd: Int64 {
        @inline(__always) get { count > 0 ? ends[0] : Int64.max }
    }

    var isEmpty: Bool {
        @inline(__always) get { count == 0 }
    }

    mutating func reserve(_ newCapacity: Int) {
        guard newCapacity > capacity else { return }
        let e = UnsafeMutablePointer<Int64>.allocate(capacity: newCapacity)
        let l = UnsafeMutablePointer<Int32>.allocate(capacity: newCapacity)
        e.update(from: ends, count: count)
        l.update(from: lanes, count: count)
        ends.deallocate()
        lanes.deallocate()
        ends = e
        lanes = l
        capacity = newCapacity
    }

    func deallocate() {
        ends.deallocate()
        lanes.deallocate()
    }

    /// Adds `lane` (one of the reserved lanes, not already busy).
    @inline(__always)
    mutating func push(end: Int64, lane: Int) {
        let i = count
        count += 1
        rise(from: i, end: end, lane: Int32(truncatingIfNeeded: lane))
    }

    /// Puts (`end`, `lane`) in the hole at `i`, moving it up past the parents that end later.
    @inline(__always)
    private func rise(from start: Int, end: Int64, lane: Int32) {
        let e = ends, l = lanes
        var i = start
        while i > 0 {
            let parent = (i - 1) >> 2
            guard end < e[parent] else { break }
            e[i] = e[parent]
            l[i] = l[parent]
            i = parent
        }
        e[i] = end
        l[i] = lane
    }

    /// Removes the lane with the smallest end (the heap is not empty). The hole goes
    /// down to a leaf by the smallest child (selected without branches), then the last
    /// element rises from there.
    @inline(__always)
    mutating func popMin() -> Int {
        let lane = Int(lanes[0])
        count -= 1
        let n = count
        guard n > 0 else { return lane }
        let lastEnd = ends[n], lastLane = lanes[n]
        let e = ends, l = lanes
        var i = 0
        while 4 * i + 4 < n {
            let c = 4 * i + 1
            let a = e[c] <= e[c + 1] ? c : c + 1
            let b = e[c + 2] <= e[c + 3] ? c + 2 : c + 3
            let m = e[a] <= e[b] ? a : b
            e[i] = e[m]
            l[i] = l[m]
            i = m
        }
        let c = 4 * i + 1
        if c < n {
            var m = c
            var k = c + 1
            while k < n {
                if e[k] < e[m] { m = k }
                k += 1
            }
            e[i] = e[m]
            l[i] = l[m]
            i = m
        }
        rise(from: i, end: lastEnd, lane: lastLane)
        return lane
    }
}
