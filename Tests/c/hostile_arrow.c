/*
 * hostile_arrow: Arrow C streams no real producer makes (negative counts, lengths and
 * offsets beyond any memory, dictionaries claiming 2^40 entries, NULL buffer arrays,
 * unaligned buffers) through the generator's C ABI. Each returns a status and a message
 * naming the problem, or, where the data is readable, the right spans; none crashes,
 * allocates in proportion to a claimed length, or leaks (run under valgrind by make test).
 * The first cases are those that crashed the library before (issue 11); cases the fuzzer
 * found are added at the end.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "arrow_build.h"

static int passed, failed;

static void expect(int ok, const char *what, int line) {
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "FAIL line %d: %s (last error: %s)\n", line, what, pmm_last_error());
    }
}

static const char pid[] = "34d7c06d-3163-4111-863e-c5fc09d22d51";

/* A generator writing to a buffer, for thread "s" over [0, 1000000]. */
static pmm_generator *new_generator(void) {
    pmm_writer *w = NULL;
    pmm_generator *g = NULL;
    pmm_thread thread = {"s", 1, 7, "main", 4};
    pmm_generator_options options;
    memset(&options, 0, sizeof options);
    options.exe = "exe";
    options.exe_len = 3;
    options.threads = &thread;
    options.thread_count = 1;
    options.span_types = PMM_SPANS_BOTH;
    options.async_layout = PMM_LAYOUT_LANES;
    options.range_end_ns = 1000000;
    if (pmm_writer_new_buffer(pid, strlen(pid), 0, &w) != PMM_OK || pmm_generator_new(w, &options, &g) != PMM_OK) {
        fprintf(stderr, "cannot create a generator: %s\n", pmm_last_error());
        exit(2);
    }
    pmm_writer_free(w);
    return g;
}

/* The stream handed to generator `g` was moved out and every Arrow object released once;
 * frees `g` and resets the counts for the next check. */
static void expect_released(const struct ArrowArrayStream *stream, ab_counts *counts, pmm_generator *g, int line) {
    expect(stream->release == NULL, "the caller's stream is moved out", line);
    expect(counts->streams == 1, "the stream is released once", line);
    expect(counts->schemas == counts->delivered_schemas, "every schema is released once", line);
    expect(counts->batches == counts->delivered_batches, "every batch is released once", line);
    pmm_generator_free(g);
    memset(counts, 0, sizeof *counts);
}

/* Hands `s` to add_thread_spans; checks the status, that the message names `word`, that
   every stream, schema and batch was released exactly once and, on success, the number
   of spans written. Then checks a failed generator refuses the next call. */
static void check(ab_stream *s, ab_counts *counts, pmm_status expected, const char *word, int64_t spans, int line) {
    pmm_generator *g = new_generator();
    struct ArrowArrayStream stream;
    pmm_generator_stats stats;
    pmm_status status;
    char what[200];
    ab_export(s, &stream);
    status = pmm_generator_add_thread_spans(g, "s", 1, &stream);
    snprintf(what, sizeof what, "status %d, expected %d", status, expected);
    expect(status == expected, what, line);
    if (status != PMM_OK) {
        snprintf(what, sizeof what, "message names '%s'", word);
        expect(strstr(pmm_last_error(), word) != NULL, what, line);
        expect(pmm_generator_finish(g, &stats) == PMM_ERR_CALL_ORDER &&
               strstr(pmm_last_error(), "failed on an earlier error") != NULL, "failed generator refuses finish", line);
    } else {
        expect(pmm_generator_finish(g, &stats) == PMM_OK, "finish", line);
        snprintf(what, sizeof what, "%llu spans written, expected %lld", (unsigned long long)stats.thread_spans,
                 (long long)spans);
        expect(stats.thread_spans == (uint64_t)spans, what, line);
    }
    expect_released(&stream, counts, g, line);
}

#define P2(n) ((int64_t)1 << (n))

/* ---- Async events decoded on a worker thread (from a first batch of 4096 rows) ---- */

/* The thread that called the library, and the callbacks of the stream called on another. */
static pthread_t caller;
static int callbacks, callbacks_elsewhere;

static void on_callback(void) {
    callbacks++;
    if (!pthread_equal(pthread_self(), caller)) callbacks_elsewhere++;
}

