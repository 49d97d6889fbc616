/// A streaming Perfetto trace writer with micromegas' writer calls and byte layout.
///
/// Packets are encoded into one reused buffer and handed to the sink whole. Strings
/// arrive as UTF-8 bytes (the `String` overloads pass a string's own storage); they are
/// validated once, when first interned, so repeated strings cost one hash lookup.
/// Not thread-safe: use one writer from one thread at a time.
public final class TraceWriter {
    /// xxh64(process_id): the process track's uuid.
    public let processTrackUUID: UInt64
    /// The process track uuid truncated to int32, as micromegas writes it.
    public let pid: Int32
    /// xxh64("async_track", seed: process track uuid): the `Async Operations` track.
    public let asyncTrackUUID: UInt64
    /// The name micromegas gives its async track.
    public static let asyncTrackName = "Async Operations"

    let buffer: ByteBuffer
    @exclusivity(unchecked) var chunker: Chunker
    /// A memory sink is a chunker that never emits.
    var isMemorySink: Bool { chunker.handler == nil }
    let names = InternTable()
    let categories = InternTable()
    let locations = InternTable()
    /// Writer iids of `StringPool` strings, by pool id (0 = not yet resolved), for `cachedPool`.
    @exclusivity(unchecked) var pooledNameIids: [UInt64] = []
    @exclusivity(unchecked) var pooledCategoryIids: [UInt64] = []
    @exclusivity(unchecked) var pooledLocationIids = IdMap()
    /// Debug annotation names (InternedData.debug_annotation_names), by `ArgName`.
    @exclusivity(unchecked) var argNameIids = [UInt64](repeating: 0, count: ArgName.allCases.count)
    @exclusivity(unchecked) var argNameCount: UInt64 = 0
    /// Log entry names interned so far (at most `maxInternedLogNames`).
    @exclusivity(unchecked) var internedLogNames = 0
    /// Held strongly: a weak reference costs side-table refcounting on every slice, and
    /// holding it keeps another pool from reusing its address.
    @exclusivity(unchecked) var cachedPool: StringPool?
    @exclusivity(unchecked) var currentThreadTrack: UInt64?
    @exclusivity(unchecked) var asyncTrackDescribed = false
    /// Packets written so far (the first one opens the sequence).
    @exclusivity(unchecked) public internal(set) var packetCount = 0
    /// The error that stopped the writer, if any.
    @exclusivity(unchecked) public private(set) var stopError: PerfettoError?

    /// A writer for the process `processId` (UTF-8 bytes) writing to `sink`.
    public convenience init(processId: UnsafeRawBufferPointer, sink: TraceSink) throws(PerfettoError) {
        guard UTF8Validation.isValid(processId) else { throw .invalidUTF8("process_id") }
        try self.init(processTrackUUID: XXH64.hash(processId), sink: sink)
    }

    /// A writer for the process `processId` writing to `sink`.
    public convenience init(processId: String, sink: TraceSink) throws(PerfettoError) {
        try self.init(processTrackUUID: XXH64.hash(processId), sink: sink)
    }

    private init(processTrackUUID: UInt64, sink: TraceSink) throws(PerfettoError) {
        self.processTrackUUID = processTrackUUID
        pid = Int32(truncatingIfNeeded: processTrackUUID)
        asyncTrackUUID = XXH64.hash("async_track", seed: processTrackUUID)
        switch sink {
        case .memory(let initialCapacity):
            // An explicitly pre-sized buffer is touched now, not page by page while writing.
            buffer = try ByteBuffer(capacity: Swift.max(initialCapacity, 0), prefault: initialCapacity > 0)
            chunker = .memory
        case .chunks(let chunkSize, let handler):
            guard chunkSize > 0 else { throw .invalidArgument("chunk size must be positive, got \(chunkSize)") }
            buffer = try ByteBuffer(capacity: Swift.min(chunkSize, 1 << 20) + 4096)
            chunker = Chunker(chunkSize: chunkSize, handler: handler)
        case .fileDescriptor(let fd, let bufferSize):
            guard fd >= 0 else { throw .invalidArgument("file descriptor must be >= 0, got \(fd)") }
            guard bufferSize > 0 else { throw .invalidArgument("buffer size must be positive, got \(bufferSize)") }
            buffer = try ByteBuffer(capacity: Swift.min(bufferSize, 1 << 24) + 4096)
            chunker = Chunker(chunkSize: bufferSize) { (_, bytes) throws(PerfettoError) in
                try writeAll(fd: fd, bytes)
            }
        }
    }

