import CArrowABI

/// The columns of one `async_events` batch.
struct AsyncEventBatch {
    let time: TimeColumn
    let eventType: StringColumn
    let spanId, parent: IntegerColumn
    let depth: IntegerColumn?
    let name, target, filename: StringColumn
    let line: IntegerColumn
    let stream: StringColumn?
}

/// Scratch columns for `rows` rows of async events, reused from tile to tile.
final class AsyncTile {
    static let rows = 1024
    let time = UnsafeMutablePointer<Int64>.allocate(capacity: rows)
    let spanId = UnsafeMutablePointer<Int64>.allocate(capacity: rows)
    let parent = UnsafeMutablePointer<Int64>.allocate(capacity: rows)
    let depth = UnsafeMutablePointer<Int64>.allocate(capacity: rows)
    let line = UnsafeMutablePointer<Int64>.allocate(capacity: rows)
    let type = UnsafeMutablePointer<UInt32>.allocate(capacity: rows)
    let name = UnsafeMutablePointer<UInt32>.allocate(capacity: rows)
    let target = UnsafeMutablePointer<UInt32>.allocate(capacity: rows)
    let filename = UnsafeMutablePointer<UInt32>.allocate(capacity: rows)
    let stream = UnsafeMutablePointer<UInt32>.allocate(capacity: rows)

    deinit {
        for p in [time, spanId, parent, depth, line] { p.deallocate() }
        for p in [type, name, target, filename, stream] { p.deallocate() }
    }

    /// Decodes rows `start ..< start + n` (n <= `rows`). False when a row has anything to
    /// report: a null or out-of-range time, a null span id, an unreadable string, an event
    /// type other than begin and end, a line out of uint32 range.
    @inline(__always)
    func decode(_ c: AsyncEventBatch, _ start: Int, _ n: Int, beginId: UInt32, endId: UInt32) -> Bool {
        guard c.eventType.decodeIds(start, n, into: type), c.time.decode(start, n, into: time),
              c.spanId.decode(start, n, into: spanId, required: true, fallback: 0),
              c.parent.decode(start, n, into: parent, required: false, fallback: 0),
              c.name.decodeIds(start, n, into: name), c.target.decodeIds(start, n, into: target),
              c.filename.decodeIds(start, n, into: filename),
              c.line.decode(start, n, into: line, required: false, fallback: 0) else { return false }
        if let depthColumn = c.depth {
            _ = depthColumn.decode(start, n, into: depth, required: false, fallback: 0)
        } else {
            depth.update(repeating: 0, count: n)
        }
        // The stream id is informative: an unreadable one reads as none.
        if let streamColumn = c.stream {
            if !streamColumn.decodeIds(start, n, into: stream) {
                for j in 0..<n { stream[j] = (try? streamColumn.id(start + j)) ?? 0 }
            }
        } else {
            stream.update(repeating: 0, count: n)
        }
        var bad = false
        for j in 0..<n {
            let t = type[j]
            bad = bad || (t != beginId && t != endId) || UInt64(bitPattern: line[j]) > UInt64(UInt32.max)
        }
        return !bad
    }
}

/// Decodes async event tiles on a worker thread while the calling thread pairs the tiles
/// already decoded: decoding a tile and pairing its events take about as long.
///
/// Tiles go through a ring of `slots` scratch tiles. The caller hands over one batch at a
/// time (`read`), and takes the next only once the worker is done with it, so each batch's
/// columns (and the string pool their dictionaries intern into) have one user at a time:
/// the worker while it decodes, the caller between batches and while it reads a faulty
/// tile row by row (the worker waits meanwhile). Below `twoThreadMinimumRows` rows in a
/// batch (until a worker exists), or when no thread can start, tiles are decoded inline.
final class AsyncTileReader {
    static let slots = 4
    private let tiles = (0..<slots).map { _ in AsyncTile() }
    /// Per slot: whether its tile decoded cleanly.
    private let clean = UnsafeMutablePointer<Bool>.allocate(capacity: slots)
    private let beginId: UInt32, endId: UInt32
    private let twoThreadMinimumRows: Int
    private var worker: WorkerThread?
    private var workerFailedToStart = false
    /// The batch handed to the worker (set before `batches` is raised, cleared after it is done).
    @exclusivity(unchecked) private var batch: AsyncEventBatch?
    @exclusivity(unchecked) private var batchRows = 0
    /// Batches handed over (caller -> worker), tiles decoded (worker -> caller), tiles
    /// paired (caller -> worker), batches the worker let go of (worker -> caller).
    private let batches = PublishedCount(), decoded = PublishedCount(), paired = PublishedCount()
    private let released = PublishedCount()
    private var batchCount = 0, tileCount = 0