static void watched_release_schema(struct ArrowSchema *schema) {
    on_callback();
    ab_release_schema(schema);
}

static void watched_release_array(struct ArrowArray *array) {
    on_callback();
    ab_release_array(array);
}

static int watched_get_schema(struct ArrowArrayStream *stream, struct ArrowSchema *out) {
    int status;
    on_callback();
    status = ab_get_schema(stream, out);
    if (status == 0) out->release = watched_release_schema;
    return status;
}

static int watched_get_next(struct ArrowArrayStream *stream, struct ArrowArray *out) {
    int status;
    on_callback();
    status = ab_get_next(stream, out);
    if (status == 0 && out->release) out->release = watched_release_array;
    return status;
}

static const char *watched_last_error(struct ArrowArrayStream *stream) {
    on_callback();
    return ab_last_error(stream);
}

static void watched_release_stream(struct ArrowArrayStream *stream) {
    on_callback();
    ab_release_stream(stream);
}

/* `batches` batches of `rows` async events (begin and end of span i / 2 + 1, times
   10 i), dictionary strings. */
static ab_stream *async_event_batches(ab_counts *counts, int batches, int64_t rows) {
    static const char *const names[] = {"time", "event_type", "span_id", "parent_span_id", "name", "target",
                                        "filename", "line"};
    static const char *const formats[] = {"l", "i", "l", "l", "i", "i", "i", "l"};
    static const char *const values[] = {NULL, "u", NULL, NULL, "u", "u", "u", NULL};
    ab_stream *s = ab_new(counts);
    int b, c;
    ab_set_fields(s, 8, names, formats, values);
    for (b = 0; b < batches; b++) {
        struct ArrowArray *batch = ab_add_batch(s, rows, 8);
        int64_t *time = (int64_t *)ab_alloc(s, (size_t)rows * 8), *id = (int64_t *)ab_alloc(s, (size_t)rows * 8);
        int64_t *zero = (int64_t *)ab_alloc(s, (size_t)rows * 8);
        struct ArrowArray *type = ab_dictionary(s, rows, "begin");
        int32_t *types = (int32_t *)type->buffers[1];
        int64_t i;
        /* The dictionary {"begin", "end"}: two "begin" entries, the second cut to "end". */
        type->dictionary = ab_strings(s, 2, "begin", 0);
        memcpy((char *)type->dictionary->buffers[2] + 5, "end", 3);
        ((int32_t *)type->dictionary->buffers[1])[2] = 8;
        for (i = 0; i < rows; i++) {
            int64_t event = (int64_t)b * rows + i;
            types[i] = (int32_t)(event % 2);
            time[i] = 10 * event;
            id[i] = event / 2 + 1;
        }
        batch->children[0] = ab_int64s(s, rows, time);
        batch->children[1] = type;
        batch->children[2] = ab_int64s(s, rows, id);
        batch->children[3] = ab_int64s(s, rows, zero);
        for (c = 4; c < 7; c++) batch->children[c] = ab_dictionary(s, rows, "x");
        batch->children[7] = ab_int64s(s, rows, zero);
    }
    return s;
}

/* Hands `s` to add_async_events with every callback watched: each must run on this
   thread. Checks the status, the message (on error), the releases and, on success, the
   number of async spans. */
static void check_async(ab_stream *s, ab_counts *counts, pmm_status expected, const char *word, uint64_t spans,
                        int line) {
    pmm_generator *g = new_generator();
    struct ArrowArrayStream stream;
    pmm_generator_stats stats;
    pmm_status status;
    char what[200];
    caller = pthread_self();
    callbacks = callbacks_elsewhere = 0;
    ab_export(s, &stream);
    stream.get_schema = watched_get_schema;
    stream.get_next = watched_get_next;
    stream.get_last_error = watched_last_error;
    stream.release = watched_release_stream;
    status = pmm_generator_add_async_events(g, &stream);
    snprintf(what, sizeof what, "async events: status %d, expected %d", status, expected);
    expect(status == expected, what, line);
    if (status != PMM_OK) {
        snprintf(what, sizeof what, "async events: message names '%s'", word);
        expect(strstr(pmm_last_error(), word) != NULL, what, line);
        expect(pmm_generator_finish(g, &stats) == PMM_ERR_CALL_ORDER, "failed generator refuses finish", line);
    } else {
        expect(pmm_generator_finish(g, &stats) == PMM_OK, "async events: finish", line);
        snprintf(what, sizeof what, "%llu async spans, expected %llu", (unsigned long long)stats.async_spans,
                 (unsigned long long)spans);
        expect(stats.async_spans == spans, what, line);
    }
    snprintf(what, sizeof what, "%d of %d stream callbacks on another thread", callbacks_elsewhere, callbacks);
    expect(callbacks > 0 && callbacks_elsewhere == 0, what, line);
    expect_released(&stream, counts, g, line);
}