    // MARK: - Descriptors

    /// The process track descriptor, named `exe`.
    public func emitProcessDescriptor(exe: UnsafeRawBufferPointer) throws(PerfettoError) {
        try checkRunning()
        guard UTF8Validation.isValid(exe) else { throw .invalidUTF8("exe") }
        try writePacket { (sequence) throws(PerfettoError) in
            try PacketEncoder.writeDescriptor(uuid: processTrackUUID, kind: .process(pid: pid, name: exe),
                                              sequence: sequence, into: buffer)
        }
    }

    /// A thread track descriptor: uuid xxh64(stream_id), child of the process track.
    public func emitThreadDescriptor(streamId: UnsafeRawBufferPointer, threadId: Int32,
                                     threadName: UnsafeRawBufferPointer) throws(PerfettoError) {
        try checkRunning()
        guard UTF8Validation.isValid(streamId) else { throw .invalidUTF8("stream_id") }
        guard UTF8Validation.isValid(threadName) else { throw .invalidUTF8("thread_name") }
        let uuid = XXH64.hash(streamId)
        try writePacket { (sequence) throws(PerfettoError) in
            try PacketEncoder.writeDescriptor(
                uuid: uuid, kind: .thread(pid: pid, tid: threadId, name: threadName, parent: processTrackUUID),
                sequence: sequence, into: buffer)
        }
    }

    /// The `Async Operations` track descriptor. Written once; later calls do nothing.
    public func emitAsyncTrackDescriptor() throws(PerfettoError) {
        try checkRunning()
        guard !asyncTrackDescribed else { return }
        try emitNamedTrackDescriptor(uuid: asyncTrackUUID, name: Self.asyncTrackName, parent: processTrackUUID)
        asyncTrackDescribed = true
    }

    /// A named track under `parent` (async lanes use this).
    public func emitNamedTrackDescriptor(uuid: UInt64, name: String, parent: UInt64) throws(PerfettoError) {
        try checkRunning()
        try withBytes(name) { (name) throws(PerfettoError) in
            try writePacket { (sequence) throws(PerfettoError) in
                try PacketEncoder.writeDescriptor(uuid: uuid, kind: .named(name: name, parent: parent),
                                                  sequence: sequence, into: buffer)
            }
        }
    }

    // MARK: - Thread spans

    /// Makes the thread of `streamId` the track of the following `emitSpan` calls.
    public func setCurrentThread(streamId: UnsafeRawBufferPointer) throws(PerfettoError) {
        try checkRunning()
        guard UTF8Validation.isValid(streamId) else { throw .invalidUTF8("stream_id") }
        currentThreadTrack = XXH64.hash(streamId)
    }

    /// Makes the thread track `uuid` current (the uuid of a stream id, precomputed).
    public func setCurrentThread(trackUUID uuid: UInt64) throws(PerfettoError) {
        try checkRunning()
        currentThreadTrack = uuid
    }

    /// A slice on the current thread: its begin packet, then its end packet.
    @inline(__always)
    public func emitSpan(begin: UInt64, end: UInt64, name: UnsafeRawBufferPointer, target: UnsafeRawBufferPointer,
                         filename: UnsafeRawBufferPointer, line: UInt32) throws(PerfettoError) {
        try checkRunning()
        guard let track = currentThreadTrack else {
            throw .callOrder("emit_span called before set_current_thread")
        }
        try emitSlice(track: track, begin: begin, end: end, name: name, target: target, filename: filename, line: line)
    }

