/// What the lanes layouts (`lanes`, `thread-lanes`) write beyond micromegas' own bytes:
/// explicit merge keys on lane tracks, span ids as debug annotations, parent -> child
/// flows; and the `thread-lanes` layout itself. The `micromegas` layout writes none of it.
public struct AsyncOptions: Sendable, Equatable {
    /// `span_id` and `parent_span_id` debug annotations on each async slice.
    public var spanArgs: Bool
    /// A flow from each async span whose parent is in the trace to it.
    public var flows: Bool

    public init(spanArgs: Bool = true, flows: Bool = true) {
        self.spanArgs = spanArgs
        self.flows = flows
    }
}

extension TraceWriter {
    /// The `Async Operations` track descriptor with an explicit merge key. Written once.
    public func emitAsyncTrackDescriptor(mergeKey: String) throws(PerfettoError) {
        try checkRunning()
        guard !asyncTrackDescribed else { return }
        try emitTrackDescriptor(uuid: asyncTrackUUID, name: Self.asyncTrackName, parent: processTrackUUID, counter: nil,
                                mergeKey: mergeKey)
        asyncTrackDescribed = true
    }
}

/// The flows of the written spans: for record `i`, the ids of the flows starting at it
/// (one per child in the trace written after it) and the id of the flow ending at it (0
/// when its parent is not in the trace, or is written after it: a child that begins before
/// its parent, which Perfetto cannot connect, as it reads a flow's end before its start).
/// A flow's id is derived from its child's span id, which is unique among the spans, so
/// ids are unique in the trace and deterministic.
struct FlowPlan {
    /// Children's flow ids, grouped by parent record: those of record `i` are
    /// `ids[starts[i] ..< starts[i + 1]]`. Empty when flows are off.
    private var starts: [Int32] = []
    private var ids = FlowIds(count: 0)
    private var terminating: [UInt64] = []

    /// `order`: the indices of the records written; `parents`: each one's parent record
    /// (`TraceGenerator.findParents`).
    init(order: [UInt32], records: AsyncRecords, parents: UnsafeBufferPointer<Int32>, enabled: Bool,
         processTrack: UInt64) throws(PerfettoError) {
        guard enabled, !order.isEmpty else { return }
        let n = records.count
        guard n < Int(Int32.max) - 2, parents.count == n, order.count < Int(Int32.max) else { throw .outOfMemory }
        // Whether each record was met already, going through `order` (written order): a
        // parent met before its child is written before it, the one case with a flow.
        var met = [Bool](repeating: false, count: n)
        // Per position in `order`: the record a flow comes from to the span there, or -1.
        var flowParents = [Int32](repeating: -1, count: order.count)
        // Children are counted at starts[p + 2]; after the prefix sums starts[p + 1] is where
        // p's group begins, and filling the groups moves it to where the group ends, so that
        // in the end p's group is starts[p] ..< starts[p + 1].
        var starts = [Int32](repeating: 0, count: n + 2)
        var terminating = [UInt64](repeating: 0, count: n)
        var ids = FlowIds(count: 0)
        order.withUnsafeBufferPointer { order in
            met.withUnsafeMutableBufferPointer { met in
                flowParents.withUnsafeMutableBufferPointer { flowParents in
                    starts.withUnsafeMutableBufferPointer { starts in
                        for (k, record) in order.enumerated() {
                            let i = Int(record)
                            let p = Int(parents[i])
                            if p >= 0 && p != i && met[p] {
                                flowParents[k] = Int32(truncatingIfNeeded: p)
                                starts[p + 2] += 1
                            }
                            met[i] = true
                        }
                        for i in 0...n { starts[i + 1] += starts[i] }
                        ids = FlowIds(count: Int(starts[n + 1]))
                        let idBuffer = ids.buffer
                        terminating.withUnsafeMutableBufferPointer { terminating in
                            for (k, record) in order.enumerated() {  // children in written order
                                let p = Int(flowParents[k])
                                guard p >= 0 else { continue }
                                let i = Int(record)
                                let id = Self.flowId(childSpanId: records.spanId(i), processTrack: processTrack)
                                idBuffer[Int(starts[p + 1])] = id
                                starts[p + 1] += 1
                                terminating[i] = id
                            }
                        }
                    }
                }
            }
        }
        self.starts = starts
        self.ids = ids
        self.terminating = terminating
    }

    /// The flow id of the flow ending at the span `childSpanId`: never 0.
    static func flowId(childSpanId: Int64, processTrack: UInt64) -> UInt64 {
        let id = XXH64.hash(UInt64(bitPattern: childSpanId), seed: processTrack ^ 0x666C_6F77)  // "flow"
        return id == 0 ? 1 : id
    }

