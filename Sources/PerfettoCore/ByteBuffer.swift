#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A growable byte buffer on `malloc` storage, reused across packets.
///
/// Its storage can be handed to a C caller (`take()`), who releases it with `free()`.
public final class ByteBuffer {
    @exclusivity(unchecked) @usableFromInline var storage: UnsafeMutablePointer<UInt8>?
    /// Bytes written so far.
    @exclusivity(unchecked) public private(set) var count: Int = 0
    /// Bytes allocated.
    @exclusivity(unchecked) public private(set) var capacity: Int = 0

    public init() {}

    /// A buffer with at least `capacity` bytes allocated up front. With `prefault`, the
    /// pages are touched now, so writing later takes no page faults.
    public init(capacity: Int, prefault: Bool = false) throws(PerfettoError) {
        if capacity > 0 { try grow(toAtLeast: capacity) }
        if prefault, let storage { memset(storage, 0, self.capacity) }
    }

    deinit { free(storage) }

    /// The written bytes. Valid until the next mutation.
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage, count: count)
    }

    /// A pointer to `n` writable bytes at the end; call `commit(n)` after writing them.
    @inline(__always)
    public func reserve(_ n: Int) throws(PerfettoError) -> UnsafeMutablePointer<UInt8> {
        if let storage, capacity - count >= n { return storage + count }
        try grow(toAtLeast: count + n)
        return storage.unsafelyUnwrapped + count
    }

    /// Marks `n` reserved bytes as written.
    @inline(__always)
    public func commit(_ n: Int) { count += n }

    /// Appends `bytes`.
    public func append(_ bytes: UnsafeRawBufferPointer) throws(PerfettoError) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        let p = try reserve(bytes.count)
        UnsafeMutableRawPointer(p).copyMemory(from: source, byteCount: bytes.count)
        commit(bytes.count)
    }

    /// Forgets the written bytes, keeping the storage for reuse.
    public func removeAll() { count = 0 }

    /// Hands the storage and its byte count to the caller, who frees it with `free()`.
    /// The buffer is empty afterwards. Returns nil storage when nothing was ever allocated.
    public func take() -> (storage: UnsafeMutablePointer<UInt8>?, count: Int) {
        defer { storage = nil; count = 0; capacity = 0 }
        return (storage, count)
    }

    /// A copy of the written bytes.
    public func copyBytes() -> [UInt8] { Array(bytes) }

    @usableFromInline
    func grow(toAtLeast needed: Int) throws(PerfettoError) {
        guard needed >= 0 else { throw .outOfMemory }
        var newCapacity = Swift.max(capacity, 4096)
        while newCapacity < needed {
            let (doubled, overflow) = newCapacity.multipliedReportingOverflow(by: 2)
            guard !overflow else { throw .outOfMemory }
            newCapacity = doubled
        }
        guard let grown = realloc(storage, newCapacity) else { throw .outOfMemory }
        storage = grown.assumingMemoryBound(to: UInt8.self)
        capacity = newCapacity
    }
}