int main(void) {
    ab_counts counts;
    ab_stream *s;
    struct ArrowArray *column;
    memset(&counts, 0, sizeof counts);

    /* A valid stream, plain and dictionary-encoded. */
    check(ab_thread_spans(&counts, 10, 0), &counts, PMM_OK, "", 10, __LINE__);
    check(ab_thread_spans(&counts, 10, 1), &counts, PMM_OK, "", 10, __LINE__);

    /* ---- The cases of issue 11 ---- */

    /* A negative n_children in the schema (was SIGILL). */
    s = ab_thread_spans(&counts, 3, 0);
    s->schema.n_children = -1;
    check(s, &counts, PMM_ERR_INVALID_DATA, "the schema has -1 columns", 0, __LINE__);

    /* Dictionaries whose length is between 2^32 and 2^58, the indices referencing entry 0
       (was SIGABRT "failed to allocate", or gigabytes filled and a hang): read lazily. */
    s = ab_thread_spans(&counts, 3, 1);
    s->batches[0].children[2]->dictionary->length = P2(32) + 1;
    check(s, &counts, PMM_OK, "", 3, __LINE__);
    s = ab_thread_spans(&counts, 3, 1);
    s->batches[0].children[3]->dictionary->length = P2(40);
    check(s, &counts, PMM_OK, "", 3, __LINE__);
    s = ab_thread_spans(&counts, 3, 1);
    s->batches[0].children[4]->dictionary->length = P2(58) - 1; /* its offsets cannot be in memory */
    check(s, &counts, PMM_ERR_INVALID_DATA, "string offsets cannot be in memory", 0, __LINE__);

    /* A large_utf8 end offset of INT64_MAX (was SIGSEGV). */
    s = ab_thread_spans(&counts, 3, 0);
    s->schema.children[2]->format = "U";
    s->batches[0].children[2] = ab_strings(s, 3, "text", 1);
    ((int64_t *)s->batches[0].children[2]->buffers[1])[3] = INT64_MAX;
    check(s, &counts, PMM_ERR_INVALID_DATA, "beyond any buffer", 0, __LINE__);

    /* A column offset of 2^59 - 4 with length INT64_MAX (was SIGSEGV). */
    s = ab_thread_spans(&counts, 3, 0);
    s->batches[0].children[0]->offset = P2(59) - 4;
    s->batches[0].children[0]->length = INT64_MAX;
    check(s, &counts, PMM_ERR_INVALID_DATA, "invalid length", 0, __LINE__);
    /* ... and with a length that does not overflow: no buffer reaches that far. */
    s = ab_thread_spans(&counts, 3, 0);
    s->batches[0].children[0]->offset = P2(59) - 4;
    s->batches[0].children[0]->length = P2(59);
    check(s, &counts, PMM_ERR_INVALID_DATA, "cannot be in memory", 0, __LINE__);

    /* A dictionary with buffers == NULL (was reported as "has 3 buffers; a string array
       needs 3 or more"). */
    s = ab_thread_spans(&counts, 3, 1);
    s->batches[0].children[2]->dictionary->buffers = NULL;
    check(s, &counts, PMM_ERR_INVALID_DATA, "the dictionary of column 'name' has 3 buffers but its buffers pointer is NULL",
          0, __LINE__);

    /* ---- Counts against the format ---- */

    s = ab_thread_spans(&counts, 3, 0);
    s->schema.n_children = INT64_MAX;
    check(s, &counts, PMM_ERR_INVALID_DATA, "columns", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 0);
    s->schema.children = NULL;
    check(s, &counts, PMM_ERR_INVALID_DATA, "children is NULL", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 0);
    s->batches[0].n_children = -1;
    check(s, &counts, PMM_ERR_INVALID_DATA, "a batch has -1 columns", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 0);
    s->batches[0].n_buffers = 0;
    check(s, &counts, PMM_ERR_INVALID_DATA, "a struct array has 1", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 0);
    s->batches[0].children[5]->n_children = -1;
    check(s, &counts, PMM_ERR_INVALID_DATA, "column 'line' has -1 children", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 0);
    s->batches[0].children[1]->n_buffers = 1;
    check(s, &counts, PMM_ERR_INVALID_DATA, "column 'end' has 1 buffers; a int64 array has 2", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 0);
    s->batches[0].children[2]->n_buffers = INT64_MIN;
    check(s, &counts, PMM_ERR_INVALID_DATA, "a utf8 array has 3", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 0);
    s->batches[0].children[3]->buffers = NULL;
    check(s, &counts, PMM_ERR_INVALID_DATA, "buffers pointer is NULL", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 1);
    s->batches[0].children[2]->dictionary->n_buffers = 2;
    check(s, &counts, PMM_ERR_INVALID_DATA, "the dictionary of column 'name' has 2 buffers", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 1);
    s->batches[0].children[2]->dictionary->n_children = 5;
    check(s, &counts, PMM_ERR_INVALID_DATA, "has 5 children", 0, __LINE__);

    /* ---- Lengths and offsets ---- */

    s = ab_thread_spans(&counts, 3, 0);
    s->batches[0].length = -1;
    check(s, &counts, PMM_ERR_INVALID_DATA, "a batch has length -1", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 0);
    s->batches[0].offset = INT64_MAX;
    check(s, &counts, PMM_ERR_INVALID_DATA, "offset", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 0);
    s->batches[0].children[0]->length = 2; /* shorter than the batch */
    check(s, &counts, PMM_ERR_INVALID_DATA, "column 'begin' has an invalid length 2", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 0);
    s->batches[0].children[4]->offset = -3;
    check(s, &counts, PMM_ERR_INVALID_DATA, "offset -3", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 1);
    s->batches[0].children[2]->dictionary->length = -1;
    check(s, &counts, PMM_ERR_INVALID_DATA, "the dictionary of column 'name' has an invalid length -1", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 1);
    s->batches[0].children[2]->dictionary->offset = INT64_MAX;
    check(s, &counts, PMM_ERR_INVALID_DATA, "the dictionary of column 'name' has an invalid length", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 1);
    ((int32_t *)s->batches[0].children[3]->buffers[1])[1] = 1; /* one entry: index 1 is out of range */
    check(s, &counts, PMM_ERR_INVALID_DATA, "dictionary index 1 out of range (1 entries) (row 1 of a batch)", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 1);
    ((int32_t *)s->batches[0].children[3]->buffers[1])[2] = -7;
    check(s, &counts, PMM_ERR_INVALID_DATA, "dictionary index -7 out of range (1 entries) (row 2 of a batch)", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 0);
    ((int32_t *)s->batches[0].children[2]->buffers[1])[1] = -2;
    check(s, &counts, PMM_ERR_INVALID_DATA, "invalid string offsets", 0, __LINE__);
    s = ab_thread_spans(&counts, 3, 0);
    s->batches[0].children[0]->null_count = 1; /* nulls but no bitmap */
    check(s, &counts, PMM_ERR_INVALID_DATA, "no validity bitmap", 0, __LINE__);
    /* null_count -1 (unknown, as nanoarrow and arrow-rs may export): the bitmap is read.
       A null begin is an error; a null name is not read (it reads as ""); no bitmap
       means no nulls. */
    {
        int k;
        for (k = 0; k < 3; k++) {
            uint8_t *bits;
            s = ab_thread_spans(&counts, 3, 0);
            bits = (uint8_t *)ab_alloc(s, 1);
            bits[0] = 0x05; /* rows 0 and 2 valid, row 1 null */
            column = s->batches[0].children[k == 0 ? 0 : 2];
            column->null_count = -1;
            if (k < 2) column->buffers[0] = bits;
            /* Row 1's name is not UTF-8: only a null row (the bitmap read) is not read. */
            if (k == 1) ((uint8_t *)s->batches[0].children[2]->buffers[2])[4] = 0xff;
            if (k == 0) check(s, &counts, PMM_ERR_INVALID_DATA, "null in column 'begin' (row 1 of a batch)", 0, __LINE__);
            else check(s, &counts, PMM_OK, "", 3, __LINE__);
        }
    }

    /* uint64 dictionary indices of 2^63 and 2^64 - 1 (read into a signed integer, they were
       reported as "index -9223372036854775808" and "index -1"): the message shows the value
       the producer wrote. Through a thread span's name (the pooled string reader) and a log
       entry's msg (the unpooled one). */
    {
        static const char *const expected[2] = {"dictionary index 9223372036854775808 out of range (1 entries) (row 1",
                                                "dictionary index 18446744073709551615 out of range (1 entries) (row 1"};
        int k;
        for (k = 0; k < 2; k++) {
            uint64_t *indices;
            s = ab_thread_spans(&counts, 3, 1);
            s->schema.children[2]->format = "L";
            indices = (uint64_t *)ab_alloc(s, 3 * 8);
            indices[1] = k == 0 ? (uint64_t)1 << 63 : UINT64_MAX;
            s->batches[0].children[2]->buffers[1] = indices;
            check(s, &counts, PMM_ERR_INVALID_DATA, expected[k], 0, __LINE__);
        }
        {
            static const char *const names[] = {"time", "target", "msg", "level"};
            static const char *const formats[] = {"l", "u", "L", "l"};
            static const char *const values[] = {NULL, NULL, "u", NULL};
            static const int64_t times[2] = {10, 20}, levels[2] = {4, 4};
            struct ArrowArrayStream stream;
            pmm_generator *g = new_generator();
            struct ArrowArray *b;
            uint64_t *indices;
            pmm_status status;
            s = ab_new(&counts);
            ab_set_fields(s, 4, names, formats, values);
            b = ab_add_batch(s, 2, 4);
            b->children[0] = ab_int64s(s, 2, times);
            b->children[1] = ab_strings(s, 2, "target", 0);
            b->children[2] = ab_dictionary(s, 2, "message");
            indices = (uint64_t *)ab_alloc(s, 2 * 8);
            indices[1] = UINT64_MAX;
            b->children[2]->buffers[1] = indices;
            b->children[3] = ab_int64s(s, 2, levels);
            ab_export(s, &stream);
            status = pmm_generator_add_log_entries(g, &stream);
            expect(status == PMM_ERR_INVALID_DATA && strstr(pmm_last_error(), "log entries: column 'msg': "
                   "dictionary index 18446744073709551615 out of range (1 entries) (row 1 of a batch)") != NULL,
                   "log entries: a uint64 index shown unsigned", __LINE__);
            expect(counts.streams == 1 && counts.batches == counts.delivered_batches, "log stream released", __LINE__);
            pmm_generator_free(g);
            memset(&counts, 0, sizeof counts);
        }
    }

    /* A thread span with a negative begin: outside the range (its end before the range
       begin, 0 here) it is skipped; overlapping the range it is PMM_ERR_INVALID_DATA and
       fails the generator (the spans before it already written). */
    s = ab_thread_spans(&counts, 3, 0);
    ((int64_t *)s->batches[0].children[0]->buffers[1])[1] = -20;
    ((int64_t *)s->batches[0].children[1]->buffers[1])[1] = -10;
    check(s, &counts, PMM_OK, "", 2, __LINE__);
    s = ab_thread_spans(&counts, 3, 0);
    ((int64_t *)s->batches[0].children[0]->buffers[1])[1] = -5;
    check(s, &counts, PMM_ERR_INVALID_DATA, "negative begin time -5", 0, __LINE__);

    /* The NULL buffers the Arrow specification allows, accepted as the header says. */
    /* The batch's own buffers array (its struct validity, never read). */
    s = ab_thread_spans(&counts, 3, 0);
    s->batches[0].buffers = NULL;
    check(s, &counts, PMM_OK, "", 3, __LINE__);
    /* A batch of 0 rows whose columns have only NULL buffers (validity, values, offsets,
       data, dictionary indices; the dictionary itself absent). */
    {
        int k, i;
        for (k = 0; k < 2; k++) {
            s = ab_thread_spans(&counts, 0, k);
            for (i = 0; i < 6; i++) {
                column = s->batches[0].children[i];
                memset(column->buffers, 0, (size_t)column->n_buffers * sizeof(void *));
                column->dictionary = NULL;
            }
            check(s, &counts, PMM_OK, "", 0, __LINE__);
        }
    }
    /* utf8 and large_utf8 with no data buffer, every string empty. */
    {
        int large;
        for (large = 0; large < 2; large++) {
            s = ab_thread_spans(&counts, 3, 0);
            s->schema.children[3]->format = large ? "U" : "u";
            s->batches[0].children[3] = ab_strings(s, 3, "", large);
            s->batches[0].children[3]->buffers[2] = NULL;
            check(s, &counts, PMM_OK, "", 3, __LINE__);
        }
    }
    /* ... but a non-empty string needs it. */
    s = ab_thread_spans(&counts, 3, 0);
    s->batches[0].children[3]->buffers[2] = NULL;
    check(s, &counts, PMM_ERR_INVALID_DATA, "column 'target' has no string data buffer", 0, __LINE__);
    /* A dictionary of length 0 with no offsets or data, every row null. */
    {
        uint8_t *bits;
        s = ab_thread_spans(&counts, 3, 1);
        column = s->batches[0].children[4];
        bits = (uint8_t *)ab_alloc(s, 1); /* all rows null */
        column->buffers[0] = bits;
        column->null_count = 3;
        column->dictionary->length = 0;
        column->dictionary->buffers[1] = NULL;
        column->dictionary->buffers[2] = NULL;
        check(s, &counts, PMM_OK, "", 3, __LINE__);
    }
    /* utf8_view with no data buffer (n_buffers 3, the sizes buffer NULL), every string
       inline (12 bytes or less); and a NULL data buffer no view points into. */
    {
        int k;
        for (k = 0; k < 2; k++) {
            int32_t *views;
            int i;
            s = ab_thread_spans(&counts, 3, 0);
            s->schema.children[2]->format = "vu";
            column = ab_array(s, 3, 0, k == 0 ? 3 : 4);
            views = (int32_t *)ab_alloc(s, 3 * 16);
            for (i = 0; i < 3; i++) {
                views[4 * i] = 4;
                memcpy(&views[4 * i + 1], "text", 4);
            }
            column->buffers[1] = views;
            if (k == 1) {
                int64_t *sizes = (int64_t *)ab_alloc(s, 8);
                column->buffers[3] = sizes; /* buffers[2], the one data buffer, NULL */
            }
            s->batches[0].children[2] = column;
            check(s, &counts, PMM_OK, "", 3, __LINE__);
        }
    }
    /* Refused: a column's values NULL in a batch with rows; a column's buffers array NULL
       even with 0 rows. */
    s = ab_thread_spans(&counts, 3, 0);
    s->batches[0].children[5]->buffers[1] = NULL;
    check(s, &counts, PMM_ERR_INVALID_DATA, "column 'line' has no value buffer", 0, __LINE__);
    s = ab_thread_spans(&counts, 0, 0);
    s->batches[0].children[5]->buffers = NULL;
    check(s, &counts, PMM_ERR_INVALID_DATA, "column 'line' has 2 buffers but its buffers pointer is NULL", 0, __LINE__);

    /* A string_view column: a view into a data buffer that does not exist, and one past
       the end of its buffer (utf8_view carries the data buffers' sizes). */
    {
        int k;
        for (k = 0; k < 2; k++) {
            int32_t *view;
            int64_t *sizes;
            s = ab_thread_spans(&counts, 1, 0);
            s->schema.children[2]->format = "vu";
            column = ab_array(s, 1, 0, 4); /* validity, views, one data buffer, sizes */
            view = (int32_t *)ab_alloc(s, 16);
            sizes = (int64_t *)ab_alloc(s, 8);
            sizes[0] = 20;
            view[0] = 16;                 /* length */
            view[2] = k == 0 ? 1 : 0;     /* buffer index */
            view[3] = k == 0 ? 0 : 5;     /* offset: 5 + 16 > 20 */
            column->buffers[1] = view;
            column->buffers[2] = ab_alloc(s, 20);
            column->buffers[3] = sizes;
            s->batches[0].children[2] = column;
            check(s, &counts, PMM_ERR_INVALID_DATA, k == 0 ? "into buffer 1, which does not exist" : "of 16 bytes at 5",
                  0, __LINE__);
        }
    }

    /* Unaligned buffers are read (the C Data Interface only recommends alignment). */
    {
        int64_t values[3] = {1, 2, 3};
        uint8_t *odd;
        s = ab_thread_spans(&counts, 3, 0);
        odd = (uint8_t *)ab_alloc(s, 3 * 8 + 1) + 1;
        memcpy(odd, values, sizeof values);
        s->batches[0].children[5]->buffers[1] = odd;
        odd = (uint8_t *)ab_alloc(s, 4 * 4 + 1) + 1;
        memset(odd, 0, 4 * 4);
        s->batches[0].children[2]->buffers[1] = odd; /* all empty strings */
        check(s, &counts, PMM_OK, "", 3, __LINE__);
    }

    /* A producer error on the second batch, after spans of the first were written: the
       generator is failed. */
    s = ab_thread_spans(&counts, 3, 0);
    s->fail_at = 1;
    check(s, &counts, PMM_ERR_INVALID_DATA, "the test producer failed on purpose (error 5)", 0, __LINE__);
    /* ... and one with no message (get_last_error returns ""): the code is named. */
    s = ab_thread_spans(&counts, 3, 0);
    s->fail_at = 1;
    s->silent = 1;
    check(s, &counts, PMM_ERR_INVALID_DATA, "the Arrow stream failed reading a batch: error 5", 0, __LINE__);

    /* Async events in 3 batches of 5,000 rows (decoded on a worker thread): every callback
       of the stream runs on the calling thread; then one whose get_next fails on the 3rd
       batch: the stream's error, everything released. */
    check_async(async_event_batches(&counts, 3, 5000), &counts, PMM_OK, "", 7500, __LINE__);
    s = async_event_batches(&counts, 3, 5000);
    s->fail_at = 2;
    check_async(s, &counts, PMM_ERR_INVALID_DATA, "the test producer failed on purpose (error 5)", 0, __LINE__);
    /* ... and a null time in the last tile of the 2nd batch before that failure: the null's
       error (one thread pairs a batch before it reads the next). */
    s = async_event_batches(&counts, 3, 5000);
    s->fail_at = 2;
    s->batches[1].children[0]->null_count = 1;
    {
        uint8_t *validity = (uint8_t *)ab_alloc(s, 5000 / 8 + 1);
        memset(validity, 0xff, 5000 / 8 + 1);
        validity[4500 / 8] &= (uint8_t)~(1u << (4500 % 8));
        s->batches[1].children[0]->buffers[0] = validity;
    }
    check_async(s, &counts, PMM_ERR_INVALID_DATA, "null in column 'time' (row 4500 of a batch)", 0, __LINE__);

    /* ---- Cases found by the fuzzer (Tests/fuzz) ---- */

    /* The validator on a record claiming 2^63 - 1 bytes: its length plus the 10-byte
       record header overflowed (a trap in TraceReader.startPayload). A truncated trace. */
    {
        static const uint8_t record[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
        pmm_validation_stats vstats;
        pmm_validator *v = NULL;
        memset(&vstats, 0, sizeof vstats);
        expect(pmm_validate_buffer(record, sizeof record, &vstats, NULL) == PMM_OK, "validator: huge record", __LINE__);
        expect(vstats.problems[PMM_PROBLEM_TRUNCATED] == 1, "validator: huge record is a truncated trace", __LINE__);
        expect(pmm_validator_new(&v) == PMM_OK, "validator_new", __LINE__);
        expect(pmm_validator_feed(v, record, 3) == PMM_OK && pmm_validator_feed(v, record + 3, sizeof record - 3) == PMM_OK,
               "validator: huge record in pieces", __LINE__);
        expect(pmm_validator_finish(v, &vstats) == PMM_OK && vstats.problems[PMM_PROBLEM_TRUNCATED] == 1,
               "validator: huge record in pieces is a truncated trace", __LINE__);
        pmm_validator_free(v);
    }

    printf("hostile_arrow: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
