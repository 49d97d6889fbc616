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
                let hash = table.hash(bytes, extra: extra)
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
            let id = key.withUnsafeBytes { table.lookup($0, extra: extra, hash: table.hash($0, extra: extra)) }
            #expect(id == seen["\(key)/\(extra)"])
        }
    }

    /// 16-byte keys whose bytes 0-3 and 8-11 spell wyhash's constant zeroed its multiply,
    /// so every such key had one hash (one probe chain). Each table now mixes in its own
    /// secret: those keys hash apart, and two tables hash one key differently.
    @Test func keysCannotBeChosenToCollide() {
        let table = InternTable()
        var hashes = Set<UInt64>()
        for i in 0..<1000 {
            var key: [UInt8] = [0xD1, 0x7E, 0x03, 0xE7, 0, 0, 0, 0, 0xDB, 0x28, 0xB4, 0xA0, 0, 0, 0, 0]
            key[4] = UInt8(i & 0xFF)
            key[12] = UInt8(i >> 8)
            hashes.insert(key.withUnsafeBytes { table.hash($0, extra: 0) })
        }
        #expect(hashes.count == 1000)
        let key = Array("frame".utf8)
        #expect(key.withUnsafeBytes { InternTable().hash($0, extra: 0) != InternTable().hash($0, extra: 0) })
    }
}