    var isEmpty: Bool { starts.isEmpty }

    /// The flows starting at span `i` (nil: none) and the one ending there (0: none). The
    /// ids stay valid while this plan is alive.
    @inline(__always)
    func flows(_ i: Int) -> (starting: UnsafeBufferPointer<UInt64>?, ending: UInt64) {
        guard !starts.isEmpty else { return (nil, 0) }
        let from = Int(starts[i]), to = Int(starts[i + 1])
        if from == to { return (nil, terminating[i]) }
        return (UnsafeBufferPointer(rebasing: UnsafeBufferPointer(ids.buffer)[from..<to]), terminating[i])
    }
}

/// The children's flow ids of a `FlowPlan`, in storage of their own (zeroed), so that a
/// span's ids are handed out as a pointer, without a closure.
final class FlowIds {
    let buffer: UnsafeMutableBufferPointer<UInt64>

    init(count: Int) {
        buffer = .allocate(capacity: Swift.max(count, 0))
        buffer.initialize(repeating: 0)
    }

    deinit { buffer.deallocate() }
}

/// What the calling thread hands the placing worker once the spans are ordered: written
/// before `orderReady` is raised, read by the worker after it sees the raise.
private final class PlacementInput {
    @exclusivity(unchecked) var order: [UInt32] = []
    @exclusivity(unchecked) var place: ((Int) -> LaneLayout.Placement)?
}

extension TraceGenerator {
    /// Fills `parents` (one per record, all -1) with the index of each record's parent span's
    /// record (-1: no parent, or not among the records). A child's parent is usually among
    /// the spans just before it (a direct-mapped cache), which spares most index lookups.
    /// Reads only the records' span and parent ids: it may run while another thread
    /// resolves their times and orders them.
    static func findParents(_ records: AsyncRecords, _ index: SpanIndex, recent: RecentSpans,
                            into parents: UnsafeMutableBufferPointer<Int32>) {
        // Parent id 0 (a root) costs no lookup unless some span has id 0.
        let zeroIsSpan = index.find(0, records) >= 0
        records.forEach { i, r in
            let parentId = AsyncRecord.parentSpanId(at: r)
            if parentId != 0 || zeroIsSpan {
                var parent = recent.get(parentId)
                if parent < 0 { parent = index.find(parentId, records) }
                parents[i] = Int32(truncatingIfNeeded: parent)
            }
            recent.set(records.spanId(i), i)
        }
    }

    /// Orders the spans (`makeOrder`: the indices of the records to write, in written order),
    /// places them on lanes and writes them, in order. `makePlacer`, given the order and
    /// each record's parent record (filled before the first call), makes the function that
    /// places record `i` (called in order); `write` writes record `i` where it was placed,
    /// with its flows.
    ///
    /// With `twoThreadMinimumSpans` records or more, a worker thread finds the parents
    /// while this one orders the spans, then places them while this one writes the spans
    /// already placed: placing and writing take about as long, so the two overlap.
    /// Placements are the same, and so are the bytes.
    @inline(__always)
    func placeAndWrite(makeOrder: () -> [UInt32],
                       makePlacer: ([UInt32], UnsafeBufferPointer<Int32>) -> (Int) -> LaneLayout.Placement,
                       write: (Int, LaneLayout.Placement, FlowPlan) throws(PerfettoError) -> Void)
        throws(PerfettoError) {
        let records = matcher.records, index = matcher.index
        let parents = UnsafeMutableBufferPointer<Int32>.allocate(capacity: records.count)
        parents.initialize(repeating: -1)
        // Per span of the order: its lane, with the top bit set when the lane is new. Sized
        // for every record (the order is not known yet): never more spans than records.
        let placements = UnsafeMutablePointer<UInt32>.allocate(capacity: Swift.max(records.count, 1))
        let parentsFound = PublishedCount(), placed = PublishedCount()
        // The worker, done with the parents, usually waits for the order: it sleeps at once.
        let orderReady = PublishedCount(spinNanoseconds: 0)
        let input = PlacementInput()
        // Allocated here, not by the worker: its allocations would go to a malloc arena of
        // its own, which the rest of the process never reuses.
        let recent = RecentSpans()
        let findAndPlace = {
            Self.findParents(records, index, recent: recent, into: parents)
            parentsFound.publish(1)
            guard orderReady.wait(atLeast: 1) >= 1, let place = input.place else { return }
            let order = input.order
            let n = order.count
            var k = 0
            while k < n {
                if placed.stopRequested { return }
                let upTo = Swift.min(n, k + 512)
                while k < upTo {
                    let p = place(Int(order[k]))
                    placements[k] = UInt32(truncatingIfNeeded: p.lane) | (p.isNewLane ? 1 << 31 : 0)
                    k += 1
                }
                placed.publish(k)
            }
        }
        let worker = records.count >= twoThreadMinimumSpans ? WorkerThread.start(findAndPlace) : nil
        defer {
            placed.requestStop()
            orderReady.requestStop()
            worker?.join()
            parents.deallocate()
            placements.deallocate()
        }
        let order = makeOrder()
        let n = order.count
        input.order = order
        input.place = makePlacer(order, UnsafeBufferPointer(parents))
        orderReady.publish(1)
        if worker == nil { findAndPlace() }
        _ = parentsFound.wait(atLeast: 1)
        let flows = try FlowPlan(order: order, records: records, parents: UnsafeBufferPointer(parents),
                                 enabled: options.flows, processTrack: writer.processTrackUUID)
        var ready = 0
        for k in 0..<n {
            if k == ready {
                ready = placed.wait(atLeast: k + 1)
                // Only this thread asks the worker to stop (below), so it never stops early.
                guard ready > k else { throw .writerStopped("async lane placement ended before span \(k)") }
            }
            let p = placements[k]
            try write(Int(order[k]), LaneLayout.Placement(lane: Int(p & ~(1 << 31)), isNewLane: p >> 31 != 0), flows)
        }
    }

