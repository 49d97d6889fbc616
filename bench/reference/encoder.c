/* A minimal C encoder of the writer workload (docs/benchmarks.md): the same packets as
 * TraceWriter, in plain C with no error handling, as a same-run speed reference. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_reference.h"

typedef struct {
    uint8_t *p;
} cursor;

static inline size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) { v >>= 7; n++; }
    return n;
}

static inline void put(cursor *c, uint8_t b) { *c->p++ = b; }

static inline void put_varint(cursor *c, uint64_t v) {
    while (v >= 0x80) { *c->p++ = (uint8_t)(v | 0x80); v >>= 7; }
    *c->p++ = (uint8_t)v;
}

static inline void put_bytes(cursor *c, const uint8_t *s, size_t n) { memcpy(c->p, s, n); c->p += n; }

static inline size_t delimited_size(size_t tag, size_t len) { return tag + varint_size(len) + len; }

static int first_packet = 1;

static inline size_t sequence_size(void) { return 4 + (first_packet ? 3 : 0); }

static inline void put_sequence(cursor *c) {
    put(c, 0x50); put(c, 1);                      /* trusted_packet_sequence_id = 1 */
    put(c, 0x68); put(c, first_packet ? 3 : 2);   /* sequence_flags */
    if (first_packet) { put(c, 0xB8); put(c, 0x05); put(c, 1); }  /* first_packet_on_sequence */
    first_packet = 0;
}

/* kind 0 process (pid, name), 1 thread (pid, tid, name, parent), 2 named (name, parent). */
static void descriptor(cursor *c, uint64_t uuid, int kind, int32_t pid, int32_t tid, bench_str name,
                       uint64_t parent) {
    uint64_t pid64 = (uint64_t)(int64_t)pid, tid64 = (uint64_t)(int64_t)tid;
    size_t inner = 0, d = 1 + varint_size(uuid);
    if (kind == 0) {
        inner = 1 + varint_size(pid64) + delimited_size(1, name.len);
        d += delimited_size(1, inner);
    } else if (kind == 1) {
        inner = 1 + varint_size(pid64) + 1 + varint_size(tid64) + delimited_size(1, name.len);
        d += delimited_size(1, inner) + 1 + varint_size(parent);
    } else {
        d += delimited_size(1, name.len) + 1 + varint_size(parent);
    }
    size_t packet = delimited_size(2, d) + sequence_size();
    put(c, 0x0A); put_varint(c, packet);
    put(c, 0xE2); put(c, 0x03); put_varint(c, d);
    put(c, 0x08); put_varint(c, uuid);
    if (kind == 0) {
        put(c, 0x1A); put_varint(c, inner);
        put(c, 0x08); put_varint(c, pid64);
        put(c, 0x32); put_varint(c, name.len); put_bytes(c, name.ptr, name.len);
    } else if (kind == 1) {
        put(c, 0x22); put_varint(c, inner);
        put(c, 0x08); put_varint(c, pid64);
        put(c, 0x10); put_varint(c, tid64);
        put(c, 0x2A); put_varint(c, name.len); put_bytes(c, name.ptr, name.len);
        put(c, 0x28); put_varint(c, parent);
    } else {
        put(c, 0x12); put_varint(c, name.len); put_bytes(c, name.ptr, name.len);
        put(c, 0x28); put_varint(c, parent);
    }
    put_sequence(c);
}

typedef struct {
    uint64_t category, name, location;
    uint32_t line;
    const bench_str *new_category, *new_name, *new_file;
} event_ids;