    init(beginId: UInt32, endId: UInt32, twoThreadMinimumRows: Int) {
        self.beginId = beginId
        self.endId = endId
        self.twoThreadMinimumRows = twoThreadMinimumRows
        clean.initialize(repeating: false, count: Self.slots)
    }

    deinit {
        close()
        clean.deallocate()
    }

    /// Stops and joins the worker. Called when the events are read, or on an error.
    func close() {
        batches.requestStop()
        paired.requestStop()
        worker?.join()
        worker = nil
    }

    /// Reads the `rows` rows of `c`: `decoded` gets each clean tile in row order, `faulty`
    /// the rows of each tile that did not decode (it throws the first faulty row's error).
    @inline(__always)
    func read(_ c: AsyncEventBatch, rows: Int, decoded take: (AsyncTile, Int) throws(PerfettoError) -> Void,
              faulty: (Range<Int>) throws(PerfettoError) -> Void) throws(PerfettoError) {
        if worker == nil && !workerFailedToStart && rows >= twoThreadMinimumRows {
            worker = WorkerThread.start { [self] in decodeBatches() }
            workerFailedToStart = worker == nil
        }
        guard worker != nil else {
            let tile = tiles[0]
            var start = 0
            while start < rows {
                let n = Swift.min(AsyncTile.rows, rows - start)
                if tile.decode(c, start, n, beginId: beginId, endId: endId) {
                    try take(tile, n)
                } else {
                    try faulty(start..<(start + n))
                }
                start += n
            }
            return
        }
        guard rows > 0 else { return }
        batch = c
        batchRows = rows
        batchCount += 1
        batches.publish(batchCount)
        var start = 0
        while start < rows {
            let n = Swift.min(AsyncTile.rows, rows - start)
            let slot = tileCount % Self.slots
            let tile = tiles[slot]
            // The worker stops early only when `close` asks; if it ever did otherwise, the
            // tile is decoded here.
            let ok = decoded.wait(atLeast: tileCount + 1) > tileCount ? clean[slot]
                : tile.decode(c, start, n, beginId: beginId, endId: endId)
            if ok {
                try take(tile, n)
            } else {
                try faulty(start..<(start + n))
            }
            tileCount += 1
            paired.publish(tileCount)
            start += n
        }
        // The worker has let go of the batch: its last reference is the caller's.
        _ = released.wait(atLeast: batchCount)
        batch = nil
    }

    /// The worker: decodes each batch's tiles into the ring, at most `slots` ahead of the
    /// caller, and waits after a faulty tile until the caller has read it row by row.
    private func decodeBatches() {
        defer {
            decoded.requestStop()
            released.requestStop()
        }
        var taken = 0, tile = 0
        while batches.wait(atLeast: taken + 1) > taken {
            taken += 1
            guard decodeBatch(&tile) else { return }
            released.publish(taken)
        }
    }

    /// Decodes the tiles of the batch handed over; false when asked to stop.
    private func decodeBatch(_ tile: inout Int) -> Bool {
        guard let c = batch else { return false }
        let rows = batchRows
        var start = 0
        while start < rows {
            let n = Swift.min(AsyncTile.rows, rows - start)
            let slot = tile % Self.slots
            guard paired.wait(atLeast: tile + 1 - Self.slots) >= tile + 1 - Self.slots else { return false }
            let ok = tiles[slot].decode(c, start, n, beginId: beginId, endId: endId)
            clean[slot] = ok
            tile += 1
            start += n
            decoded.publish(tile)
            if !ok, paired.wait(atLeast: tile) < tile { return false }
        }
        return true
    }
}
