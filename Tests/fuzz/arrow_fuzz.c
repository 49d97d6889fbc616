/*
 * arrow_fuzz: a libFuzzer target for the C ABI. It decodes its input into generator
 * options, Arrow schemas, arrays and streams (valid ones and hostile ones: negative,
 * overflowing and impossible counts, lengths and offsets, wrong buffer and child counts,
 * NULL buffers, out-of-range string offsets, views and dictionary indices, failing
 * producers and sinks) and drives the generator (thread spans, async events, logs,
 * measures), the writer and the validator (on the traces written, and on raw bytes)
 * through perfetto_mm.h.
 *
 * Built with clang -fsanitize=fuzzer,address against the library built with the same
 * sanitizers (make fuzz). Any crash, AddressSanitizer report, leak or hang is a bug.
 *
 * The one thing it never makes is what the library cannot check (perfetto_mm.h,
 * "What cannot be validated"): a plausible length or offset the buffers do not hold.
 * Every buffer holds what its array claims, unless the claim is impossible (negative,
 * overflowing, or beyond 2^47 bytes) or concerns elements no index reaches (an array
 * longer than its batch, a dictionary longer than its real entries whose indices
 * stay within those).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../c/arrow_build.h"

/* ---- Input decoding ---- */

typedef struct fz {
    const uint8_t *p;
    size_t n;
} fz;

static uint8_t u8(fz *f) {
    if (!f->n) return 0;
    f->n--;
    return *f->p++;
}

static uint64_t u64(fz *f) {
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++) v = v << 8 | u8(f);
    return v;
}

/* true with probability about k/256; false once the input is exhausted (benign defaults) */
static int chance(fz *f, int k) { return u8(f) >= 256 - k; }

/* Values no buffer can hold or that overflow: negative, past 2^47 bytes whatever the width. */
static int64_t impossible(fz *f) {
    static const int64_t values[] = {
        -1, INT64_MIN, INT64_MAX, INT64_MAX - 1, ((int64_t)1 << 59) - 4, (int64_t)1 << 47, (int64_t)1 << 48,
        (int64_t)1 << 56, (int64_t)1 << 62, -((int64_t)1 << 32), INT64_MAX / 2, INT64_MAX / 8 + 1, INT64_MAX / 16 + 3,
    };
    return values[u8(f) % (sizeof values / sizeof values[0])];
}

/* ---- Arrays ---- */

/* The column kinds the decoder makes. */
enum kind { K_INT, K_UTF8, K_LARGE, K_VIEW, K_DICT, K_DOUBLE, N_KINDS };

static const char *const int_formats[] = {"l", "tsn:", "tsn:UTC", "i", "c", "C", "s", "S", "I", "L",
                                          "tsu:UTC", "tsm:", "tss:Europe/Paris"};
static const int int_widths[] = {8, 8, 8, 4, 1, 1, 2, 2, 4, 8, 8, 8, 8};
/* Time columns: int64 or a timestamp (ns, us, ms, s). */
static const int time_formats[] = {0, 1, 2, 10, 11, 12};

typedef struct column_type {
    enum kind kind;
    int int_format;          /* K_INT: index in int_formats; K_DICT: the index type */
    enum kind dict_values;   /* K_DICT: K_UTF8, K_LARGE or K_VIEW */
} column_type;

static const char *format_of(column_type t) {
    switch (t.kind) {
    case K_INT: return int_formats[t.int_format];
    case K_UTF8: return "u";
    case K_LARGE: return "U";
    case K_VIEW: return "vu";
    case K_DICT: return int_formats[t.int_format];
    default: return "g";
    }
}

static const char *values_format_of(enum kind k) { return k == K_LARGE ? "U" : k == K_VIEW ? "vu" : "u"; }