static void event(cursor *c, int type, uint64_t ts, uint64_t track, const event_ids *ids) {
    size_t ev = 1 + varint_size(ids->category) + 2 + 1 + varint_size(ids->name) + 1 + varint_size(track) + 2
                + varint_size(ids->location);
    size_t cat = 0, nam = 0, loc = 0, interned = 0;
    if (ids->new_category) {
        cat = 1 + varint_size(ids->category) + delimited_size(1, ids->new_category->len);
        interned += delimited_size(1, cat);
    }
    if (ids->new_name) {
        nam = 1 + varint_size(ids->name) + delimited_size(1, ids->new_name->len);
        interned += delimited_size(1, nam);
    }
    if (ids->new_file) {
        loc = 1 + varint_size(ids->location) + delimited_size(1, ids->new_file->len) + 1 + varint_size(ids->line);
        interned += delimited_size(1, loc);
    }
    size_t packet = 1 + varint_size(ev) + ev + 1 + varint_size(ts) + sequence_size();
    if (interned) packet += delimited_size(1, interned);
    put(c, 0x0A); put_varint(c, packet);
    put(c, 0x5A); put_varint(c, ev);
    put(c, 0x18); put_varint(c, ids->category);
    put(c, 0x48); put(c, (uint8_t)type);
    put(c, 0x50); put_varint(c, ids->name);
    put(c, 0x58); put_varint(c, track);
    put(c, 0x90); put(c, 0x02); put_varint(c, ids->location);
    put(c, 0x40); put_varint(c, ts);
    put(c, 0x50); put(c, 1);
    if (interned) {
        put(c, 0x62); put_varint(c, interned);
        if (ids->new_category) {
            put(c, 0x0A); put_varint(c, cat);
            put(c, 0x08); put_varint(c, ids->category);
            put(c, 0x12); put_varint(c, ids->new_category->len);
            put_bytes(c, ids->new_category->ptr, ids->new_category->len);
        }
        if (ids->new_name) {
            put(c, 0x12); put_varint(c, nam);
            put(c, 0x08); put_varint(c, ids->name);
            put(c, 0x12); put_varint(c, ids->new_name->len); put_bytes(c, ids->new_name->ptr, ids->new_name->len);
        }
        if (ids->new_file) {
            put(c, 0x22); put_varint(c, loc);
            put(c, 0x08); put_varint(c, ids->location);
            put(c, 0x12); put_varint(c, ids->new_file->len); put_bytes(c, ids->new_file->ptr, ids->new_file->len);
            put(c, 0x20); put_varint(c, ids->line);
        }
    }
    put(c, 0x68); put(c, 2);
}

/* Interning by hashing the bytes (plus the line for locations) on every call. */
typedef struct {
    uint64_t hash;
    const uint8_t *key;
    size_t len;
    uint32_t extra;
    uint64_t iid;
} slot;

typedef struct {
    slot *slots;
    size_t mask, count;
} table;

static uint64_t hash_bytes(const uint8_t *p, size_t n, uint32_t extra) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n ^ ((uint64_t)extra << 32);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, p, n);
    h = (h ^ v) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 29);
}

/* The iid of the key; *is_new when it was just assigned (ids 1, 2, ... in order of use). */
static uint64_t intern(table *t, const uint8_t *key, size_t len, uint32_t extra, int *is_new) {
    uint64_t h = hash_bytes(key, len, extra);
    size_t i = (size_t)h & t->mask;
    for (;;) {
        slot *s = &t->slots[i];
        if (!s->iid) break;
        if (s->hash == h && s->len == len && s->extra == extra && memcmp(s->key, key, len) == 0) {
            *is_new = 0;
            return s->iid;
        }
        i = (i + 1) & t->mask;
    }
    slot *s = &t->slots[i];
    s->hash = h; s->key = key; s->len = len; s->extra = extra; s->iid = ++t->count;
    *is_new = 1;
    return s->iid;
}

typedef struct {
    table names, categories, locations;
    uint64_t *name_iids, *category_iids, *location_iids;
    uint64_t next_name, next_category, next_location;
} interner;

