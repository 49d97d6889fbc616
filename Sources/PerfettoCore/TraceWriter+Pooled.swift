/// Slices whose strings come from a `StringPool` (the Arrow import path). Each pool
/// string is resolved to the writer's interned id once; afterwards a slice costs two
/// array reads and one integer-map read, with no hashing.
extension TraceWriter {
    /// A begin and an end packet on `track`.
    @inline(__always)
    public func emitPooledSlice(track: UInt64, begin: UInt64, end: UInt64, name: UInt32, target: UInt32,
                                filename: UInt32, line: UInt32, pool: StringPool) throws(PerfettoError) {
        try checkRunning()
        var new = PacketEncoder.NewEntries()
        let ids = try pooledIds(name: name, target: target, filename: filename, line: line, pool: pool, new: &new)
        try emitEventPair(track: track, begin: begin, end: end, ids: ids, new: new)
    }

    @inline(__always)
    func pooledIds(name: UInt32, target: UInt32, filename: UInt32, line: UInt32, pool: StringPool,
                   new: inout PacketEncoder.NewEntries) throws(PerfettoError) -> PacketEncoder.EventIds {
        if cachedPool !== pool { resetPoolCache(pool) }
        var ids = PacketEncoder.EventIds(category: 0, name: 0, location: 0, line: line)
        let n = Int(name), t = Int(target)
        ids.name = n < pooledNameIids.count ? pooledNameIids[n] : 0
        ids.category = t < pooledCategoryIids.count ? pooledCategoryIids[t] : 0
        let locationKey = UInt64(filename) << 32 | UInt64(line)
        ids.location = pooledLocationIids.get(locationKey)
        if ids.name != 0 && ids.category != 0 && ids.location != 0 { return ids }

        do {
            if ids.name == 0 {
                let bytes = pool.bytes(name)
                (ids.name, new.hasName) = try internValid(bytes, extra: 0, in: names)
                new.name = bytes
                store(ids.name, at: n, in: &pooledNameIids)
            }
            if ids.category == 0 {
                let bytes = pool.bytes(target)
                (ids.category, new.hasCategory) = try internValid(bytes, extra: 0, in: categories)
                new.category = bytes
                store(ids.category, at: t, in: &pooledCategoryIids)
            }
            if ids.location == 0 {
                let bytes = pool.bytes(filename)
                (ids.location, new.hasLocation) = try internValid(bytes, extra: line, in: locations)
                new.file = bytes
                pooledLocationIids.set(locationKey, ids.location)
            }
        } catch {
            stopOnError(error)
            throw error
        }
        return ids
    }

    /// The iid of already-validated `bytes` in `table`, and whether it is new.
    func internValid(_ bytes: UnsafeRawBufferPointer, extra: UInt32,
                             in table: InternTable) throws(PerfettoError) -> (UInt64, Bool) {
        let hash = table.hash(bytes, extra: extra)
        let found = table.lookup(bytes, extra: extra, hash: hash)
        if found != 0 { return (found, false) }
        return (try table.insert(bytes, extra: extra, hash: hash), true)
    }

    func store(_ iid: UInt64, at index: Int, in cache: inout [UInt64]) {
        if index >= cache.count { cache.append(contentsOf: repeatElement(0, count: index + 1 - cache.count)) }
        cache[index] = iid
    }

    func resetPoolCache(_ pool: StringPool) {
        cachedPool = pool
        pooledNameIids.removeAll(keepingCapacity: true)
        pooledCategoryIids.removeAll(keepingCapacity: true)
        pooledLocationIids = IdMap()
    }
}