/* A validity bitmap for `bits` bits, or none. */
static void validity(fz *f, ab_stream *s, struct ArrowArray *a, int64_t bits) {
    if (chance(f, 60)) {
        uint8_t *bitmap = (uint8_t *)ab_alloc(s, (size_t)(bits / 8 + 1));
        int64_t i;
        for (i = 0; i < bits / 8 + 1; i++) bitmap[i] = u8(f) | (uint8_t)(chance(f, 128) ? 0xff : 0);
        a->buffers[0] = bitmap;
        a->null_count = chance(f, 30) ? -1 : (int64_t)(u8(f) % 5);
    } else {
        a->null_count = chance(f, 10) ? (chance(f, 128) ? -1 : 1) : 0;
    }
}

/* String values (utf8, large_utf8 or utf8_view) for `n` physical slots. */
static struct ArrowArray *strings(fz *f, ab_stream *s, enum kind k, int64_t n) {
    int64_t i;
    if (k == K_VIEW) {
        int nbuf = u8(f) % 3, b;
        struct ArrowArray *a = ab_array(s, n, 0, 3 + nbuf);
        int64_t *sizes = (int64_t *)ab_alloc(s, (size_t)(nbuf ? nbuf : 1) * 8);
        uint8_t *views = (uint8_t *)ab_alloc(s, (size_t)(n ? n : 1) * 16);
        for (b = 0; b < nbuf; b++) {
            int64_t size = u8(f) % 64;
            uint8_t *data = (uint8_t *)ab_alloc(s, (size_t)size);
            int64_t j;
            for (j = 0; j < size; j++) data[j] = chance(f, 16) ? u8(f) : (uint8_t)('a' + j % 26);
            sizes[b] = size;
            a->buffers[2 + b] = chance(f, 8) ? NULL : data;
        }
        a->buffers[2 + nbuf] = chance(f, 6) ? NULL : sizes;
        for (i = 0; i < n; i++) {
            int32_t length = (int32_t)(u8(f) % 40), buffer = (int32_t)(u8(f) % (nbuf + 2)) - 1, offset = u8(f) % 70;
            if (chance(f, 6)) length = chance(f, 128) ? -1 : INT32_MAX;
            if (chance(f, 6)) offset = chance(f, 128) ? -5 : INT32_MAX;
            memcpy(views + i * 16, &length, 4);
            if (length <= 12) {
                int j;
                for (j = 0; j < 12; j++) views[i * 16 + 4 + j] = chance(f, 16) ? u8(f) : (uint8_t)('A' + j);
            } else {
                memcpy(views + i * 16 + 8, &buffer, 4);
                memcpy(views + i * 16 + 12, &offset, 4);
            }
        }
        a->buffers[1] = chance(f, 6) ? NULL : views;
        return a;
    } else {
        struct ArrowArray *a = ab_array(s, n, 0, 3);
        int large = k == K_LARGE;
        int64_t size = u8(f) % 64, j;
        uint8_t *data = (uint8_t *)ab_alloc(s, (size_t)size);
        uint8_t *offsets = (uint8_t *)ab_alloc(s, (size_t)(n + 1) * (large ? 8 : 4));
        for (j = 0; j < size; j++) data[j] = chance(f, 16) ? u8(f) : (uint8_t)('a' + j % 26);
        for (i = 0; i <= n; i++) {
            int64_t o = (int64_t)(u8(f) % (size + 1));
            if (chance(f, 8)) o = large ? impossible(f) : -(int64_t)(u8(f) + 1);
            if (large) memcpy(offsets + i * 8, &o, 8);
            else { int32_t o32 = (int32_t)o; memcpy(offsets + i * 4, &o32, 4); }
        }
        a->buffers[1] = chance(f, 6) ? NULL : offsets;
        a->buffers[2] = chance(f, 6) ? NULL : data;
        return a;
    }
}

/* Stores index `k` at slot `i` in the type int_formats[format]; returns the value the
   library reads back (signed or unsigned as the format says). */
