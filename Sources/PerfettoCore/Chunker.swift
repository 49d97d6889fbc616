/// Groups whole framed packets into chunks: `perfetto_trace_chunks`' `(chunk_id, chunk_data)`.
///
/// The writer appends each packet to its buffer and then calls `packetEnded`; once the
/// buffer holds at least `chunkSize` bytes it becomes a chunk. A chunk never splits a
/// packet, so every chunk parses alone as a Trace.
struct Chunker {
    /// Bytes that end a chunk; `Int.max` keeps everything in memory.
    let chunkSize: Int
    let handler: ChunkHandler?
    /// The id of the next chunk.
    private(set) var nextChunkId: UInt64 = 0

    /// A chunker that never emits: the memory sink.
    static var memory: Chunker { Chunker(chunkSize: .max, handler: nil) }

    init(chunkSize: Int, handler: ChunkHandler?) {
        self.chunkSize = chunkSize
        self.handler = handler
    }

    /// Ends the current chunk if it is full.
    @inline(__always)
    mutating func packetEnded(_ buffer: ByteBuffer) throws(PerfettoError) {
        if buffer.count >= chunkSize { try emit(buffer) }
    }

    /// Ends the current chunk, if it holds anything.
    mutating func flush(_ buffer: ByteBuffer) throws(PerfettoError) {
        if buffer.count > 0, handler != nil { try emit(buffer) }
    }

    private mutating func emit(_ buffer: ByteBuffer) throws(PerfettoError) {
        guard let handler else { return }
        let id = nextChunkId
        nextChunkId += 1
        // The buffer is reused whatever the handler does, so a failed chunk is not resent.
        defer { buffer.removeAll() }
        try handler(id, buffer.bytes)
    }
}
