#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A secret per hash table, mixed into the hashes of keys that come from outside data
/// (span ids, source lines), so that an input cannot be made of keys that share a home
/// slot (each insertion would probe past all of them: quadratic time). Not part of any
/// output: no table exposes the order of its slots.
enum HashSeed {
    /// A value an input cannot know in advance: the address of an allocation (randomized
    /// by the system) and the clocks, hashed.
    static func make(_ address: UnsafeRawPointer?) -> UInt64 {
        var monotonic = timespec(), realtime = timespec()
        clock_gettime(CLOCK_MONOTONIC, &monotonic)
        clock_gettime(CLOCK_REALTIME, &realtime)
        var words = (UInt64(UInt(bitPattern: address)), UInt64(truncatingIfNeeded: monotonic.tv_sec),
                     UInt64(truncatingIfNeeded: monotonic.tv_nsec), UInt64(truncatingIfNeeded: realtime.tv_sec),
                     UInt64(truncatingIfNeeded: realtime.tv_nsec))
        return withUnsafeBytes(of: &words) { XXH64.hash($0, seed: 0x5EED_1D5) }
    }
}