    /// The mean time between two begins of `order` (sorted), at least 1.
    static func typicalGap(_ order: [UInt32], _ records: AsyncRecords) -> Int64 {
        guard let first = order.first, let last = order.last, order.count > 1 else { return 1 }
        // Begins are >= 0 and sorted: the difference cannot overflow.
        let span = records[Int(last)].pointee.begin - records[Int(first)].pointee.begin
        return Swift.max(1, span / Int64(order.count))
    }

    /// The sibling_merge_key of every lane group: lanes of one group are siblings (under the
    /// process track, or under one thread track), so one key per parent suffices.
    public static let laneMergeKey = "async_lanes"

    /// The uuid of lane `lane` under thread track `thread` (thread-lanes).
    public static func threadLaneTrackUUID(_ lane: Int, thread: UInt64) -> UInt64 {
        XXH64.hash("async_thread_lane_\(lane)", seed: thread)
    }

    /// A lane track's descriptor: named like micromegas' async track, with the merge key.
    func emitLaneDescriptor(uuid: UInt64, parent: UInt64) throws(PerfettoError) {
        try writer.emitTrackDescriptor(uuid: uuid, name: TraceWriter.asyncTrackName, parent: parent, counter: nil,
                                       mergeKey: Self.laneMergeKey)
    }

    /// One async slice in a lanes layout, with span args and flows as the options say.
    /// Once its strings are interned (the writer's pool caches and the source-location
    /// iid per matcher location here), a slice is written without any lookup.
    /// `trackField`: `PacketEncoder.trackField(track)`, computed once per lane.
    @inline(__always)
    func writeLaneSpan(_ r: UnsafeMutablePointer<AsyncRecord>, index: Int, track: UInt64,
                       trackField: PacketEncoder.PackedField, flows: FlowPlan) throws(PerfettoError) {
        let s = r.pointee
        guard s.begin >= 0 else { throw .invalidData("async events: negative time \(s.begin)") }
        let ids: (Int64, Int64)? = options.spanArgs ? (matcher.records.spanId(index), s.parentSpanId) : nil
        let location = Int(s.location)
        let locationIid = location < asyncLocationIids.count ? asyncLocationIids[location] : 0
        // (The line only matters when a source location is new, never for known ids.)
        let (starting, ending) = flows.flows(index)
        if let known = writer.knownIds(name: s.name, target: s.target, location: locationIid, line: 0, pool: pool,
                                       spanArgs: options.spanArgs) {
            try writer.emitKnownRichSlice(track: track, trackField: trackField, begin: UInt64(s.begin),
                                          end: UInt64(s.end), ids: known, spanIds: ids, flowIds: starting,
                                          terminatingFlowId: ending)
        } else {
            let filename = matcher.filename(s.location), line = matcher.line(s.location)
            try writer.emitPooledRichSlice(track: track, begin: UInt64(s.begin), end: UInt64(s.end), name: s.name,
                                           target: s.target, filename: filename, line: line, pool: pool,
                                           spanIds: ids, flowIds: starting, terminatingFlowId: ending)
            let iid = writer.knownLocationIid(filename: filename, line: line, pool: pool)
            if location >= asyncLocationIids.count {
                asyncLocationIids.append(contentsOf: repeatElement(0, count: location + 1 - asyncLocationIids.count))
            }
            asyncLocationIids[location] = iid
        }
        stats.asyncSpans += 1
    }

