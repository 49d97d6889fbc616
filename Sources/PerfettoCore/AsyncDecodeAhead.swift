/// Decodes the tiles of an async-events batch on a worker thread while the calling thread
/// pairs the tiles decoded before (pairing takes about 60% of reading, decoding 40%, so the
/// two overlap). The worker only decodes: the Arrow stream is read, columns are made and
/// the matcher is fed on the calling thread, so the producer's callbacks and every
/// allocation but the string pool's stay there. The worker touches the string pool (a
/// dictionary entry seen first is interned) and the columns' caches, so the calling thread
/// touches neither while a batch is being decoded: it reads a failed tile row by row only
/// once the worker waits for it, and the next batch only when the worker is done with this one.
final class AsyncDecodeAhead {
    /// Tiles decoded ahead of the one being paired, at most.
    static let slots = 8
    /// A worker with no free slot waits until this many are free: it is woken once per
    /// `refill` tiles, not once per tile (each wake-up a system call on the caller's side).
    static let refill = slots / 2
    private let tiles: [AsyncTile]
    /// Per slot: its tile's row count, and whether it decoded (0: read it row by row).
    private let rowCounts = UnsafeMutablePointer<Int>.allocate(capacity: slots)
    private let decodedWell = UnsafeMutablePointer<UInt8>.allocate(capacity: slots)
    /// Tiles handed to the worker (all batches of the call, counted from 0), decoded by it,
    /// and done with by the caller (paired, or read row by row). A stop request on
    /// `posted` or `consumed` ends the worker. The worker, usually ahead, sleeps at once
    /// when it waits (a spinning worker would take the core from the producer's threads,
    /// such as pyarrow decoding the next batch); the caller spins first.
    private let posted = PublishedCount(spinNanoseconds: 0), consumed = PublishedCount(spinNanoseconds: 0)
    private let decoded = PublishedCount()
    /// The batch being decoded and the number of its first tile: written by the caller before
    /// it raises `posted`, read by the worker after it sees the raise.
    @exclusivity(unchecked) private var batch: AsyncEventBatch?
    /// The Arrow batch of `batch` (its columns point into it): held until the worker is
    /// joined, so an error thrown while the worker decodes it does not release it under it.
    private var arrowBatch: ArrowBatch?
    @exclusivity(unchecked) private var batchFirstTile = 0
    @exclusivity(unchecked) private var batchRows = 0
    private let beginId: UInt32, endId: UInt32
    private var worker: WorkerThread?
    /// The caller's counts of tiles posted and consumed.
    private var postedCount = 0, consumedCount = 0

    /// nil when no second thread can run (the caller then decodes every tile itself).
    static func start(beginId: UInt32, endId: UInt32) -> AsyncDecodeAhead? {
        guard WorkerThread.secondCPUAvailable else { return nil }
        let ahead = AsyncDecodeAhead(beginId: beginId, endId: endId)
        // The worker holds the object (not the reverse) until it is joined in `stop`.
        guard let worker = WorkerThread.start({ ahead.decodeTiles() }) else { return nil }
        ahead.worker = worker
        return ahead
    }

    private init(beginId: UInt32, endId: UInt32) {
        self.beginId = beginId
        self.endId = endId
        tiles = (0..<Self.slots).map { _ in AsyncTile() }
        rowCounts.initialize(repeating: 0, count: Self.slots)
        decodedWell.initialize(repeating: 0, count: Self.slots)
    }

    deinit {
        stop()
        rowCounts.deallocate()
        decodedWell.deallocate()
    }

    /// Ends the worker (after the tile it is decoding) and waits for it. Idempotent.
    func stop() {
        posted.requestStop()
        consumed.requestStop()
        worker?.join()
        worker = nil
        batch = nil
        arrowBatch = nil
    }