static int64_t store_index(uint8_t *indices, int64_t i, int format, int64_t k) {
    switch (format) {
    case 4: { int8_t v = (int8_t)k; memcpy(indices + i, &v, 1); return v; }
    case 5: { uint8_t v = (uint8_t)k; memcpy(indices + i, &v, 1); return v; }
    case 6: { int16_t v = (int16_t)k; memcpy(indices + i * 2, &v, 2); return v; }
    case 7: { uint16_t v = (uint16_t)k; memcpy(indices + i * 2, &v, 2); return v; }
    case 3: { int32_t v = (int32_t)k; memcpy(indices + i * 4, &v, 4); return v; }
    case 8: { uint32_t v = (uint32_t)k; memcpy(indices + i * 4, &v, 4); return v; }
    default: memcpy(indices + i * 8, &k, 8); return k; /* int64; uint64 reads as the same bits */
    }
}

/* Hostile changes to the counts of `a` (whose real buffer count is `buffers`). */
static void hostile_counts(fz *f, ab_stream *s, struct ArrowArray *a, int view) {
    if (chance(f, 5)) {
        /* Other buffer counts: impossible ones, or smaller/larger with the buffers array
           really that long (extra slots NULL). A view array keeps its sizes buffer last. */
        int64_t n = chance(f, 128) ? impossible(f) : (int64_t)(u8(f) % 6);
        if (view && n > 0 && n < a->n_buffers) n = u8(f) % 3;
        if (n > a->n_buffers && n < 16) {
            const void **grown = (const void **)ab_alloc(s, (size_t)n * sizeof(void *));
            memcpy(grown, a->buffers, (size_t)a->n_buffers * sizeof(void *));
            if (view) { grown[n - 1] = NULL; }
            a->buffers = grown;
        }
        a->n_buffers = n;
    }
    if (chance(f, 4)) a->buffers = NULL;
    if (chance(f, 4)) a->n_children = chance(f, 128) ? impossible(f) : (int64_t)(u8(f) % 4);
    if (chance(f, 4)) a->dictionary = NULL;
}

/* A column of type `t` for physical slots [0, n): `n` = batch offset + column offset + rows. */
static struct ArrowArray *column(fz *f, ab_stream *s, column_type t, int64_t n) {
    struct ArrowArray *a;
    int64_t i;
    switch (t.kind) {
    case K_INT: case K_DOUBLE: {
        int width = t.kind == K_INT ? int_widths[t.int_format] : 8;
        uint8_t *values = (uint8_t *)ab_alloc(s, (size_t)(n * width + 1));
        int misalign = chance(f, 30);
        a = ab_array(s, n, 0, 2);
        for (i = 0; i < n * width; i++) values[i + misalign] = chance(f, 40) ? u8(f) : (uint8_t)(i % width ? 0 : i);
        a->buffers[1] = chance(f, 4) ? NULL : values + misalign;
        break;
    }
    case K_DICT: {
        int width = int_widths[t.int_format];
        int64_t entries = u8(f) % 8, doffset = u8(f) % 3;
        struct ArrowArray *d = strings(f, s, t.dict_values, entries + doffset);
        int overclaim = chance(f, 20) && entries > 0;
        uint8_t *indices = (uint8_t *)ab_alloc(s, (size_t)(n * width + 1));
        a = ab_array(s, n, 0, 2);
        d->offset = doffset;
        d->length = entries;
        validity(f, s, d, entries + doffset);
        if (overclaim) {
            /* Far more entries than exist; the indices reach only the real ones. */
            static const int64_t claims[] = {((int64_t)1 << 32) + 1, (int64_t)1 << 40, ((int64_t)1 << 44) - 1,
                                             (int64_t)1 << 20, (int64_t)1 << 24};
            d->length = claims[u8(f) % 5];
        }
        for (i = 0; i < n; i++) {
            int64_t k = (int64_t)(u8(f) % (entries + 3)) - 1; /* -1 .. entries + 1: some out of range */
            if (chance(f, 4)) k = impossible(f);
            k = store_index(indices, i, t.int_format, k);
            /* An index the library reads as within the claimed length must be a real entry. */
            if (overclaim && k >= entries) store_index(indices, i, t.int_format, k % entries);
        }
        a->buffers[1] = chance(f, 4) ? NULL : indices;
        hostile_counts(f, s, d, t.dict_values == K_VIEW);
        if (chance(f, 4)) d->length = impossible(f);
        if (chance(f, 4)) d->offset = impossible(f);
        a->dictionary = chance(f, 4) ? NULL : d;
        break;
    }
    default:
        a = strings(f, s, t.kind, n);
        break;
    }
    validity(f, s, a, n);
    hostile_counts(f, s, a, t.kind == K_VIEW);
    return a;
}

