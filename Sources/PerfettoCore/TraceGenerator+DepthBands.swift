#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Thread spans nested as deep as Perfetto's limit (`LaneLayout.maxNesting`, 512) or deeper,
/// in the lanes layouts: Perfetto's trace processor never pushes a slice begun that deep,
/// so it never ends, and its end closes a shallower slice of the same name early (every
/// duration around it wrong). Such a span goes instead on a *depth band* track under its
/// thread's track, band k holding the spans of depths 512 k ..< 512 (k + 1), where they
/// nest again. The `micromegas` layout writes every span on the thread track, as micromegas does.
extension TraceGenerator {
    /// The uuid of depth band `band` (>= 1) of thread track `thread`.
    public static func depthBandTrackUUID(_ band: Int, thread: UInt64) -> UInt64 {
        XXH64.hash("thread_depth_band_\(band)", seed: thread)
    }

    /// The track of a span at nesting depth `depth` (-1: unknown) on thread track `thread`
    /// (the thread of `threadDepths`): the thread's own below the limit, else its depth band's,
    /// described on first use. A band's uuid is kept for the thread (`threadDepths.bandTracks`),
    /// so a deep span costs an array read, not a string, a hash and a set lookup.
    @inline(__always)
    func threadSpanTrack(depth: Int, thread: UInt64) throws(PerfettoError) -> UInt64 {
        guard depth >= LaneLayout.maxNesting else { return thread }
        let band = depth / LaneLayout.maxNesting
        if band <= threadDepths.bandTracks.count { return threadDepths.bandTracks[band - 1] }
        return try depthBandTrack(band, thread: thread)
    }

    /// Makes the depths of `thread` current: those its earlier calls left (its spans may
    /// come in several calls, even with other threads' calls between them), or new ones.
    /// The depths of a thread left are made as small as its open spans (a process may have
    /// many thousand threads).
    func selectThreadDepths(_ thread: UInt64) {
        guard thread != depthsThread else { return }
        threadDepths.compact()
        depthsThread = thread
        if let known = depthsByThread[thread] {
            threadDepths = known
        } else {
            threadDepths = ThreadSpanDepths()
            depthsByThread[thread] = threadDepths
        }
    }

    /// Bands up to `band` of `thread` (the stack's depth grows by one a span, so they come
    /// in order), described unless an earlier call for the thread described them.
    private func depthBandTrack(_ band: Int, thread: UInt64) throws(PerfettoError) -> UInt64 {
        while threadDepths.bandTracks.count < band {
            let k = threadDepths.bandTracks.count + 1
            let uuid = Self.depthBandTrackUUID(k, thread: thread)
            if describedDepthBands.insert(uuid).inserted {
                let name = "\(threadNames[thread] ?? "") depth \(k * LaneLayout.maxNesting)+"
                try writer.emitTrackDescriptor(uuid: uuid, name: name, parent: thread, counter: nil, mergeKey: nil)
            }
            threadDepths.bandTracks.append(uuid)
        }
        return threadDepths.bandTracks[band - 1]
    }
}

/// The nesting depths of one thread's spans, over all its `addThreadSpans` calls (a
/// thread's spans may come in several: generate_trace_chunks hands them over in groups of
/// rows), and the uuids of the thread's depth bands. Depths are known only while begins do
/// not decrease: out of order (a producer's partitioned write), the stack says nothing of
/// the depth, and the rest of the thread stays on its track.
final class ThreadSpanDepths {
    private let ends = OpenSpanEnds()
    @exclusivity(unchecked) private var inOrder = true
    @exclusivity(unchecked) private var lastBegin = Int64.min
    /// The uuid of band k + 1 of the thread at k.
    var bandTracks: [UInt64] = []

    /// Gives back the room beyond the spans still open.
    func compact() { ends.compact() }

    /// The depth of the next span of the thread ([begin, end]), or -1 once a begin was
    /// earlier than the one before it.
    @inline(__always)
    func depth(begin: Int64, end: Int64) throws(PerfettoError) -> Int {
        guard inOrder else { return -1 }
        guard begin >= lastBegin else {
            inOrder = false
            return -1
        }
        lastBegin = begin
        return try ends.push(begin: begin, end: end)
    }
}

/// The ends of the thread spans still open at the latest begin, innermost last: their
/// count is the nesting depth of the next span, as Perfetto's stack holds it (a slice
/// that ended at or before a begin is popped before it). 8 bytes per open span, in
/// malloc storage: running out of memory is an error.
final class OpenSpanEnds {
    /// Below the first end: `sentinels` slots of Int64.max, so that the top four ends can
    /// be compared without checking the count (and without branches: the depth changes
    /// from span to span in ways no predictor follows).
    private static let sentinels = 4
    @exclusivity(unchecked) private var storage: UnsafeMutablePointer<Int64>?
    @exclusivity(unchecked) private var ends = UnsafeMutablePointer<Int64>(bitPattern: 8).unsafelyUnwrapped
    @exclusivity(unchecked) private var capacity = 0
    @exclusivity(unchecked) private(set) var count = 0

    deinit { free(storage) }

    /// Pops the spans ended by `begin`, pushes one ending at `end`, and returns the depth
    /// the pushed span sits at (the spans open under it).
    @inline(__always)
    func push(begin: Int64, end: Int64) throws(PerfettoError) -> Int {
        if count == capacity { try grow() }
        let e = ends
        var n = count
        // Pops up to four ended spans without a branch (a sentinel ends at Int64.max, so
        // only a begin of Int64.max goes past the bottom: clamped). 0 <= n < capacity, so
        // the arithmetic cannot wrap.
        let p1 = e[n &- 1] <= begin ? 1 : 0
        let p2 = p1 & (e[n &- 2] <= begin ? 1 : 0)
        let p3 = p2 & (e[n &- 3] <= begin ? 1 : 0)
        let p4 = p3 & (e[n &- 4] <= begin ? 1 : 0)
        n = n &- (p1 &+ p2 &+ p3 &+ p4)
        if p4 != 0 { while n > 0 && e[n &- 1] <= begin { n = n &- 1 } }
        n = n < 0 ? 0 : n
        e[n] = end
        count = n &+ 1
        return n
    }

    private func grow() throws(PerfettoError) {
        let wanted = capacity == 0 ? (partialValue: 64, overflow: false) : capacity.multipliedReportingOverflow(by: 2)
        guard !wanted.overflow, resize(to: wanted.partialValue) else { throw .outOfMemory }
    }

    /// Shrinks the storage to the open ends plus a few (kept if shrinking fails).
    func compact() {
        let wanted = count + 4
        if capacity > wanted { _ = resize(to: wanted) }
    }

    /// Room for `slots` ends (>= count), the sentinels below them; false when out of memory.
    private func resize(to slots: Int) -> Bool {
        let total = slots.addingReportingOverflow(Self.sentinels)
        let bytes = total.partialValue.multipliedReportingOverflow(by: MemoryLayout<Int64>.stride)
        guard !total.overflow, !bytes.overflow, let resized = realloc(storage, bytes.partialValue) else { return false }
        storage = resized.assumingMemoryBound(to: Int64.self)
        storage.unsafelyUnwrapped.initialize(repeating: .max, count: Self.sentinels)
        ends = storage.unsafelyUnwrapped + Self.sentinels
        capacity = slots
        return true
    }
}
