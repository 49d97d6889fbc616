/// How Perfetto's trace processor rebuilds the slices of one track, replayed on the
/// track's begin and end events (see `TraceValidator` for what is modelled and why).
///
/// Events are processed in (timestamp, file order), as the trace processor's sorter
/// delivers them. To stream, events are held back only while an earlier one may still
/// arrive. A track's slice begins are expected in timestamp order give or take `window`
/// begins: an event is released once it is no later than the earliest of the track's last
/// `window` begins, so a begin that arrives late by fewer than `window` begins is still
/// placed right. Held events are those last begins and the ends of slices open across
/// them. When the validator holds too many events (many short tracks), it turns the lag
/// off (`stopLagging`): events are then released as soon as a begin passes them, which is
/// exact for begins in order and keeps only the ends of open slices.
final class SliceTrackModel {
    /// The depth at which Perfetto stops pushing slices (`kMaxDepth`).
    static let maxDepth = 512
    /// Sentinel end: the slice has no end (pending in Perfetto, or no end in the file).
    static let open = Int64.min

    struct Event {
        var ts: Int64
        var seq: Int64
        var isEnd: Bool
        var name: Int32
        var category: Int32
        /// Begin: the slice id. End: the slice this end pairs with in file order, or -1.
        var slice: Int64
        var offset: Int64
    }

    struct StackEntry {
        var slice: Int64
        var ts: Int64
        /// `open` while pending.
        var end: Int64
        var name: Int32
        var category: Int32
        var offset: Int64
    }

    /// A slice whose shown end is known before the file's own end for it arrived.
    struct Shown {
        var end: Int64
        var ts: Int64
        var name: Int32
        var offset: Int64
    }

    /// How many of a track's latest begins a late begin may precede and still be placed right.
    static let window = 256

    let uuid: UInt64
    /// Held ends, and begins that arrived out of order.
    private var heap: [Event] = []
    /// Held begins that arrived in order (a FIFO from `beginsHead`).
    private var begins: [Event] = []
    private var beginsHead = 0
    /// The earliest of the last `window` begins: a monotonic queue of (arrival number, ts).
    private var windowMin: [(Int, Int64)] = []
    private var windowHead = 0
    private var beginCount = 0
    private var maxBeginTs = Int64.min
    private var lagging: Bool
    /// Events at or before this are released.
    private var watermark = Int64.min
    private var lastProcessedTs = Int64.min
    private(set) var stack: [StackEntry] = []
    /// Begins not yet paired with an end, in file order: (slice, name, category).
    private var fileOpen: [(Int64, Int32, Int32)] = []
    /// Slice -> the end timestamp the file gives it, until the slice's shown end is final.
    private var writtenEnd = SliceMap<Int64>()
    /// Slice -> its final shown end, until the file's end for it arrives.
    private var shownEnd = SliceMap<Shown>()

    init(uuid: UInt64, lagging: Bool) {
        self.uuid = uuid
        self.lagging = lagging
    }

    /// Events held back, waiting for their turn.
    var held: Int { heap.count + begins.count - beginsHead }

    // MARK: - Arrival (file order)

    /// A slice begin arrives; `slice` is its new id.
    func arriveBegin(_ e: Event, _ v: ValidationState) {
        fileOpen.append((e.slice, e.name, e.category))
        beginCount += 1
        if e.ts > maxBeginTs { maxBeginTs = e.ts }
        if e.ts <= watermark {
            process(e, v)  // every held event is later
            return
        }
        if beginsHead < begins.count, let last = begins.last, e.ts < last.ts {
            push(e)
        } else {
            begins.append(e)
        }
        var bound = maxBeginTs
        if lagging {
            while windowMin.count > windowHead, let last = windowMin.last, last.1 >= e.ts { windowMin.removeLast() }
            windowMin.append((beginCount, e.ts))
            while windowMin[windowHead].0 <= beginCount - Self.window { windowHead += 1 }
            if windowHead > 1024 && windowHead * 2 > windowMin.count {
                windowMin.removeFirst(windowHead)
                windowHead = 0
            }
            bound = beginCount >= Self.window ? windowMin[windowHead].1 : Int64.min
        }
        if bound > watermark { watermark = bound }
        release(upTo: watermark, v)
    }

    /// Releases events as soon as a begin passes them (no lag) from now on.
    func stopLagging(_ v: ValidationState) {
        guard lagging else { return }
        lagging = false
        windowMin = []
        windowHead = 0
        if maxBeginTs > watermark { watermark = maxBeginTs }
        release(upTo: watermark, v)
    }