    /// The worker: decodes the posted tiles in order, each into a free slot.
    private func decodeTiles() {
        var t = 0
        while true {
            let available = posted.wait(atLeast: t + 1)
            if available <= t { return }  // stopped
            while t < available {
                // Slot t % slots is free once the caller is done with tile t - slots. When it
                // is not, wait for `refill` slots (tiles up to t - slots + refill - 1 <= t - 1
                // are decoded, so the caller gets to them).
                let needed = t - Self.slots + 1
                if t >= Self.slots && consumed.current < needed
                    && consumed.wait(atLeast: needed + Self.refill - 1) < needed + Self.refill - 1 { return }
                let well = decode(t)
                decoded.publish(t + 1)
                // The caller reads a tile that did not decode row by row, with the pool and
                // the columns' caches: nothing is decoded until it is done.
                if !well && consumed.wait(atLeast: t + 1) < t + 1 { return }
                t += 1
            }
        }
    }

    /// Decodes tile `t` of the posted batch into its slot (the batch reference is dropped
    /// before the tile is published, so the caller's release of the batch is the last).
    private func decode(_ t: Int) -> Bool {
        guard let batch else { return false }
        let slot = t % Self.slots
        let start = (t - batchFirstTile) * AsyncTile.rows
        let n = Swift.min(AsyncTile.rows, batchRows - start)
        let well = tiles[slot].decode(batch, start, n, beginId: beginId, endId: endId)
        rowCounts[slot] = n
        decodedWell[slot] = well ? 1 : 0
        return well
    }

    /// Reads the batches `next` gives (a batch and its columns; nil at the end) and has the
    /// worker decode their tiles; calls `pair` for each decoded tile, or `readRows` for the
    /// rows of a tile that did not decode, in row order, on this thread. The next batch is
    /// read once the worker has decoded the current one, so at most two batches are held.
    /// An error thrown by a closure stops the worker (the generator fails on it).
    func run(next: () throws(PerfettoError) -> (ArrowBatch, AsyncEventBatch)?,
             pair: (AsyncTile, Int) throws(PerfettoError) -> Void,
             readRows: (AsyncEventBatch, Range<Int>) throws(PerfettoError) -> Void) throws(PerfettoError) {
        /// A batch posted: it stays alive until its last tile is done with.
        typealias Posted = (batch: ArrowBatch, columns: AsyncEventBatch, first: Int, end: Int)
        /// Reads the next batch with rows and posts its tiles (nil at the end of the stream).
        func post() throws(PerfettoError) -> Posted? {
            while let item = try next() {
                let (batch, columns) = item
                guard batch.length > 0 else { continue }
                let first = postedCount
                self.batch = columns
                arrowBatch = batch
                batchFirstTile = first
                batchRows = batch.length
                postedCount += (batch.length + AsyncTile.rows - 1) / AsyncTile.rows
                posted.publish(postedCount)
                return (batch, columns, first, postedCount)
            }
            return nil
        }
        do throws(PerfettoError) {
            var current = try post()
            while let posted = current {
                var following: Posted?, atEnd = false
                // An error reading the next batch early: thrown once this batch's tiles are
                // done with, as one thread would (an error of this batch comes first).
                var failure: PerfettoError?
                for t in posted.first..<posted.end {
                    // The worker is done with this batch: the next one is read and posted,
                    // so its first tiles are decoded while this one's last are paired.
                    if following == nil && !atEnd && failure == nil && decoded.current >= posted.end {
                        do throws(PerfettoError) {
                            following = try post()
                            atEnd = following == nil
                        } catch {
                            failure = error
                        }
                    }
                    // The worker stops only when asked to (by `stop`, on this thread).
                    guard decoded.wait(atLeast: t + 1) > t else {
                        throw .writerStopped("async event decoding ended before tile \(t)")
                    }
                    let slot = t % Self.slots
                    if decodedWell[slot] != 0 {
                        try pair(tiles[slot], rowCounts[slot])
                    } else {
                        let start = (t - posted.first) * AsyncTile.rows
                        try readRows(posted.columns, start..<(start + rowCounts[slot]))
                    }
                    consumedCount = t + 1
                    consumed.publish(consumedCount)
                }
                if let failure { throw failure }
                if following == nil && !atEnd { following = try post() }
                current = following
            }
        } catch {
            stop()
            throw error
        }
    }
}
