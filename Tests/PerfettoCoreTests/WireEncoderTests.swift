import Testing
@testable import PerfettoCore

// Protobuf wire primitives: canonical varints, sign-extended int32, exact sizes.

struct WireEncoderTests {
    func encode(_ value: UInt64) throws -> [UInt8] {
        let buffer = ByteBuffer()
        var cursor = WireCursor(try buffer.reserve(10))
        cursor.varint(value)
        buffer.commit(Wire.varintSize(value))
        return buffer.copyBytes()
    }

    @Test func varintBoundaries() throws {
        #expect(try encode(0) == [0x00])
        #expect(try encode(127) == [0x7F])
        #expect(try encode(128) == [0x80, 0x01])
        #expect(try encode(300) == [0xAC, 0x02])
        #expect(try encode(UInt64.max) == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        for shift in 0..<64 {
            let v = UInt64(1) << UInt64(shift)
            for value in [v - 1, v, v + 1] {
                #expect(try encode(value).count == Wire.varintSize(value), "size of \(value)")
            }
        }
    }

    @Test func negativeInt32IsTenBytes() {
        #expect(Wire.int32Size(-1) == 10)
        #expect(Wire.int32Size(Int32.min) == 10)
        #expect(Wire.int32Size(Int32.max) == 5)
        #expect(Wire.int32Size(0) == 1)
    }

    @Test func bufferTakeTransfersOwnership() throws {
        let buffer = try ByteBuffer(capacity: 16)
        try ([1, 2, 3] as [UInt8]).withUnsafeBytes { try buffer.append($0) }
        let taken = buffer.take()
        #expect(taken.count == 3)
        #expect(taken.storage.map { Array(UnsafeBufferPointer(start: $0, count: 3)) } == [1, 2, 3])
        free(taken.storage)
        #expect(buffer.count == 0)
        try ([4] as [UInt8]).withUnsafeBytes { try buffer.append($0) }
        #expect(buffer.copyBytes() == [4])
    }
}

#if canImport(Glibc)
import Glibc
#endif