    /// A slice end arrives: it is paired in file order with the latest unpaired begin
    /// it can end (same matching rule as Perfetto's), then replayed in time order.
    func arriveEnd(_ e: Event, _ v: ValidationState) {
        var event = e
        event.slice = -1
        var i = fileOpen.count - 1
        while i >= 0 {
            let (slice, name, category) = fileOpen[i]
            if Self.matches(endName: e.name, endCategory: e.category, name: name, category: category) {
                event.slice = slice
                fileOpen.remove(at: i)
                written(slice: slice, end: e.ts, v)
                break
            }
            i -= 1
        }
        if e.ts <= watermark {
            // Held events are all later than the watermark: this one goes first.
            process(event, v)
        } else {
            push(event)
        }
    }

    /// End of the trace: replays what is held, then settles every slice.
    func finish(_ v: ValidationState) {
        release(upTo: Int64.max, v)
        for entry in stack {
            if entry.end == Self.open { v.report.openAtEnd += 1 }
            settle(entry.slice, shown: entry.end, ts: entry.ts, name: entry.name, offset: entry.offset, v)
        }
        stack.removeAll()
        // Slices shown with an end the file never gave them.
        for (_, shown) in shownEnd.entries.sorted(by: { $0.0 < $1.0 }) {
            compare(shown: shown.end, written: Self.open, ts: shown.ts, name: shown.name, offset: shown.offset, v)
        }
        shownEnd.removeAll()
        writtenEnd.removeAll()
    }

    // MARK: - Perfetto's SliceTracker

    /// Perfetto's MatchingIncompleteSliceIndex rule: a null end category/name matches any;
    /// otherwise the category must be equal (and the slice's set), the name equal unless
    /// the slice has none.
    @inline(__always)
    static func matches(endName: Int32, endCategory: Int32, name: Int32, category: Int32) -> Bool {
        if endCategory != 0 && category != endCategory { return false }
        if endName != 0 && name != 0 && name != endName { return false }
        return true
    }

    private func process(_ e: Event, _ v: ValidationState) {
        if e.ts < lastProcessedTs { v.report.outOfOrderEvents += 1 }
        if e.ts > lastProcessedTs { lastProcessedTs = e.ts }
        maybeCloseStack(e.ts, trigger: e.offset, v)
        if e.isEnd {
            var i = stack.count - 1
            while i >= 0 {
                let s = stack[i]
                if s.end == Self.open
                    && Self.matches(endName: e.name, endCategory: e.category, name: s.name, category: s.category) {
                    break
                }
                i -= 1
            }
            guard i >= 0 else {
                v.problem(.unmatchedEnd, e.offset,
                          "end of '\(v.string(e.name))' at ts \(e.ts) closes no open slice on track \(uuid)")
                return
            }
            stack[i].end = e.ts
            if i == stack.count - 1 { pop(v) }
        } else {
            let depth = stack.count
            if depth >= Self.maxDepth {
                v.problem(.depthLimit, e.offset,
                          "slice '\(v.string(e.name))' at ts \(e.ts) begins at depth \(depth) on track \(uuid); "
                          + "Perfetto stops at \(Self.maxDepth) and never ends it")
                settle(e.slice, shown: Self.open, ts: e.ts, name: e.name, offset: e.offset, v)
                return
            }
            stack.append(StackEntry(slice: e.slice, ts: e.ts, end: Self.open, name: e.name,
                                    category: e.category, offset: e.offset))
            if stack.count > v.report.maxDepth { v.report.maxDepth = stack.count }
        }
    }

    /// Perfetto's MaybeCloseStack for an event at `ts` with a pending duration (a begin or an end).
    private func maybeCloseStack(_ ts: Int64, trigger: Int64, _ v: ValidationState) {
        var incompleteDescendant = false
        var i = stack.count - 1
        while i >= 0 {
            let s = stack[i]
            if s.end == Self.open {
                incompleteDescendant = true
                i -= 1
                continue
            }
            if incompleteDescendant {
                if ts <= s.end { i -= 1; continue }
                // misplaced_end_event: every slice above this one is cut at its end.
                let cut = stack.count - 1 - i
                v.problem(.misplacedEndEvent, trigger,
                          "event at ts \(ts) passes the end (\(s.end)) of '\(v.string(s.name))' on track \(uuid), "
                          + "still under \(cut) open slice\(cut == 1 ? "" : "s"), which Perfetto cuts off there")
                var j = stack.count - 1
                while j > i {
                    stack[j].end = s.end
                    pop(v)
                    j -= 1
                }
                pop(v)
                incompleteDescendant = false
                i -= 1
                continue
            }
            // Ended before (or at) the new event: popped. Perfetto pops the top here.
            if s.end <= ts {
                pop(v)
                i -= 1
                continue
            }
            i -= 1
        }
    }

    private func pop(_ v: ValidationState) {
        guard let top = stack.popLast() else { return }
        settle(top.slice, shown: top.end, ts: top.ts, name: top.name, offset: top.offset, v)
    }

    // MARK: - Shown vs written durations

