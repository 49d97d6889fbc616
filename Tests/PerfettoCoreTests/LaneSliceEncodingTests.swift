import Testing
@testable import PerfettoCore

/// The lane slices' fast encoders (`emitKnownRichSlice`: no size computed first, lengths
/// filled in after the fields, the fields moved up when a length needs two bytes) write
/// exactly the bytes of the general ones (`emitPooledRichSlice`), from one-byte packets to
/// packets of thousands of bytes (many flows), with and without span args.
struct LaneSliceEncodingTests {
    /// Writes the same slice twice into each of two writers in the same state: once with
    /// the general encoder, then with it (A) or with the fast one (B). The second slices
    /// must be identical.
    func bothWays(flowCount: Int, spanArgs: Bool, terminating: UInt64, begin: UInt64, end: UInt64, track: UInt64,
                  spanIds: (Int64, Int64), nameCount: Int) throws -> (general: [UInt8], fast: [UInt8]) {
        let flows = (0..<flowCount).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 | 1 }
        var out: [[UInt8]] = []
        for fast in [false, true] {
            let pool = StringPool()
            let writer = try TraceWriter(processId: "p", sink: .memory())
            try writer.emitProcessDescriptor(exe: "e")
            // Enough distinct names that the slice's name iid takes two varint bytes.
            var name: UInt32 = 0
            for k in 0..<nameCount {
                name = try pool.id("name-\(k)")
                try writer.emitPooledSlice(track: 7, begin: 1, end: 2, name: name, target: try pool.id("t"),
                                           filename: try pool.id("f.rs"), line: 3, pool: pool)
            }
            let target = try pool.id("t"), file = try pool.id("f.rs")
            let ids: (Int64, Int64)? = spanArgs ? spanIds : nil
            try flows.withUnsafeBufferPointer { f in
                let starting = flowCount == 0 ? nil : f
                try writer.emitPooledRichSlice(track: track, begin: begin, end: end, name: name, target: target,
                                               filename: file, line: 3, pool: pool, spanIds: ids, flowIds: starting,
                                               terminatingFlowId: terminating)
                let before = writer.bufferedByteCount
                if fast {
                    let location = writer.knownLocationIid(filename: file, line: 3, pool: pool)
                    let known = try #require(writer.knownIds(name: name, target: target, location: location, line: 3,
                                                             pool: pool, spanArgs: spanArgs))
                    try writer.emitKnownRichSlice(track: track, trackField: PacketEncoder.trackField(track), begin: begin,
                                                  end: end, ids: known, spanIds: ids, flowIds: starting,
                                                  terminatingFlowId: terminating)
                } else {
                    try writer.emitPooledRichSlice(track: track, begin: begin, end: end, name: name, target: target,
                                                   filename: file, line: 3, pool: pool, spanIds: ids, flowIds: starting,
                                                   terminatingFlowId: terminating)
                }
                #expect(writer.packetCount == 2 * nameCount + 5)
                out.append(Array(try writer.takeBytes().dropFirst(before)))
            }
        }
        return (out[0], out[1])
    }

    @Test(arguments: [0, 1, 2, 5, 6, 7, 12, 13, 40, 1_700])
    func sameBytesAsTheGeneralEncoder(flowCount: Int) throws {
        for spanArgs in [false, true] {
            for (begin, end, track) in [(UInt64(5), UInt64(9), UInt64(3)),
                                        (1_700_000_000_000_000_000, 1_700_000_000_005_000_000, UInt64.max - 12)] {
                for terminating in [0, UInt64.max] as [UInt64] {
                    let (general, fast) = try bothWays(flowCount: flowCount, spanArgs: spanArgs, terminating: terminating,
                                                       begin: begin, end: end, track: track,
                                                       spanIds: (Int64.min, -1), nameCount: 200)
                    #expect(fast == general, "flows \(flowCount), args \(spanArgs), begin \(begin), terminating \(terminating)")
                    #expect(general.count > 20)
                }
            }
        }
    }

    /// With a chunk sink, the chunks (their bytes, and the packets they are cut after) are
    /// the same whether the slices go through the fast encoder or the general one: both
    /// packets at once only when the begin cannot fill a chunk, one by one otherwise.
    @Test(arguments: [1, 60, 100, 150, 257, 4096])
    func sameChunksAsTheGeneralEncoder(chunkSize: Int) throws {
        final class Chunks { var all: [[UInt8]] = [] }
        var results: [[[UInt8]]] = []
        for fast in [false, true] {
            let chunks = Chunks()
            let writer = try TraceWriter(processId: "p", sink: .chunks(chunkSize: chunkSize) {
                (_, bytes) throws(PerfettoError) in chunks.all.append(Array(bytes))
            })
            try writer.emitProcessDescriptor(exe: "e")
            let pool = StringPool()
            let name = try pool.id("n"), target = try pool.id("t"), file = try pool.id("f.rs")
            for k in 0..<60 {
                let begin = UInt64(1_700_000_000_000_000_000 + k * 1_000), end = begin + 500
                let track = UInt64(k % 3 + 1) &* 0x9E37_79B9_7F4A_7C15
                let flows = [UInt64](repeating: UInt64(k + 1) &* 0xC2B2_AE3D_27D4_EB4F, count: k % 4)
                let ids = (Int64(k + 1), Int64(k))
                try flows.withUnsafeBufferPointer { f in
                    let starting = flows.isEmpty ? nil : f
                    let location = writer.knownLocationIid(filename: file, line: 3, pool: pool)
                    if fast, let known = writer.knownIds(name: name, target: target, location: location, line: 3,
                                                         pool: pool, spanArgs: true) {
                        try writer.emitKnownRichSlice(track: track, trackField: PacketEncoder.trackField(track),
                                                      begin: begin, end: end, ids: known, spanIds: ids,
                                                      flowIds: starting, terminatingFlowId: UInt64(k % 2))
                    } else {
                        try writer.emitPooledRichSlice(track: track, begin: begin, end: end, name: name, target: target,
                                                       filename: file, line: 3, pool: pool, spanIds: ids,
                                                       flowIds: starting, terminatingFlowId: UInt64(k % 2))
                    }
                }
            }
            try writer.flush()
            #expect(writer.packetCount == 1 + 2 * 60)
            results.append(chunks.all)
        }
        #expect(results[0] == results[1], "chunk size \(chunkSize)")
        #expect(results[0].count > (chunkSize == 4096 ? 0 : 10))
    }
}