/* ---- Streams ---- */

static const char *const thread_columns[] = {"begin", "end", "name", "target", "filename", "line"};
static const char *const async_columns[] = {"time", "event_type", "span_id", "parent_span_id", "name",
                                            "filename", "target", "line", "depth"};
static const char *const log_columns[] = {"time", "target", "msg", "level"};
static const char *const measure_columns[] = {"time", "name", "unit", "value"};

/* What a stream is for. */
enum purpose { THREAD_SPANS, ASYNC_EVENTS, LOG_ENTRIES, MEASURES };

static column_type expected_type(const char *name, fz *f) {
    column_type t;
    memset(&t, 0, sizeof t);
    if (!strcmp(name, "begin") || !strcmp(name, "end") || !strcmp(name, "time")) {
        t.kind = K_INT;
        t.int_format = time_formats[u8(f) % 6];
    } else if (!strcmp(name, "value")) {
        t.kind = K_DOUBLE;
    } else if (!strcmp(name, "span_id") || !strcmp(name, "parent_span_id") || !strcmp(name, "line") ||
               !strcmp(name, "depth") || !strcmp(name, "level")) {
        t.kind = K_INT;
        t.int_format = u8(f) % 10;
    } else {
        t.kind = (enum kind)(K_UTF8 + u8(f) % 4);
        t.int_format = u8(f) % 10;
        t.dict_values = (enum kind)(K_UTF8 + u8(f) % 3);
        if (t.int_format == 1 || t.int_format == 2) t.int_format = 3; /* tsn is no index type */
    }
    return t;
}

static ab_stream *decode_stream(fz *f, ab_counts *counts, enum purpose purpose) {
    ab_stream *s = ab_new(counts);
    const char *names[12];
    const char *formats[12];
    const char *dictionary_formats[12];
    column_type types[12];
    int n = 0, i, b, n_batches;
    const char *const *wanted = purpose == ASYNC_EVENTS ? async_columns : purpose == LOG_ENTRIES ? log_columns
                                : purpose == MEASURES ? measure_columns : thread_columns;
    int n_wanted = purpose == ASYNC_EVENTS ? (chance(f, 128) ? 9 : 8) : purpose == THREAD_SPANS ? 6 : 4;

    for (i = 0; i < n_wanted && n < 12; i++) {
        if (chance(f, 4)) continue; /* a missing column */
        names[n] = wanted[i];
        types[n] = expected_type(wanted[i], f);
        if (chance(f, 6)) { /* a mistyped column */
            types[n].kind = (enum kind)(u8(f) % N_KINDS);
            types[n].int_format = u8(f) % 10;
            types[n].dict_values = (enum kind)(K_UTF8 + u8(f) % 3);
        }
        n++;
    }
    if (chance(f, 20) && n < 12) { /* an ignored extra column */
        names[n] = "extra";
        memset(&types[n], 0, sizeof types[n]);
        types[n].kind = (enum kind)(u8(f) % N_KINDS);
        if (types[n].kind == K_DICT) types[n].kind = K_UTF8;
        n++;
    }
    for (i = 0; i < n; i++) {
        formats[i] = format_of(types[i]);
        dictionary_formats[i] = types[i].kind == K_DICT ? values_format_of(types[i].dict_values) : NULL;
    }
    ab_set_fields(s, n, names, formats, dictionary_formats);
    if (chance(f, 4)) s->schema.n_children = impossible(f);
    if (chance(f, 3)) s->schema.format = chance(f, 128) ? NULL : "+l";
    if (n && chance(f, 3)) s->schema.children[u8(f) % n]->format = NULL;
    if (n && chance(f, 3)) s->schema.children[u8(f) % n]->name = NULL;
    if (chance(f, 3)) s->schema.children = NULL;
    if (chance(f, 3)) s->fail_schema = 22;

    n_batches = u8(f) % 4;
    for (b = 0; b < n_batches; b++) {
        int64_t rows = u8(f) % 40, offset = u8(f) % 4;
        struct ArrowArray *batch = ab_add_batch(s, rows, n);
        batch->offset = offset;
        for (i = 0; i < n; i++) {
            int64_t column_offset = u8(f) % 4;
            struct ArrowArray *a = column(f, s, types[i], column_offset + offset + rows);
            a->offset = column_offset;
            a->length = offset + rows; /* what the batch needs */
            if (chance(f, 10)) a->length = chance(f, 128) ? INT64_MAX - column_offset : a->length + u8(f);
            if (chance(f, 5)) a->length = chance(f, 128) ? impossible(f) : (int64_t)(u8(f) % 4);
            if (chance(f, 5)) a->offset = impossible(f);
            batch->children[i] = chance(f, 3) ? NULL : a;
        }
        if (chance(f, 4)) batch->length = impossible(f);
        if (chance(f, 4)) batch->offset = impossible(f);
        if (chance(f, 3)) batch->n_children = chance(f, 128) ? impossible(f) : (int64_t)(u8(f) % 8);
        if (chance(f, 3)) batch->children = NULL;
        if (chance(f, 3)) batch->n_buffers = impossible(f);
        if (chance(f, 3)) batch->null_count = 1;
    }
    if (chance(f, 8)) s->fail_at = u8(f) % 4;
    return s;
}