    // MARK: - Async spans

    /// The begin packet of an async span on the `Async Operations` track.
    public func emitAsyncSpanBegin(timestamp: UInt64, name: UnsafeRawBufferPointer, target: UnsafeRawBufferPointer,
                                   filename: UnsafeRawBufferPointer, line: UInt32) throws(PerfettoError) {
        try emitAsyncEvent(type: 1, timestamp: timestamp, name: name, target: target, filename: filename, line: line)
    }

    /// The end packet of an async span on the `Async Operations` track (same strings as its begin).
    public func emitAsyncSpanEnd(timestamp: UInt64, name: UnsafeRawBufferPointer, target: UnsafeRawBufferPointer,
                                 filename: UnsafeRawBufferPointer, line: UInt32) throws(PerfettoError) {
        try emitAsyncEvent(type: 2, timestamp: timestamp, name: name, target: target, filename: filename, line: line)
    }

    private func emitAsyncEvent(type: UInt8, timestamp: UInt64, name: UnsafeRawBufferPointer,
                                target: UnsafeRawBufferPointer, filename: UnsafeRawBufferPointer,
                                line: UInt32) throws(PerfettoError) {
        try checkRunning()
        guard asyncTrackDescribed else {
            throw .callOrder("async span event before emit_async_track_descriptor")
        }
        try emitEvent(type: type, track: asyncTrackUUID, timestamp: timestamp,
                      name: name, target: target, filename: filename, line: line)
    }

    // MARK: - Slices on any track

    /// A begin and an end packet on `track`, sharing one set of interned ids.
    @inline(__always)
    public func emitSlice(track: UInt64, begin: UInt64, end: UInt64, name: UnsafeRawBufferPointer,
                          target: UnsafeRawBufferPointer, filename: UnsafeRawBufferPointer,
                          line: UInt32) throws(PerfettoError) {
        let (ids, new) = try intern(name: name, target: target, filename: filename, line: line)
        try emitEventPair(track: track, begin: begin, end: end, ids: ids, new: new)
    }

    /// A slice's begin packet (carrying any new interned entries) and its end packet.
    @inline(__always)
    func emitEventPair(track: UInt64, begin: UInt64, end: UInt64, ids: PacketEncoder.EventIds,
                       new: PacketEncoder.NewEntries) throws(PerfettoError) {
        try writeEventPacket(type: 1, timestamp: begin, track: track, ids: ids, new: new)
        try writeEventPacket(type: 2, timestamp: end, track: track, ids: ids, new: PacketEncoder.NewEntries())
    }

    /// One slice begin (1) or end (2) packet on `track`.
    @inline(__always)
    public func emitEvent(type: UInt8, track: UInt64, timestamp: UInt64, name: UnsafeRawBufferPointer,
                          target: UnsafeRawBufferPointer, filename: UnsafeRawBufferPointer,
                          line: UInt32) throws(PerfettoError) {
        let (ids, new) = try intern(name: name, target: target, filename: filename, line: line)
        try writeEventPacket(type: type, timestamp: timestamp, track: track, ids: ids, new: new)
    }

    // MARK: - Output

    /// Hands the buffered packets to the sink (ends the current chunk). A memory sink keeps them.
    public func flush() throws(PerfettoError) {
        try checkRunning()
        do {
            try chunker.flush(buffer)
        } catch {
            stopOnError(error)
            throw error
        }
    }

    /// The trace written so far (memory sink only); the writer's buffer is emptied.
    public func takeBytes() throws(PerfettoError) -> [UInt8] {
        try checkMemorySink()
        defer { buffer.removeAll() }
        return buffer.copyBytes()
    }

    /// Moves the buffer's storage out (memory sink only); the caller frees it with `free()`.
    public func takeBuffer() throws(PerfettoError) -> (storage: UnsafeMutablePointer<UInt8>?, count: Int) {
        try checkMemorySink()
        return buffer.take()
    }

