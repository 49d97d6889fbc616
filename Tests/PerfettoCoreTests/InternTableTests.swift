import Testing
@testable import PerfettoCore

// The interning table: dense ids from 1 in first-use order, stable across rehashes.

struct InternTableTests {
    /// Many keys (forcing rehashes), including prefixes of each other, empty keys and
    /// keys that differ only in `extra`: ids are dense, in order, and stable.
    @Test func denseStableIdsAcrossRehashes() throws {
        let table = InternTable()
        var keys: [([UInt8], UInt32)] = [([], 0), ([], 1)]
        for i in 0..<20_000 {
            let text = Array("key-\(i)-".utf8) + Array(repeating: UInt8(ascii: "x"), count: i % 40)
            keys.append((text, 0))
            keys.append((Array(text.dropLast()), 0))
            keys.append((text, UInt32(i % 3 + 1)))
        }
        var seen: [String: UInt64] = [:]
        var expectedNext: UInt64 = 1
        for (key, extra) in keys {
            let id = try key.withUnsafeBytes { bytes -> UInt64 in
                let hash = InternTable.hash(bytes, extra: extra)
                let found = table.lookup(bytes, extra: extra, hash: hash)
                return found != 0 ? found : try table.insert(bytes, extra: extra, hash: hash)
            }
            let name = "\(key)/\(extra)"
            if let previous = seen[name] {
                #expect(id == previous)
            } else {
                #expect(id == expectedNext)
                expectedNext += 1
                seen[name] = id
            }
        }
        #expect(table.count == seen.count)
        // Every key still resolves after all the rehashes.
        for (key, extra) in keys {
            let id = key.withUnsafeBytes { table.lookup($0, extra: extra, hash: InternTable.hash($0, extra: extra)) }
            #expect(id == seen["\(key)/\(extra)"])
        }
    }
}