/* ---- Sinks ---- */

typedef struct sink_state {
    int calls_left;
    size_t bytes;
} sink_state;

static int32_t sink(void *ctx, const uint8_t *data, size_t len) {
    sink_state *state = (sink_state *)ctx;
    (void)data;
    state->bytes += len;
    return state->calls_left-- == 0 ? 1 : 0;
}

static void check_releases(const ab_counts *counts) {
    if (counts->streams != 1 || counts->schemas != counts->delivered_schemas ||
        counts->batches != counts->delivered_batches) {
        fprintf(stderr, "release counts: streams %d, schemas %d of %d, batches %d of %d\n", counts->streams,
                counts->schemas, counts->delivered_schemas, counts->batches, counts->delivered_batches);
        abort();
    }
}

static const char pid[] = "34d7c06d-3163-4111-863e-c5fc09d22d51";

/* Validates the trace of buffer writer `w` (what the library wrote; problems such as a span
   ending before it begins, which the input may ask for, are reported, not failures). */
static void validate_trace(pmm_writer *w) {
    uint8_t *bytes = NULL;
    size_t len = 0;
    pmm_validation_stats vstats;
    if (pmm_writer_take_buffer(w, &bytes, &len) != PMM_OK) abort();
    if (pmm_validate_buffer(bytes, len, &vstats, NULL) != PMM_OK) abort();
    pmm_buffer_free(bytes);
}

