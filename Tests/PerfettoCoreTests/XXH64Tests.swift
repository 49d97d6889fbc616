import Testing
@testable import PerfettoCore

/// xxHash's published XXH64 sanity vectors (xxhsum's BMK_sanityCheck).
struct XXH64Tests {
    static let prime: UInt64 = 2_654_435_761

    /// xxhsum's sanity buffer: byte i = top byte of a 32-bit generator squared each step.
    static let sanityBuffer: [UInt8] = {
        var generator: UInt32 = 2_654_435_761
        return (0..<101).map { _ in
            defer { generator = generator &* generator }
            return UInt8(generator >> 24)
        }
    }()

    @Test(arguments: [
        (0, 0, 0xEF46_DB37_51D8_E999), (0, prime, 0xAC75_FDA2_929B_17EF),
        (1, 0, 0x4FCE_394C_C889_52D8), (1, prime, 0x7398_40CB_819F_A723),
        (4, 0, 0x9256_E58A_A397_AEF1), (4, prime, 0x09D5_FFDF_B928_AB4B),
        (8, 0, 0xF74C_B145_1B32_B8CF), (8, prime, 0x9C44_B77F_BCC3_02C5),
        (14, 0, 0xCFFA_8DB8_81BC_3A3D), (14, prime, 0x5B96_1158_5EFC_C9CB),
        (32, 0, 0xAF57_53D3_9159_EDEE), (32, prime, 0xDCAB_9233_B8CA_7B0F),
        (101, 0, 0x0EAB_5433_84F8_78AD), (101, prime, 0xCAA6_5939_306F_1E21),
    ] as [(Int, UInt64, UInt64)])
    func sanityVectors(length: Int, seed: UInt64, expected: UInt64) {
        let hash = Self.sanityBuffer.withUnsafeBytes { XXH64.hash(UnsafeRawBufferPointer(rebasing: $0[0..<length]), seed: seed) }
        #expect(hash == expected)
    }

    /// The 8-byte form (flow ids) gives the published vector and the bytes form's hash.
    @Test func wordFormMatchesBytes() {
        let word = Self.sanityBuffer.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(XXH64.hash(UInt64(littleEndian: word), seed: 0) == 0xF74C_B145_1B32_B8CF)
        #expect(XXH64.hash(UInt64(littleEndian: word), seed: Self.prime) == 0x9C44_B77F_BCC3_02C5)
        var generator: UInt64 = 1
        for _ in 0..<1000 {
            generator = generator &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            var v = generator.littleEndian
            let seed = generator >> 7
            #expect(XXH64.hash(generator, seed: seed) == withUnsafeBytes(of: &v) { XXH64.hash($0, seed: seed) })
        }
    }

    @Test func stringFormMatchesBytes() {
        let s = "é_net_flush54 🚀"
        let bytes = Array(s.utf8)
        #expect(XXH64.hash(s, seed: 7) == bytes.withUnsafeBytes { XXH64.hash($0, seed: 7) })
    }

    @Test func micromegasTrackIds() throws {
        // The golden `basic` trace's process track uuid and async track uuid.
        let process = XXH64.hash("34d7c06d-3163-4111-863e-c5fc09d22d51")
        #expect(process == 15_903_503_398_903_116_617)
        #expect(XXH64.hash("async_track", seed: process) == 3_169_508_503_178_091_996)
    }
}
