import Testing
@testable import PerfettoCore

// UTF-8 validation of byte-form strings against known cases and the standard library.

struct UTF8ValidationTests {
    func valid(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { UTF8Validation.isValid($0) } }

    @Test func knownCases() {
        #expect(valid([]))
        #expect(valid(Array("plain ascii that is longer than eight bytes".utf8)))
        #expect(valid(Array("é 日本 🚀 \u{10FFFF}".utf8)))
        #expect(!valid([0xFF]))
        #expect(!valid([0xC0, 0xAF]))  // overlong
        #expect(!valid([0xE0, 0x80, 0xAF]))  // overlong
        #expect(!valid([0xED, 0xA0, 0x80]))  // surrogate
        #expect(!valid([0xF4, 0x90, 0x80, 0x80]))  // past U+10FFFF
        #expect(!valid([0xE6, 0x97]))  // truncated
        #expect(!valid(Array("abcdefgh".utf8) + [0x80]))  // stray continuation after the fast path
    }

    /// Agrees with the standard library's validation on random byte strings.
    @Test func agreesWithStandardLibrary() {
        var rng = SplitMix64(seed: 99)
        for _ in 0..<20_000 {
            let length = Int(rng.below(24))
            let bytes = (0..<length).map { _ -> UInt8 in
                // Mostly bytes that form or almost form multi-byte sequences.
                let r = rng.below(4)
                return r == 0 ? UInt8(rng.below(128)) : UInt8(0x80 + rng.below(128))
            }
            #expect(valid(bytes) == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
        }
    }
}

/// Deterministic randomness for tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: UInt64) -> UInt64 { next() % n }
}