static event_ids resolve(interner *in, const bench_workload *w, int mode, const bench_span *s) {
    event_ids ids;
    const bench_str *name = &w->names[s->name], *target = &w->targets[s->target];
    const bench_str *file = &w->files[w->location_file[s->location]];
    ids.line = w->location_line[s->location];
    ids.new_category = ids.new_name = ids.new_file = NULL;
    if (mode == BENCH_INTERN_PER_CALL) {
        int fresh;
        ids.category = intern(&in->categories, target->ptr, target->len, 0, &fresh);
        if (fresh) ids.new_category = target;
        ids.name = intern(&in->names, name->ptr, name->len, 0, &fresh);
        if (fresh) ids.new_name = name;
        ids.location = intern(&in->locations, file->ptr, file->len, ids.line, &fresh);
        if (fresh) ids.new_file = file;
    } else {
        /* Pool indices are distinct strings (the workload's pools are unique). */
        if (!(ids.category = in->category_iids[s->target])) {
            ids.category = in->category_iids[s->target] = ++in->next_category;
            ids.new_category = target;
        }
        if (!(ids.name = in->name_iids[s->name])) {
            ids.name = in->name_iids[s->name] = ++in->next_name;
            ids.new_name = name;
        }
        if (!(ids.location = in->location_iids[s->location])) {
            ids.location = in->location_iids[s->location] = ++in->next_location;
            ids.new_file = file;
        }
    }
    return ids;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static table table_new(size_t capacity) {
    table t;
    size_t size = 16;
    while (size < capacity * 2) size <<= 1;
    t.slots = calloc(size, sizeof(slot));
    t.mask = size - 1;
    t.count = 0;
    return t;
}

size_t bench_reference_encode(const bench_workload *w, int mode, uint8_t *out, size_t cap,
                              double *thread_seconds) {
    size_t total = 0;
    for (size_t k = 0; k < w->thread_count; k++) total += w->thread_span_counts[k];
    total += w->async_count;
    if (cap < total * 128 + 65536) return 0;  /* a packet pair is well under 128 bytes here */
    interner in;
    in.names = table_new(w->name_count);
    in.categories = table_new(w->target_count);
    in.locations = table_new(w->location_count);
    in.name_iids = calloc(w->name_count, sizeof(uint64_t));
    in.category_iids = calloc(w->target_count, sizeof(uint64_t));
    in.location_iids = calloc(w->location_count, sizeof(uint64_t));
    in.next_name = in.next_category = in.next_location = 0;
    first_packet = 1;

    double start = now();
    cursor c = {out};
    int32_t pid = (int32_t)(uint32_t)w->process_uuid;
    descriptor(&c, w->process_uuid, 0, pid, 0, w->exe, 0);
    for (size_t k = 0; k < w->thread_count; k++)
        descriptor(&c, w->thread_uuids[k], 1, pid, w->thread_ids[k], w->thread_names[k], w->process_uuid);
    static const uint8_t async_name[] = "Async Operations";
    bench_str async = {async_name, sizeof async_name - 1};
    descriptor(&c, w->async_uuid, 2, 0, 0, async, w->process_uuid);
    for (size_t k = 0; k < w->thread_count; k++) {
        uint64_t track = w->thread_uuids[k];
        const bench_span *spans = w->thread_spans[k];
        for (size_t i = 0; i < w->thread_span_counts[k]; i++) {
            event_ids ids = resolve(&in, w, mode, &spans[i]);
            event(&c, 1, spans[i].begin, track, &ids);
            ids.new_category = ids.new_name = ids.new_file = NULL;
            event(&c, 2, spans[i].end, track, &ids);
        }
    }
    *thread_seconds = now() - start;
    for (size_t i = 0; i < w->async_count; i++) {
        event_ids ids = resolve(&in, w, mode, &w->async_spans[i]);
        event(&c, 1, w->async_spans[i].begin, w->async_uuid, &ids);
        ids = resolve(&in, w, mode, &w->async_spans[i]);
        event(&c, 2, w->async_spans[i].end, w->async_uuid, &ids);
    }
    free(in.names.slots); free(in.categories.slots); free(in.locations.slots);
    free(in.name_iids); free(in.category_iids); free(in.location_iids);
    return (size_t)(c.p - out);
}
