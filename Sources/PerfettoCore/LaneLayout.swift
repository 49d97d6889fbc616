/// Spreads overlapping async spans over lane tracks so that on every lane slices nest
/// or are disjoint (docs/async-spans.md, layout `lanes`).
///
/// Spans are placed in the order `sortForLanes` gives (begin, then longer first, then
/// shallower, then span id). A child goes on its parent's lane, nested, when it lies
/// within the parent and within the innermost slice still open there; any other span
/// takes the lowest-numbered free lane, and a new lane only when none is free. A lane
/// is free once its outermost slice has ended, so lanes never outnumber the spans open
/// at one instant.
public struct LaneLayout {
    /// Where a span went.
    public struct Placement: Equatable {
        public var lane: Int
        /// The lane was created for this span (its descriptor must come first).
        public var isNewLane: Bool
    }

    struct BusyLane: Comparable {
        var end: Int64
        var lane: Int
        static func < (a: BusyLane, b: BusyLane) -> Bool { (a.end, a.lane) < (b.end, b.lane) }
    }

    /// Lanes created so far.
    public private(set) var laneCount = 0
    /// Per lane, the placed spans still open there, outermost first (indices into placements).
    private var stacks: [[Int]] = []
    private var busy = MinHeap<BusyLane>()
    private var free = MinHeap<Int>()
    /// Per placed span: its lane, end, and whether it is still open on its lane.
    private var lanes: [Int] = []
    private var ends: [Int64] = []
    private var begins: [Int64] = []
    private var open: [Bool] = []
    private var placedBySpanId = IdMap()

    public init() {}

    /// The order spans must be placed in.
    public static func sortForLanes(_ spans: inout [AsyncMatcher.Span]) {
        spans.sort { a, b in
            if a.begin != b.begin { return a.begin < b.begin }
            if a.end != b.end { return a.end > b.end }
            if a.depth != b.depth { return a.depth < b.depth }
            return a.spanId < b.spanId
        }
    }

    /// Places the next span (in `sortForLanes` order).
    public mutating func place(_ span: AsyncMatcher.Span) -> Placement {
        let position = lanes.count
        // Lanes whose outermost slice ended by now are free again.
        while let top = busy.min, top.end <= span.begin {
            _ = busy.popMin()
            for p in stacks[top.lane] { open[p] = false }
            stacks[top.lane].removeAll(keepingCapacity: true)
            free.push(top.lane)
        }
        var placement: Placement?
        let parent = Int(placedBySpanId.get(UInt64(bitPattern: span.parentSpanId))) - 1
        if span.parentSpanId != span.spanId, parent >= 0, open[parent],
           begins[parent] <= span.begin, span.end <= ends[parent] {
            let lane = lanes[parent]
            while let last = stacks[lane].last, ends[last] <= span.begin {
                open[last] = false
                stacks[lane].removeLast()
            }
            if open[parent], let last = stacks[lane].last, span.end <= ends[last] {
                stacks[lane].append(position)
                placement = Placement(lane: lane, isNewLane: false)
            }
        }
        if placement == nil {
            let lane: Int
            let isNew: Bool
            if let freeLane = free.popMin() {
                lane = freeLane
                isNew = false
            } else {
                lane = laneCount
                laneCount += 1
                stacks.append([])
                isNew = true
            }
            stacks[lane].append(position)
            busy.push(BusyLane(end: span.end, lane: lane))
            placement = Placement(lane: lane, isNewLane: isNew)
        }
        let result = placement ?? Placement(lane: 0, isNewLane: false)
        lanes.append(result.lane)
        ends.append(span.end)
        begins.append(span.begin)
        open.append(true)
        placedBySpanId.set(UInt64(bitPattern: span.spanId), UInt64(position + 1))
        return result
    }
}

/// A binary min-heap.
struct MinHeap<Element: Comparable> {
    private var items: [Element] = []

    var min: Element? { items.first }
    var isEmpty: Bool { items.isEmpty }

    mutating func push(_ element: Element) {
        items.append(element)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i] < items[parent] else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func popMin() -> Element? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var smallest = i
                if l < items.count, items[l] < items[smallest] { smallest = l }
                if r < items.count, items[r] < items[smallest] { smallest = r }
                if smallest == i { break }
                items.swapAt(i, smallest)
                i = smallest
            }
        }
        return first
    }
}