    /// `thread-lanes`: each span on a lane under the thread track of the stream of its begin
    /// event, lanes per thread following the `lanes` rules; spans begun on a stream that is
    /// not a listed thread, or with no begin in the range, on process-level lanes.
    func writeThreadLanes() throws(PerfettoError) {
        let records = matcher.records
        // Which records have a begin event (resolving gives the others the range begin).
        var hasBegin = [Bool](repeating: false, count: records.count)
        records.forEach { i, r in hasBegin[i] = r.pointee.begin >= 0 }
        let process = writer.processTrackUUID
        // One lane group per parent track (a thread, or the process), in order of first use.
        var groupParents: [UInt64] = []
        var groupByParent: [UInt64: Int] = [:]
        var groups: [Int32] = []
        // Each group's ring buckets sized by the time between its own begins, its lanes by its spans.
        var gaps: [(gap: Int64, spans: Int)] = []
        var lanes: [[UInt64]] = []
        var laneFields: [[PacketEncoder.PackedField]] = []
        var laneCount = 0
        try placeAndWrite(makeOrder: {
            var (order, counts, sortedPrefix) = matcher.resolveInPlace(completeWithDuration: false)
            stats.matcher = counts
            if sortedPrefix < order.count { AsyncOrder.sort(&order, records, lanes: true, sortedPrefix: sortedPrefix) }
            var groupOf = [Int32](repeating: -1, count: records.count)
            var firstBegin: [Int64] = [], lastBegin: [Int64] = [], spanCount: [Int] = []
            for k in order {
                let i = Int(k)
                let r = records[i]
                var parentTrack = process
                if hasBegin[i], let thread = threadTrackByStream[r.pointee.stream] { parentTrack = thread }
                let g: Int
                if let existing = groupByParent[parentTrack] {
                    g = existing
                } else {
                    g = groupParents.count
                    groupByParent[parentTrack] = g
                    groupParents.append(parentTrack)
                    firstBegin.append(r.pointee.begin)
                    lastBegin.append(0)
                    spanCount.append(0)
                }
                groupOf[i] = Int32(g)
                lastBegin[g] = r.pointee.begin
                spanCount[g] += 1
            }
            gaps = (0..<groupParents.count).map { g in
                (gap: Swift.max(1, (lastBegin[g] - firstBegin[g]) / Int64(spanCount[g])), spans: spanCount[g])
            }
            groups = groupOf
            lanes = [[UInt64]](repeating: [], count: groupParents.count)
            laneFields = [[PacketEncoder.PackedField]](repeating: [], count: groupParents.count)
            return order
        }, makePlacer: { _, parents in
            let state = LaneRecordState(recordCount: records.count)
            let layouts = gaps.map { LaneLayout(records: state, typicalGap: $0.gap, spanCount: $0.spans) }
            let groups = groups
            return { i in
                let r = records[i]
                let g = Int(groups[i])
                // A parent helps placement only when it is on lanes of the same group.
                var parent = Int(parents[i])
                if parent >= 0 && (parent >= groups.count || Int(groups[parent]) != g) { parent = -1 }
                return layouts[g].place(i, begin: r.pointee.begin, end: r.pointee.end, parent: parent, records)
            }
        }, write: { (i, placement, flows) throws(PerfettoError) in
            let g = Int(groups[i])
            let parentTrack = groupParents[g]
            if placement.isNewLane {
                let uuid: UInt64
                if parentTrack == process {
                    uuid = lanes[g].isEmpty ? writer.asyncTrackUUID : Self.laneTrackUUID(placement.lane, writer)
                    if !lanes[g].isEmpty { try emitLaneDescriptor(uuid: uuid, parent: parentTrack) }
                } else {
                    uuid = Self.threadLaneTrackUUID(placement.lane, thread: parentTrack)
                    try emitLaneDescriptor(uuid: uuid, parent: parentTrack)
                }
                lanes[g].append(uuid)
                laneFields[g].append(PacketEncoder.trackField(uuid))
                laneCount += 1
            }
            try writeLaneSpan(records[i], index: i, track: lanes[g][placement.lane],
                              trackField: laneFields[g][placement.lane], flows: flows)
        })
        // The process-level `Async Operations` track is described even when no span uses it.
        stats.asyncTracks = laneCount + (groupByParent[process] == nil ? 1 : 0)
    }
}
