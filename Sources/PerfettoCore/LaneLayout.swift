/// Spreads overlapping async spans over lane tracks so that on every lane slices nest
/// or are disjoint (docs/async-spans.md, layout `lanes`).
///
/// Spans are placed in the order `AsyncOrder.sort` gives for lanes (begin, then longer
/// first, then shallower, then span id). A child goes on its parent's lane, nested, when
/// it lies within the parent and within the innermost slice still open there; any other
/// span takes the lowest-numbered free lane, and a new lane only when none is free. A
/// lane is free once its outermost slice has ended, so lanes never outnumber the spans
/// open at one instant.
///
/// Spans are matcher records (by index): per record, 8 bytes of layout state.
struct LaneLayout {
    /// Where a span went.
    struct Placement: Equatable {
        var lane: Int
        /// The lane was created for this span (its descriptor must come first).
        var isNewLane: Bool
    }

    static let none = UInt32.max
    static let openBit: UInt32 = 1 << 31

    /// Lanes created so far.
    private(set) var laneCount = 0
    /// Per record: 0 until placed, then its lane + 1, with `openBit` while it is still
    /// open on its lane.
    private let state: UnsafeMutablePointer<UInt32>
    /// Per record: the record below it on its lane's stack of open slices.
    private let below: UnsafeMutablePointer<UInt32>
    private let recordCount: Int
    /// Per lane: the innermost open slice (top of the stack), or `none`.
    private var tops: [UInt32] = []
    private var busy = BusyLanes()
    private var free = LaneSet()

    init(recordCount: Int) {
        self.recordCount = recordCount
        state = .allocate(capacity: Swift.max(recordCount, 1))
        state.initialize(repeating: 0, count: recordCount)
        below = .allocate(capacity: Swift.max(recordCount, 1))
        below.initialize(repeating: Self.none, count: recordCount)
    }

    /// Frees the per-record state (the layout is not used afterwards).
    func deallocate() {
        state.deallocate()
        below.deallocate()
    }