    /// Bytes buffered and not yet handed to the sink.
    public var bufferedByteCount: Int { buffer.count }

    /// The id the next chunk will get (chunk sinks), i.e. the number of chunks emitted.
    public var chunkCount: UInt64 { chunker.nextChunkId }

    // MARK: - Internals

    @inline(__always)
    func checkRunning() throws(PerfettoError) {
        if let stopError { throw .writerStopped(stopError.description) }
    }

    private func checkMemorySink() throws(PerfettoError) {
        try checkRunning()
        guard isMemorySink else { throw .callOrder("taking the buffer needs a writer created with a memory sink") }
    }

    /// Records an error that stops the writer (sink, I/O, memory); others leave it usable.
    func stopOnError(_ error: PerfettoError) {
        if error.stopsWriter, stopError == nil { stopError = error }
    }

    private var nextSequence: PacketEncoder.Sequence {
        packetCount == 0 ? .init(flags: 3, isFirst: true) : .init(flags: 2, isFirst: false)
    }

    /// Writes one packet with `body`, then lets the chunker cut a chunk.
    @inline(__always)
    func writePacket(_ body: (PacketEncoder.Sequence) throws(PerfettoError) -> Void) throws(PerfettoError) {
        do {
            try body(nextSequence)
            packetCount += 1
            try chunker.packetEnded(buffer)
        } catch {
            stopOnError(error)
            throw error
        }
    }

    @inline(__always)
    private func writeEventPacket(type: UInt8, timestamp: UInt64, track: UInt64, ids: PacketEncoder.EventIds,
                                  new: PacketEncoder.NewEntries) throws(PerfettoError) {
        try writePacket { (sequence) throws(PerfettoError) in
            try PacketEncoder.writeEvent(type: type, timestamp: timestamp, trackUUID: track, ids: ids,
                                         new: new, sequence: sequence, into: buffer)
        }
    }

    /// Resolves the three interned ids of an event. Nothing is interned unless every
    /// new string is valid UTF-8, so a rejected call leaves the tables unchanged.
    @inline(__always)
    func intern(name: UnsafeRawBufferPointer, target: UnsafeRawBufferPointer, filename: UnsafeRawBufferPointer,
                line: UInt32) throws(PerfettoError) -> (PacketEncoder.EventIds, PacketEncoder.NewEntries) {
        try checkRunning()
        let nameHash = names.hash(name, extra: 0)
        let targetHash = categories.hash(target, extra: 0)
        let locationHash = locations.hash(filename, extra: line)
        var ids = PacketEncoder.EventIds(
            category: categories.lookup(target, extra: 0, hash: targetHash),
            name: names.lookup(name, extra: 0, hash: nameHash),
            location: locations.lookup(filename, extra: line, hash: locationHash),
            line: line)
        var new = PacketEncoder.NewEntries()
        if ids.category != 0 && ids.name != 0 && ids.location != 0 { return (ids, new) }

        if ids.category == 0, !UTF8Validation.isValid(target) { throw .invalidUTF8("target") }
        if ids.name == 0, !UTF8Validation.isValid(name) { throw .invalidUTF8("name") }
        if ids.location == 0, !UTF8Validation.isValid(filename) { throw .invalidUTF8("filename") }
        do {
            if ids.category == 0 {
                ids.category = try categories.insert(target, extra: 0, hash: targetHash)
                new.hasCategory = true
                new.category = target
            }
            if ids.name == 0 {
                ids.name = try names.insert(name, extra: 0, hash: nameHash)
                new.hasName = true
                new.name = name
            }
            if ids.location == 0 {
                ids.location = try locations.insert(filename, extra: line, hash: locationHash)
                new.hasLocation = true
                new.file = filename
            }
        } catch {
            stopOnError(error)
            throw error
        }
        return (ids, new)
    }
}