    /// The file's end for `slice` arrived.
    private func written(slice: Int64, end: Int64, _ v: ValidationState) {
        if let shown = shownEnd.remove(slice) {
            compare(shown: shown.end, written: end, ts: shown.ts, name: shown.name, offset: shown.offset, v)
        } else {
            writtenEnd.set(slice, end)
        }
    }

    /// The shown end of `slice` is final (it left the stack, or the trace ended).
    private func settle(_ slice: Int64, shown: Int64, ts: Int64, name: Int32, offset: Int64, _ v: ValidationState) {
        if let end = writtenEnd.remove(slice) {
            compare(shown: shown, written: end, ts: ts, name: name, offset: offset, v)
        } else {
            shownEnd.set(slice, Shown(end: shown, ts: ts, name: name, offset: offset))
        }
    }

    private func compare(shown: Int64, written: Int64, ts: Int64, name: Int32, offset: Int64, _ v: ValidationState) {
        guard shown != written else { return }
        v.problem(.wrongDuration, offset,
                  "slice '\(v.string(name))' at ts \(ts) on track \(uuid): Perfetto shows "
                  + Self.duration(shown, ts) + ", the trace says " + Self.duration(written, ts))
    }

    private static func duration(_ end: Int64, _ ts: Int64) -> String {
        end == open ? "no end" : "duration \(end &- ts)"
    }

    // MARK: - Held events (a binary min-heap on (ts, seq))

    @inline(__always)
    private static func less(_ a: Event, _ b: Event) -> Bool { a.ts < b.ts || (a.ts == b.ts && a.seq < b.seq) }

    private func push(_ e: Event) {
        heap.append(e)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.less(heap[i], heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    /// Replays held events up to `ts`, in (ts, seq) order: the in-order begins and the heap merged.
    private func release(upTo ts: Int64, _ v: ValidationState) {
        while beginsHead < begins.count {
            let b = begins[beginsHead]
            guard b.ts <= ts else { break }
            if let h = heap.first, h.ts <= ts, Self.less(h, b) {
                process(popHeap(), v)
            } else {
                beginsHead += 1
                process(b, v)
            }
        }
        if beginsHead == begins.count {
            begins.removeAll(keepingCapacity: true)
            beginsHead = 0
        } else if beginsHead > 1024 && beginsHead * 2 > begins.count {
            begins.removeFirst(beginsHead)
            beginsHead = 0
        }
        while let h = heap.first, h.ts <= ts { process(popHeap(), v) }
    }

    private func popHeap() -> Event {
        let first = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            let n = heap.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && Self.less(heap[l], heap[m]) { m = l }
                if r < n && Self.less(heap[r], heap[m]) { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        return first
    }
}

/// An open-addressing map from non-negative Int64 keys (slice ids) to values, with
/// deletion (backward shift, no tombstones): the short-lived per-slice records of the
/// model, without hashing through `Hasher`. Empty until the first `set` (every track has
/// two, and a trace may have millions of tracks).
struct SliceMap<Value> {
    private var keys: [Int64] = []
    private var values: [Value?] = []
    private var mask = -1
    private(set) var count = 0

    init() {}

    @inline(__always)
    private func slot(_ key: Int64) -> Int {
        Int(truncatingIfNeeded: (UInt64(bitPattern: key) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    mutating func set(_ key: Int64, _ value: Value) {
        if (count + 1) * 2 > mask + 1 { grow() }
        var i = slot(key)
        while keys[i] >= 0 && keys[i] != key { i = (i + 1) & mask }
        if keys[i] < 0 { count += 1 }
        keys[i] = key
        values[i] = value
    }

    /// Removes `key` and returns its value, if present.
    mutating func remove(_ key: Int64) -> Value? {
        guard count > 0 else { return nil }
        var i = slot(key)
        while keys[i] != key {
            if keys[i] < 0 { return nil }
            i = (i + 1) & mask
        }
        let value = values[i]
        // Backward-shift the cluster after i.
        var hole = i
        var j = (i + 1) & mask
        while keys[j] >= 0 {
            let home = slot(keys[j])
            // Move j into the hole if its home is not in (hole, j].
            let inRange = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j)
            if !inRange {
                keys[hole] = keys[j]
                values[hole] = values[j]
                hole = j
            }
            j = (j + 1) & mask
        }
        keys[hole] = -1
        values[hole] = nil
        count -= 1
        return value
    }

    /// Every entry, in no particular order.
    var entries: [(Int64, Value)] {
        var out: [(Int64, Value)] = []
        for i in keys.indices where keys[i] >= 0 { if let v = values[i] { out.append((keys[i], v)) } }
        return out
    }

    mutating func removeAll() { self = SliceMap() }

    private mutating func grow() {
        let old = entries
        let size = Swift.max(8, (mask + 1) * 2)
        keys = [Int64](repeating: -1, count: size)
        values = [Value?](repeating: nil, count: size)
        mask = size - 1
        count = 0
        for (k, v) in old { set(k, v) }
    }
}