    /// Places record `index` (the next in sorted order), covering [begin, end], whose
    /// parent is record `parent` (-1: none or unknown).
    @inline(__always)
    mutating func place(_ index: Int, begin: Int64, end: Int64, parent: Int,
                        _ records: AsyncRecords) -> Placement {
        // Lanes whose outermost slice ended by now are free again.
        while busy.minEnd <= begin {
            let lane = busy.popMin()
            var p = tops[lane]
            while p != Self.none {
                state[Int(p)] &= ~Self.openBit
                p = below[Int(p)]
            }
            tops[lane] = Self.none
            free.insert(lane)
        }
        if parent >= 0, parent != index, state[parent] & Self.openBit != 0 {
            let p = records[parent].pointee
            if p.begin <= begin, end <= p.end {
                let lane = Int(state[parent] & ~Self.openBit) - 1
                var last = tops[lane]
                while last != Self.none, records[Int(last)].pointee.end <= begin {
                    state[Int(last)] &= ~Self.openBit
                    last = below[Int(last)]
                }
                tops[lane] = last
                if state[parent] & Self.openBit != 0, last != Self.none, end <= records[Int(last)].pointee.end {
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
            laneCount += 1
            tops.append(Self.none)
            isNew = true
        }
        push(index, lane)
        busy.push(end: end, lane: lane)
        return Placement(lane: lane, isNewLane: isNew)
    }

    @inline(__always)
    private mutating func push(_ index: Int, _ lane: Int) {
        below[index] = tops[lane]
        tops[lane] = UInt32(truncatingIfNeeded: index)
        state[index] = UInt32(truncatingIfNeeded: lane + 1) | Self.openBit
    }
}

/// Recently placed spans by id (direct-mapped): a child's parent is usually among
/// them, which spares a hash lookup in the span index.
struct RecentSpans {
    static let size = 1024
    private var ids = [Int64](repeating: 0, count: size)
    private var indices = [Int32](repeating: -1, count: size)

    @inline(__always)
    private static func slot(_ id: Int64) -> Int { Int(truncatingIfNeeded: UInt64(bitPattern: id) & UInt64(size - 1)) }

    /// The record index of `id` if it is cached, else -1.
    @inline(__always)
    func get(_ id: Int64) -> Int {
        let s = Self.slot(id)
        return ids[s] == id ? Int(indices[s]) : -1
    }

    @inline(__always)
    mutating func set(_ id: Int64, _ index: Int) {
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
    static func sort(_ order: inout [UInt32], _ records: AsyncRecords, lanes: Bool) {
        let n = order.count
        guard n > 1 else { return }
        if insertionSort(&order, records, lanes: lanes, budget: n) { return }
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
    static func insertionSort(_ order: inout [UInt32], _ records: AsyncRecords, lanes: Bool, budget: Int) -> Bool {
        var moves = 0
        return order.withUnsafeMutableBufferPointer { o in
            for k in 1..<o.count {
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

/// A set of lane numbers (a bitset) that gives back its lowest first.
struct LaneSet {
    private var words: [UInt64] = []
    /// No word below this one has a bit set.
    private var firstWord = 0

    mutating func insert(_ lane: Int) {
        let w = lane >> 6
        if w >= words.count { words.append(contentsOf: repeatElement(0, count: w + 1 - words.count)) }
        words[w] |= 1 << UInt64(lane & 63)
        firstWord = Swift.min(firstWord, w)
    }

    mutating func popLowest() -> Int? {
        while firstWord < words.count {
            let word = words[firstWord]
            if word != 0 {
                let bit = word.trailingZeroBitCount
                words[firstWord] = word & (word - 1)
                return firstWord << 6 | bit
            }
            firstWord += 1
        }
        return nil
    }
}

/// The lanes in use, by the end of their outermost slice: a binary min-heap on ends.
/// Lanes ending at the same time are freed by the same `place`, so ties may come out
/// in any order.
struct BusyLanes {
    private var ends: [Int64] = []
    private var lanes: [Int32] = []

    /// The smallest end, or Int64.max when no lane is busy.
    var minEnd: Int64 { ends.first ?? Int64.max }

    mutating func push(end: Int64, lane: Int) {
        ends.append(end)
        lanes.append(Int32(truncatingIfNeeded: lane))
        ends.withUnsafeMutableBufferPointer { e in
            lanes.withUnsafeMutableBufferPointer { l in
                var i = e.count - 1
                while i > 0 {
                    let parent = (i - 1) >> 1
                    guard end < e[parent] else { break }
                    e[i] = e[parent]
                    l[i] = l[parent]
                    i = parent
                }
                e[i] = end
                l[i] = Int32(truncatingIfNeeded: lane)
            }
        }
    }

    /// Removes the lane with the smallest end (the heap is not empty). The hole goes
    /// down to a leaf by the smaller child (no comparison with the moved element on the
    /// way: fewer unpredictable branches), then the last element rises from there.
    mutating func popMin() -> Int {
        let lane = Int(lanes[0])
        let lastEnd = ends.removeLast(), lastLane = lanes.removeLast()
        ends.withUnsafeMutableBufferPointer { e in
            lanes.withUnsafeMutableBufferPointer { l in
                let n = e.count
                guard n > 0 else { return }
                var i = 0
                while 2 * i + 2 < n {
                    let left = 2 * i + 1
                    // The smaller child without a branch (ends are >= 0: no overflow).
                    let child = left + 1 + Int(truncatingIfNeeded: (e[left] &- e[left + 1]) >> 63)
                    e[i] = e[child]
                    l[i] = l[child]
                    i = child
                }
                if 2 * i + 1 < n {
                    e[i] = e[2 * i + 1]
                    l[i] = l[2 * i + 1]
                    i = 2 * i + 1
                }
                while i > 0 {
                    let parent = (i - 1) >> 1
                    guard lastEnd < e[parent] else { break }
                    e[i] = e[parent]
                    l[i] = l[parent]
                    i = parent
                }
                e[i] = lastEnd
                l[i] = lastLane
            }
        }
        return lane
    }
}
