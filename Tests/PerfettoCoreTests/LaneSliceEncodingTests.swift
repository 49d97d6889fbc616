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
                    try writer.emitKnownRichSlice(track: track, begin: begin, end: end, ids: known, spanIds: ids,
                                                  flowIds: starting, terminatingFlowId: terminating)
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
}