/* The validator on arbitrary bytes, fed in pieces cut anywhere. */
static void validate_bytes(fz *f) {
    pmm_validator *v = NULL;
    pmm_validation_stats vstats;
    pmm_validation_example example;
    size_t count = 0, k;
    if (pmm_validator_new(&v) != PMM_OK) abort();
    while (f->n) {
        size_t piece = 1 + u8(f) % 64;
        if (piece > f->n) piece = f->n;
        pmm_validator_feed(v, f->p, piece);
        f->p += piece;
        f->n -= piece;
    }
    pmm_validator_finish(v, &vstats);
    pmm_validator_example_count(v, &count);
    for (k = 0; k < count; k++) pmm_validator_get_example(v, k, &example);
    pmm_validator_get_example(v, count, &example);
    pmm_validator_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz input = {data, size};
    fz *f = &input;
    pmm_writer *w = NULL;
    pmm_generator *g = NULL;
    pmm_generator_options options;
    pmm_generator_stats stats;
    pmm_thread threads[2] = {{"s0", 2, 1, "main", 4}, {"s1", 2, 2, "worker", 6}};
    sink_state state = {0, 0};
    int calls, i;
    uint8_t mode = u8(f);

    if (mode == 0x7f) {
        validate_bytes(f);
        return 0;
    }

    if (mode % 3 == 0) {
        pmm_writer_new_buffer(pid, sizeof pid - 1, u8(f), &w);
    } else {
        state.calls_left = chance(f, 40) ? u8(f) % 4 : -1;
        pmm_writer_new_callback(pid, sizeof pid - 1, (size_t)u8(f) * 16, sink, &state, &w);
    }
    if (!w) abort();

    if (mode & 0x80) {
        /* Writer calls with fuzzed strings and times. */
        char text[32];
        int k;
        for (k = 0; k < 8; k++) {
            size_t len = u8(f) % sizeof text;
            uint64_t t0 = chance(f, 30) ? u64(f) : u8(f), t1 = chance(f, 30) ? u64(f) : t0 + u8(f);
            for (i = 0; i < (int)len; i++) text[i] = (char)u8(f);
            switch (u8(f) % 7) {
            case 0: pmm_writer_emit_process_descriptor(w, text, len); break;
            case 1: pmm_writer_emit_thread_descriptor(w, text, len, (int32_t)u8(f), text, len / 2); break;
            case 2: pmm_writer_set_current_thread(w, text, len); break;
            case 3: pmm_writer_emit_async_track_descriptor(w); break;
            case 4: pmm_writer_emit_span(w, t0, t1, text, len, text, len / 2, text, len / 3, u8(f)); break;
            case 5: pmm_writer_emit_async_span_begin(w, t0, text, len, text, 0, NULL, 0, u8(f)); break;
            default: pmm_writer_emit_async_span_end(w, t1, text, len, text, 0, NULL, 0, u8(f)); break;
            }
        }
        pmm_writer_flush(w);
        if (mode % 3 == 0) {
            uint8_t *bytes = NULL;
            size_t len = 0;
            if (pmm_writer_take_buffer(w, &bytes, &len) == PMM_OK) pmm_buffer_free(bytes);
        }
        pmm_writer_free(w);
        return 0;
    }

    memset(&options, 0, sizeof options);
    options.exe = "exe";
    options.exe_len = 3;
    options.threads = threads;
    options.thread_count = 1 + u8(f) % 2;
    options.span_types = 1 + u8(f) % 3;
    options.async_layout = u8(f) % 2;
    options.range_begin_ns = chance(f, 30) ? (int64_t)u64(f) : (int64_t)(u8(f) % 8) * 1000;
    options.range_end_ns = chance(f, 30) ? (int64_t)u64(f) : options.range_begin_ns + (int64_t)u8(f) * 1000000;
    if (pmm_generator_new(w, &options, &g) != PMM_OK) {
        pmm_writer_free(w);
        return 0;
    }

    calls = 1 + u8(f) % 4;
    for (i = 0; i < calls; i++) {
        ab_counts counts;
        struct ArrowArrayStream stream;
        int what = u8(f) % 6;
        enum purpose purpose = what == 3 ? ASYNC_EVENTS : what == 4 ? LOG_ENTRIES : what == 5 ? MEASURES : THREAD_SPANS;
        memset(&counts, 0, sizeof counts);
        ab_export(decode_stream(f, &counts, purpose), &stream);
        if (what == 3) pmm_generator_add_async_events(g, &stream);
        else if (what == 4) pmm_generator_add_log_entries(g, &stream);
        else if (what == 5) pmm_generator_add_measures(g, &stream);
        else pmm_generator_add_thread_spans(g, what == 2 ? "s9" : threads[what].stream_id, 2, &stream);
        check_releases(&counts);
        if (stream.release) abort(); /* the library must have moved the stream out */
        pmm_generator_get_stats(g, &stats);
    }
    if (pmm_generator_finish(g, &stats) == PMM_OK && mode % 3 == 0) validate_trace(w);
    pmm_generator_free(g);
    pmm_writer_free(w);
    return 0;
}
