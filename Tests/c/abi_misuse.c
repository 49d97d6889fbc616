/*
 * abi_misuse: every misuse of the C ABI returns an error code and a message, never
 * crashes, and leaves a usable (or cleanly stopped) writer. Run under valgrind by
 * `make test` to check that no path leaks.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "perfetto_mm.h"

#define S(literal) literal, strlen(literal)

static int passed, failed;

static void expect(int ok, const char *what, int line) {
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "FAIL line %d: %s (last error: %s)\n", line, what, pmm_last_error());
    }
}

/* The call returns `code` and leaves a non-empty message naming `word`. */
#define EXPECT_ERR(call, code, word)                                                    \
    do {                                                                                \
        pmm_status got_ = (call);                                                       \
        expect(got_ == (code), #call " returns " #code, __LINE__);                     \
        expect(strstr(pmm_last_error(), (word)) != NULL, #call " message names " word, \
               __LINE__);                                                               \
    } while (0)
#define EXPECT_OK(call) expect((call) == PMM_OK, #call " succeeds", __LINE__)

static const char pid[] = "34d7c06d-3163-4111-863e-c5fc09d22d51";
static const char bad[] = "bad\xff\xfe utf8"; /* invalid UTF-8 */
static const char overlong[] = "\xc0\xaf";      /* overlong '/' */
static const char surrogate[] = "\xed\xa0\x80"; /* UTF-16 surrogate */

static int32_t failing_sink(void *ctx, const uint8_t *data, size_t len) {
    (void)data;
    (void)len;
    ++*(int *)ctx;
    return 42;
}

static int32_t counting_sink(void *ctx, const uint8_t *data, size_t len) {
    (void)data;
    *(size_t *)ctx += len;
    return 0;
}

/* A minimal Arrow stream: get_schema fails with `schema_error`, or returns a schema
   with no columns; it has no batches. Counts its releases in *released. */
struct test_stream_state {
    int schema_error;
    int *released;
};

static int test_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out);
static int test_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
    (void)s;
    memset(out, 0, sizeof *out); /* release == NULL: end of stream */
    return 0;
}
static const char *test_last_error(struct ArrowArrayStream *s) {
    (void)s;
    return "schema refused on purpose";
}
/* Generator options for a process "exe" over [0, 1000] ns with `count` threads, the spans
   `span_types` and the lanes layout (0); every other field 0. */
static pmm_generator_options test_options(const pmm_thread *threads, size_t count, int span_types) {
    pmm_generator_options options;
    memset(&options, 0, sizeof options);
    options.exe = "exe";
    options.exe_len = 3;
    options.threads = threads;
    options.thread_count = count;
    options.span_types = span_types;
    options.async_layout = PMM_LAYOUT_LANES;
    options.range_begin_ns = 0;
    options.range_end_ns = 1000;
    return options;
}

static void test_release_schema(struct ArrowSchema *schema) { schema->release = NULL; }
static int test_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
    struct test_stream_state *state = (struct test_stream_state *)s->private_data;
    if (state->schema_error) return state->schema_error;
    memset(out, 0, sizeof *out);
    out->format = "+s";
    out->name = "";
    out->release = test_release_schema;
    return 0;
}
static void test_release_stream(struct ArrowArrayStream *s) {
    ++*((struct test_stream_state *)s->private_data)->released;
    s->release = NULL;
}
static struct ArrowArrayStream test_stream(struct test_stream_state *state) {
    struct ArrowArrayStream s;
    s.get_schema = test_get_schema;
    s.get_next = test_get_next;
    s.get_last_error = test_last_error;
    s.release = test_release_stream;
    s.private_data = state;
    return s;
}

/* The bytes of a small trace, written by a fresh writer with only valid calls. */
static size_t reference(uint8_t **data) {
    pmm_writer *w = NULL;
    size_t len = 0;
    pmm_writer_new_buffer(S(pid), 0, &w);
    pmm_writer_emit_process_descriptor(w, S("exe"));
    pmm_writer_emit_thread_descriptor(w, S("stream"), 7, S("main-7"));
    pmm_writer_set_current_thread(w, S("stream"));
    pmm_writer_emit_span(w, 10, 20, S("name"), S("target"), S("file.rs"), 3);
    pmm_writer_take_buffer(w, data, &len);
    pmm_writer_free(w);
    return len;
}


/* Lengths no buffer can have: SIZE_MAX (shown as such, not as a negative number), and
   2^62, which is not negative as a signed size but reaches past the top of user address
   space. Both are refused before any read (valgrind reports a read past "exe"). */
static void test_impossible_sizes(void) {
    pmm_writer *w = NULL;
    pmm_generator *g = NULL;
    pmm_validator *v = NULL;
    pmm_validation_example example;
    pmm_thread thread = {"stream", 6, 7, "main-7", 6};
    pmm_generator_options options;
    const size_t huge = (size_t)1 << 62;
    EXPECT_ERR(pmm_writer_new_buffer(pid, SIZE_MAX, 0, &w), PMM_ERR_INVALID_ARGUMENT, "length 18446744073709551615");
    EXPECT_ERR(pmm_writer_new_buffer(pid, huge, 0, &w), PMM_ERR_INVALID_ARGUMENT, "process_id: length 4611686018427387904");
    EXPECT_OK(pmm_writer_new_buffer(S(pid), 0, &w));
    EXPECT_ERR(pmm_writer_emit_process_descriptor(w, "exe", huge), PMM_ERR_INVALID_ARGUMENT, "exe: length");
    EXPECT_ERR(pmm_writer_emit_process_descriptor(w, "exe", SIZE_MAX), PMM_ERR_INVALID_ARGUMENT, "18446744073709551615");
    EXPECT_ERR(pmm_writer_emit_thread_descriptor(w, S("s"), 1, "t", huge), PMM_ERR_INVALID_ARGUMENT, "thread_name");
    EXPECT_OK(pmm_writer_emit_process_descriptor(w, S("exe")));
    EXPECT_OK(pmm_writer_emit_thread_descriptor(w, S("stream"), 7, S("main-7")));
    EXPECT_OK(pmm_writer_set_current_thread(w, S("stream")));
    EXPECT_ERR(pmm_writer_emit_span(w, 1, 2, S("n"), S("t"), "f", huge, 1), PMM_ERR_INVALID_ARGUMENT, "filename");
    EXPECT_ERR(pmm_validator_new(&v) == PMM_OK ? pmm_validator_feed(v, (const uint8_t *)"x", huge) : -1,
               PMM_ERR_INVALID_ARGUMENT, "data: length");
    pmm_validator_free(v);
    v = NULL;
    EXPECT_ERR(pmm_validate_buffer((const uint8_t *)"x", huge, NULL, &v), PMM_ERR_INVALID_ARGUMENT, "data: length");
    expect(v == NULL, "no validator on failure", __LINE__);
    EXPECT_OK(pmm_validate_buffer(NULL, 0, NULL, &v));
    EXPECT_ERR(pmm_validator_get_example(v, SIZE_MAX, &example), PMM_ERR_INVALID_ARGUMENT, "index 18446744073709551615");
    pmm_validator_free(v);

    memset(&options, 0, sizeof options);
    options.threads = &thread;
    options.thread_count = huge; /* thread_count * sizeof(pmm_thread) bytes cannot exist */
    options.span_types = PMM_SPANS_BOTH;
    options.range_end_ns = 1000;
    EXPECT_ERR(pmm_generator_new(w, &options, &g), PMM_ERR_INVALID_ARGUMENT, "thread_count");
    options.thread_count = 1;
    thread.thread_name_len = huge;
    EXPECT_ERR(pmm_generator_new(w, &options, &g), PMM_ERR_INVALID_ARGUMENT, "threads[0].thread_name");
    expect(g == NULL, "no generator on failure", __LINE__);
    pmm_writer_free(w);
}

/* A stream listed twice in the options would describe its thread track twice (with
   different names): refused, and nothing is written. */
static void test_duplicate_threads(void) {
    pmm_writer *w = NULL;
    pmm_generator *g = NULL;
    uint8_t *data = NULL;
    size_t len = 1;
    pmm_thread threads[3] = {{"a", 1, 7, "main-7", 6}, {"b", 1, 8, "io-8", 4}, {"a", 1, 9, "other-9", 7}};
    pmm_generator_options options;
    memset(&options, 0, sizeof options);
    options.threads = threads;
    options.thread_count = 3;
    options.span_types = PMM_SPANS_BOTH;
    options.range_end_ns = 1000;
    EXPECT_OK(pmm_writer_new_buffer(S(pid), 0, &w));
    EXPECT_ERR(pmm_generator_new(w, &options, &g), PMM_ERR_INVALID_ARGUMENT, "threads[2]: stream 'a' is already");
    expect(g == NULL, "no generator on failure", __LINE__);
    EXPECT_OK(pmm_writer_take_buffer(w, &data, &len));
    expect(len == 0, "nothing written", __LINE__);
    pmm_buffer_free(data);
    options.thread_count = 2;
    EXPECT_OK(pmm_generator_new(w, &options, &g));
    pmm_generator_free(g);
    pmm_writer_free(w);
}

/* pmm_last_error() is per thread: two threads failing at once each read their own
   message, a successful call leaves it as it was, and other threads' failures do not
   change the main thread's. */
struct error_thread {
    pthread_barrier_t *barrier;
    int which; /* 0: fails with "out is NULL", 1: with "validator is NULL" */
    int ok;
};

static void *fail_on_thread(void *arg) {
    struct error_thread *t = (struct error_thread *)arg;
    const char *mine = t->which == 0 ? "out is NULL" : "validator is NULL";
    int i;
    t->ok = strcmp(pmm_last_error(), "") == 0; /* a new thread has no error yet */
    for (i = 0; i < 200; i++) {
        pthread_barrier_wait(t->barrier);
        if (t->which == 0) pmm_writer_new_buffer(S(pid), 0, NULL);
        else pmm_validator_feed(NULL, NULL, 0);
        t->ok = t->ok && strstr(pmm_last_error(), mine) != NULL;
    }
    return NULL;
}

static void test_last_error_threads(void) {
    pthread_barrier_t barrier;
    pthread_t threads[2];
    struct error_thread args[2] = {{NULL, 0, 0}, {NULL, 1, 0}};
    pmm_writer *w = NULL;
    int i;
    EXPECT_ERR(pmm_writer_emit_process_descriptor(NULL, S("exe")), PMM_ERR_INVALID_ARGUMENT, "writer is NULL");
    EXPECT_OK(pmm_writer_new_buffer(S(pid), 0, &w));
    expect(strstr(pmm_last_error(), "writer is NULL") != NULL, "a successful call leaves the last error", __LINE__);
    pthread_barrier_init(&barrier, NULL, 2);
    for (i = 0; i < 2; i++) {
        args[i].barrier = &barrier;
        pthread_create(&threads[i], NULL, fail_on_thread, &args[i]);
    }
    for (i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);
    expect(args[0].ok && args[1].ok, "each thread reads its own last error", __LINE__);
    expect(strstr(pmm_last_error(), "writer is NULL") != NULL, "other threads' errors leave this thread's", __LINE__);
    pmm_writer_free(w);
}

/* A call refused (a finished generator, an unknown stream id) or ignored (span type not
   asked for) releases its stream without reading it: a stream whose get_schema fails
   then fails nothing (it made a finished generator lose its stats, and an unknown id
   fail the generator for good). */
static void test_refused_streams_are_released_unread(void) {
    int unread = 0;
    struct test_stream_state failing = {5, &unread};
    struct ArrowArrayStream stream;
    pmm_thread thread = {"stream", 6, 7, "main-7", 6};
    pmm_generator_options options;
    pmm_generator_stats stats;
    pmm_writer *w = NULL;
    pmm_generator *g = NULL;
    int span_types;
    for (span_types = 0; span_types < 2; span_types++) {
        options = test_options(&thread, 1, span_types ? PMM_SPANS_ASYNC : PMM_SPANS_THREAD);
        EXPECT_OK(pmm_writer_new_buffer(S(pid), 0, &w));
        EXPECT_OK(pmm_generator_new(w, &options, &g));
        pmm_writer_free(w);
        unread = 0;
        stream = test_stream(&failing);
        if (span_types) { /* thread spans not asked for: ignored */
            EXPECT_OK(pmm_generator_add_thread_spans(g, S("stream"), &stream));
        } else {
            EXPECT_OK(pmm_generator_add_async_events(g, &stream));
        }
        stream = test_stream(&failing);
        if (span_types) { /* not asked for: ignored before the id is looked at */
            EXPECT_OK(pmm_generator_add_thread_spans(g, S("unknown"), &stream));
        } else {
            EXPECT_ERR(pmm_generator_add_thread_spans(g, S("unknown"), &stream), PMM_ERR_INVALID_ARGUMENT,
                       "not in the thread list");
        }
        expect(unread == 2 && stream.release == NULL, "released unread when ignored or refused", __LINE__);
        EXPECT_OK(pmm_generator_finish(g, &stats));
        stream = test_stream(&failing);
        EXPECT_ERR(pmm_generator_add_log_entries(g, &stream), PMM_ERR_CALL_ORDER, "finished");
        stream = test_stream(&failing);
        EXPECT_ERR(pmm_generator_add_measures(g, &stream), PMM_ERR_CALL_ORDER, "finished");
        stream = test_stream(&failing);
        EXPECT_ERR(pmm_generator_add_thread_spans(g, S("stream"), &stream), PMM_ERR_CALL_ORDER, "finished");
        stream = test_stream(&failing);
        EXPECT_ERR(pmm_generator_add_async_events(g, &stream), PMM_ERR_CALL_ORDER, "finished");
        expect(unread == 6, "released unread after finish", __LINE__);
        EXPECT_OK(pmm_generator_get_stats(g, &stats)); /* the finished trace's stats stay */
        pmm_generator_free(g);
        g = NULL;
    }
}

/* A NUL inside a message (from a name or a value of the input, given with its length)
   does not cut it: pmm_last_error() shows it as the two characters \0, and a validator
   example's message keeps every byte, message_len long, NUL-terminated after them. The
   library cut both at the NUL before ("stream 'ab"). */
static void test_nul_in_messages(void) {
    static const char id[] = "ab\0cd"; /* 5 bytes */
    static const char name[] = "a\0b";  /* 3 bytes */
    pmm_thread threads[2] = {{"stream", 6, 7, "main-7", 6}, {"x\0y", 3, 8, "io-8", 4}};
    pmm_generator_options options;
    pmm_generator *g = NULL;
    pmm_writer *w = NULL;
    pmm_validator *v = NULL;
    uint8_t *data = NULL;
    size_t len = 0, count = 0, i;
    int found = 0, stream_released = 0;
    struct test_stream_state state = {0, &stream_released};
    struct ArrowArrayStream stream;
    options = test_options(threads, 2, PMM_SPANS_THREAD);
    EXPECT_OK(pmm_writer_new_buffer(S(pid), 0, &w));
    EXPECT_OK(pmm_generator_new(w, &options, &g));
    stream = test_stream(&state);
    EXPECT_ERR(pmm_generator_add_thread_spans(g, id, sizeof id - 1, &stream), PMM_ERR_INVALID_ARGUMENT,
               "stream 'ab\\0cd' is not in the thread list");
    pmm_generator_free(g);
    g = NULL;
    threads[0] = threads[1];
    EXPECT_ERR(pmm_generator_new(w, &options, &g), PMM_ERR_INVALID_ARGUMENT,
               "threads[1]: stream 'x\\0y' is already in the thread list");
    pmm_writer_free(w);

    /* Two overlapping spans: Perfetto ends the inner one, named "a\0b", at the outer's end. */
    EXPECT_OK(pmm_writer_new_buffer(S(pid), 0, &w));
    EXPECT_OK(pmm_writer_emit_process_descriptor(w, S("exe")));
    EXPECT_OK(pmm_writer_emit_thread_descriptor(w, S("stream"), 7, S("main-7")));
    EXPECT_OK(pmm_writer_set_current_thread(w, S("stream")));
    EXPECT_OK(pmm_writer_emit_span(w, 10, 30, S("outer"), S("t"), S("f.rs"), 1));
    EXPECT_OK(pmm_writer_emit_span(w, 20, 40, name, sizeof name - 1, S("t"), S("f.rs"), 2));
    EXPECT_OK(pmm_writer_take_buffer(w, &data, &len));
    pmm_writer_free(w);
    EXPECT_OK(pmm_validate_buffer(data, len, NULL, &v));
    EXPECT_OK(pmm_validator_example_count(v, &count));
    for (i = 0; i < count; i++) {
        static const char want[] = "slice 'a\0b' at ts 20";
        pmm_validation_example e;
        size_t k;
        EXPECT_OK(pmm_validator_get_example(v, i, &e));
        expect(e.message != NULL && e.message[e.message_len] == '\0', "example message NUL-terminated", __LINE__);
        for (k = 0; e.message && k + sizeof want - 1 <= e.message_len; k++)
            if (memcmp(e.message + k, want, sizeof want - 1) == 0) found = 1;
    }
    expect(found, "an example's message keeps the NUL in the name and what follows it", __LINE__);
    pmm_validator_free(v);
    pmm_buffer_free(data);
}

/* pmm_generator_new() on a stopped writer: PMM_ERR_WRITER_STOPPED (options are checked
   first: bad ones are still PMM_ERR_INVALID_ARGUMENT); writing its descriptors can stop
   the writer itself (PMM_ERR_SINK here). No generator either way. */
static void test_generator_on_a_stopped_writer(void) {
    pmm_thread thread = {"stream", 6, 7, "main-7", 6};
    pmm_generator_options options;
    pmm_generator *g = NULL;
    pmm_writer *w = NULL;
    int calls = 0;
    options = test_options(&thread, 1, PMM_SPANS_BOTH);
    EXPECT_OK(pmm_writer_new_callback(S(pid), 1, failing_sink, &calls, &w));
    g = (pmm_generator *)&calls;
    EXPECT_ERR(pmm_generator_new(w, &options, &g), PMM_ERR_SINK, "42");
    expect(g == NULL && calls == 1, "no generator when writing the descriptors fails", __LINE__);
    g = (pmm_generator *)&calls;
    EXPECT_ERR(pmm_generator_new(w, &options, &g), PMM_ERR_WRITER_STOPPED, "stopped");
    expect(g == NULL && calls == 1, "no generator on a stopped writer, nothing written", __LINE__);
    options.range_begin_ns = -1;
    EXPECT_ERR(pmm_generator_new(w, &options, &g), PMM_ERR_INVALID_ARGUMENT, "negative");
    pmm_writer_free(w);
}

/* A call that returns an error leaves its output parameters (stats, counts, examples,
   buffers) as they were; only a creating call's *out is set to NULL. */
static void test_outputs_untouched_on_error(void) {
    pmm_generator_stats gstats, gsaved;
    pmm_validation_stats vstats, vsaved;
    pmm_validation_example example, esaved;
    int released = 0;
    struct test_stream_state failing = {5, &released};
    struct ArrowArrayStream stream;
    pmm_thread thread = {"stream", 6, 7, "main-7", 6};
    pmm_generator_options options;
    pmm_generator *g = NULL;
    pmm_writer *w = NULL;
    pmm_validator *v = NULL;
    uint8_t *data = (uint8_t *)&released, *taken = NULL;
    size_t len = 12345, count = 777;
    int calls = 0, fd;
    memset(&gstats, 0xab, sizeof gstats);
    memcpy(&gsaved, &gstats, sizeof gstats);
    memset(&vstats, 0xcd, sizeof vstats);
    memcpy(&vsaved, &vstats, sizeof vstats);
    memset(&example, 0xef, sizeof example);
    memcpy(&esaved, &example, sizeof example);
    options = test_options(&thread, 1, PMM_SPANS_BOTH);
    EXPECT_OK(pmm_writer_new_buffer(S(pid), 0, &w));
    EXPECT_OK(pmm_generator_new(w, &options, &g));
    stream = test_stream(&failing);
    EXPECT_ERR(pmm_generator_add_thread_spans(g, S("stream"), &stream), PMM_ERR_INVALID_DATA, "schema refused");
    EXPECT_ERR(pmm_generator_get_stats(g, &gstats), PMM_ERR_CALL_ORDER, "failed on an earlier error");
    EXPECT_ERR(pmm_generator_finish(g, &gstats), PMM_ERR_CALL_ORDER, "failed on an earlier error");
    expect(memcmp(&gstats, &gsaved, sizeof gstats) == 0, "generator stats untouched on error", __LINE__);
    pmm_generator_free(g);
    pmm_writer_free(w);

    v = (pmm_validator *)&calls;
    EXPECT_ERR(pmm_validate_buffer(NULL, 5, &vstats, &v), PMM_ERR_INVALID_ARGUMENT, "data");
    expect(v == NULL, "validate_buffer: *out NULL on error", __LINE__);
    fd = open(".", O_RDONLY);
    if (fd >= 0) {
        EXPECT_ERR(pmm_validate_fd(fd, &vstats, NULL), PMM_ERR_IO, "Is a directory");
        close(fd);
    }
    expect(memcmp(&vstats, &vsaved, sizeof vstats) == 0, "validation stats untouched on error", __LINE__);
    EXPECT_OK(pmm_validator_new(&v));
    EXPECT_ERR(pmm_validator_get_example(v, 0, &example), PMM_ERR_CALL_ORDER, "before pmm_validator_finish");
    EXPECT_OK(pmm_validator_finish(v, NULL));
    EXPECT_ERR(pmm_validator_get_example(v, 0, &example), PMM_ERR_INVALID_ARGUMENT, "out of range");
    expect(memcmp(&example, &esaved, sizeof example) == 0, "example untouched on error", __LINE__);
    EXPECT_ERR(pmm_validator_example_count(NULL, &count), PMM_ERR_INVALID_ARGUMENT, "validator");
    expect(count == 777, "count untouched on error", __LINE__);
    pmm_validator_free(v);

    EXPECT_OK(pmm_writer_new_callback(S(pid), 1, failing_sink, &calls, &w));
    EXPECT_ERR(pmm_writer_take_buffer(w, &data, &len), PMM_ERR_CALL_ORDER, "memory sink");
    expect(data == (uint8_t *)&released && len == 12345, "take_buffer outputs untouched on error", __LINE__);
    pmm_writer_free(w);
    EXPECT_OK(pmm_writer_new_buffer(S(pid), 0, &w));
    EXPECT_ERR(pmm_writer_take_buffer(w, &taken, NULL), PMM_ERR_INVALID_ARGUMENT, "NULL");
    expect(taken == NULL, "take_buffer: data untouched when len is NULL", __LINE__);
    pmm_writer_free(w);
}

int main(void) {
    pmm_writer *w = NULL;
    uint8_t *data = NULL, *expected = NULL;
    size_t len = 0, expected_len, sunk = 0;
    int calls = 0;
    int fd;

    expect(strcmp(pmm_last_error(), "") == 0, "no error before any call", __LINE__);
    expect(strlen(pmm_version()) > 0, "version", __LINE__);

    /* NULL handles and out-pointers. */
    EXPECT_ERR(pmm_writer_new_buffer(S(pid), 0, NULL), PMM_ERR_INVALID_ARGUMENT, "out");
    EXPECT_ERR(pmm_writer_new_callback(S(pid), 0, NULL, NULL, &w), PMM_ERR_INVALID_ARGUMENT, "write_fn");
    expect(w == NULL, "no writer on failure", __LINE__);
    EXPECT_ERR(pmm_writer_new_fd(S(pid), -1, 0, &w), PMM_ERR_INVALID_ARGUMENT, "file descriptor");
    EXPECT_ERR(pmm_writer_new_buffer(NULL, 5, 0, &w), PMM_ERR_INVALID_ARGUMENT, "process_id");
    EXPECT_ERR(pmm_writer_new_buffer(S(bad), 0, &w), PMM_ERR_INVALID_UTF8, "process_id");
    EXPECT_ERR(pmm_writer_emit_process_descriptor(NULL, S("exe")), PMM_ERR_INVALID_ARGUMENT, "writer");
    EXPECT_ERR(pmm_writer_emit_thread_descriptor(NULL, S("s"), 1, S("t")), PMM_ERR_INVALID_ARGUMENT, "writer");
    EXPECT_ERR(pmm_writer_set_current_thread(NULL, S("s")), PMM_ERR_INVALID_ARGUMENT, "writer");
    EXPECT_ERR(pmm_writer_emit_async_track_descriptor(NULL), PMM_ERR_INVALID_ARGUMENT, "writer");
    EXPECT_ERR(pmm_writer_emit_span(NULL, 1, 2, S("n"), S("t"), S("f"), 1), PMM_ERR_INVALID_ARGUMENT, "writer");
    EXPECT_ERR(pmm_writer_emit_async_span_begin(NULL, 1, S("n"), S("t"), S("f"), 1), PMM_ERR_INVALID_ARGUMENT, "writer");
    EXPECT_ERR(pmm_writer_emit_async_span_end(NULL, 1, S("n"), S("t"), S("f"), 1), PMM_ERR_INVALID_ARGUMENT, "writer");
    EXPECT_ERR(pmm_writer_flush(NULL), PMM_ERR_INVALID_ARGUMENT, "writer");
    EXPECT_ERR(pmm_writer_take_buffer(NULL, &data, &len), PMM_ERR_INVALID_ARGUMENT, "writer");
    pmm_writer_free(NULL);
    pmm_buffer_free(NULL);

    /* Wrong order, NULL strings and invalid UTF-8 on a live writer: errors, then the
       writer still produces exactly the bytes of a writer that never saw them. */
    expected_len = reference(&expected);
    EXPECT_OK(pmm_writer_new_buffer(S(pid), 0, &w));
    EXPECT_ERR(pmm_writer_emit_span(w, 1, 2, S("n"), S("t"), S("f"), 1), PMM_ERR_CALL_ORDER, "set_current_thread");
    EXPECT_ERR(pmm_writer_emit_async_span_begin(w, 1, S("n"), S("t"), S("f"), 1), PMM_ERR_CALL_ORDER, "async");
    EXPECT_ERR(pmm_writer_emit_async_span_end(w, 1, S("n"), S("t"), S("f"), 1), PMM_ERR_CALL_ORDER, "async");
    EXPECT_ERR(pmm_writer_emit_process_descriptor(w, NULL, 3), PMM_ERR_INVALID_ARGUMENT, "exe");
    EXPECT_ERR(pmm_writer_emit_process_descriptor(w, S(bad)), PMM_ERR_INVALID_UTF8, "exe");
    EXPECT_OK(pmm_writer_emit_process_descriptor(w, S("exe")));
    EXPECT_ERR(pmm_writer_emit_thread_descriptor(w, S(bad), 7, S("main-7")), PMM_ERR_INVALID_UTF8, "stream_id");
    EXPECT_ERR(pmm_writer_emit_thread_descriptor(w, S("stream"), 7, S(overlong)), PMM_ERR_INVALID_UTF8, "thread_name");
    EXPECT_OK(pmm_writer_emit_thread_descriptor(w, S("stream"), 7, S("main-7")));
    EXPECT_ERR(pmm_writer_set_current_thread(w, S(surrogate)), PMM_ERR_INVALID_UTF8, "stream_id");
    EXPECT_OK(pmm_writer_set_current_thread(w, S("stream")));
    EXPECT_ERR(pmm_writer_emit_span(w, 10, 20, S(bad), S("target"), S("file.rs"), 3), PMM_ERR_INVALID_UTF8, "name");
    EXPECT_ERR(pmm_writer_emit_span(w, 10, 20, S("name"), S(bad), S("file.rs"), 3), PMM_ERR_INVALID_UTF8, "target");
    EXPECT_ERR(pmm_writer_emit_span(w, 10, 20, S("name"), S("target"), S(surrogate), 3), PMM_ERR_INVALID_UTF8, "filename");
    EXPECT_ERR(pmm_writer_emit_span(w, 10, 20, NULL, 4, S("target"), S("file.rs"), 3), PMM_ERR_INVALID_ARGUMENT, "name");
    EXPECT_OK(pmm_writer_emit_span(w, 10, 20, S("name"), S("target"), S("file.rs"), 3));
    EXPECT_ERR(pmm_writer_take_buffer(w, NULL, &len), PMM_ERR_INVALID_ARGUMENT, "NULL");
    EXPECT_OK(pmm_writer_take_buffer(w, &data, &len));
    expect(len == expected_len && memcmp(data, expected, len) == 0, "bytes equal a clean writer's", __LINE__);
    pmm_buffer_free(data);
    pmm_buffer_free(expected);
    pmm_writer_free(w);

    /* A failing sink stops the writer; every later call says so. */
    EXPECT_OK(pmm_writer_new_callback(S(pid), 1, failing_sink, &calls, &w));
    EXPECT_ERR(pmm_writer_emit_process_descriptor(w, S("exe")), PMM_ERR_SINK, "42");
    EXPECT_ERR(pmm_writer_emit_process_descriptor(w, S("exe")), PMM_ERR_WRITER_STOPPED, "42");
    EXPECT_ERR(pmm_writer_flush(w), PMM_ERR_WRITER_STOPPED, "stopped");
    expect(calls == 1, "the failing sink is not called again", __LINE__);
    EXPECT_ERR(pmm_writer_take_buffer(w, &data, &len), PMM_ERR_WRITER_STOPPED, "stopped");
    pmm_writer_free(w);

    /* Only buffer writers have a buffer to take; flush reaches the callback. */
    EXPECT_OK(pmm_writer_new_callback(S(pid), 0, counting_sink, &sunk, &w));
    EXPECT_OK(pmm_writer_emit_process_descriptor(w, S("exe")));
    EXPECT_ERR(pmm_writer_take_buffer(w, &data, &len), PMM_ERR_CALL_ORDER, "memory sink");
    expect(sunk == 0, "nothing sunk before flush", __LINE__);
    EXPECT_OK(pmm_writer_flush(w));
    expect(sunk > 0, "flush reaches the sink", __LINE__);
    pmm_writer_free(w);

    /* A file descriptor that fails on write: an I/O error, then the writer is stopped. */
    fd = open("/dev/full", O_WRONLY);
    if (fd >= 0) {
        EXPECT_OK(pmm_writer_new_fd(S(pid), fd, 0, &w));
        EXPECT_OK(pmm_writer_emit_process_descriptor(w, S("exe")));
        EXPECT_ERR(pmm_writer_flush(w), PMM_ERR_IO, "errno");
        EXPECT_ERR(pmm_writer_emit_async_track_descriptor(w), PMM_ERR_WRITER_STOPPED, "errno");
        pmm_writer_free(w);
        close(fd);
    }
    /* Reading a directory: an I/O error of the validator, which names no writer. */
    fd = open(".", O_RDONLY);
    if (fd >= 0) {
        pmm_validator *v = NULL;
        EXPECT_ERR(pmm_validate_fd(fd, NULL, &v), PMM_ERR_IO, "Is a directory");
        expect(strstr(pmm_last_error(), "writer") == NULL, "a read error does not say a writer stopped", __LINE__);
        expect(v == NULL, "no validator on a read error", __LINE__);
        close(fd);
    }
    /* A pipe whose reader has gone, SIGPIPE ignored (as the header says): EPIPE. */
    {
        int p[2];
        void (*previous)(int) = signal(SIGPIPE, SIG_IGN);
        if (pipe(p) == 0) {
            close(p[0]);
            EXPECT_OK(pmm_writer_new_fd(S(pid), p[1], 0, &w));
            EXPECT_OK(pmm_writer_emit_process_descriptor(w, S("exe")));
            EXPECT_ERR(pmm_writer_flush(w), PMM_ERR_IO, "(errno 32)");
            pmm_writer_free(w);
            close(p[1]);
        }
        signal(SIGPIPE, previous);
    }
    /* A closed descriptor. */
    fd = open("/dev/null", O_WRONLY);
    close(fd);
    EXPECT_OK(pmm_writer_new_fd(S(pid), fd, 0, &w));
    EXPECT_OK(pmm_writer_emit_process_descriptor(w, S("exe")));
    EXPECT_ERR(pmm_writer_flush(w), PMM_ERR_IO, "Bad file descriptor");
    pmm_writer_free(w);

    /* The generator. */
    {
        pmm_generator *g = NULL;
        pmm_generator_stats stats;
        int released = 0;
        struct test_stream_state ok_state = {0, &released}, failing_state = {5, &released};
        struct ArrowArrayStream stream;
        pmm_thread thread = {"stream", 6, 7, "main-7", 6};
        pmm_generator_options options;
        options = test_options(&thread, 1, PMM_SPANS_BOTH);

        EXPECT_OK(pmm_writer_new_buffer(S(pid), 0, &w));
        EXPECT_ERR(pmm_generator_new(NULL, &options, &g), PMM_ERR_INVALID_ARGUMENT, "writer");
        EXPECT_ERR(pmm_generator_new(w, NULL, &g), PMM_ERR_INVALID_ARGUMENT, "options");
        EXPECT_ERR(pmm_generator_new(w, &options, NULL), PMM_ERR_INVALID_ARGUMENT, "out");
        options.span_types = 9;
        EXPECT_ERR(pmm_generator_new(w, &options, &g), PMM_ERR_INVALID_ARGUMENT, "span_types");
        options.span_types = PMM_SPANS_BOTH;
        options.async_layout = 4;
        EXPECT_ERR(pmm_generator_new(w, &options, &g), PMM_ERR_INVALID_ARGUMENT, "async_layout");
        options.async_layout = PMM_LAYOUT_LANES;
        options.threads = NULL;
        EXPECT_ERR(pmm_generator_new(w, &options, &g), PMM_ERR_INVALID_ARGUMENT, "threads");
        options.threads = &thread;
        options.thread_count = (size_t)-1;
        EXPECT_ERR(pmm_generator_new(w, &options, &g), PMM_ERR_INVALID_ARGUMENT, "thread_count");
        options.thread_count = 1;
        options.exe = bad;
        options.exe_len = strlen(bad);
        EXPECT_ERR(pmm_generator_new(w, &options, &g), PMM_ERR_INVALID_UTF8, "exe");
        options.exe = "exe";
        options.exe_len = 3;
        options.range_begin_ns = 2000;
        EXPECT_ERR(pmm_generator_new(w, &options, &g), PMM_ERR_INVALID_ARGUMENT, "after range end");
        options.range_begin_ns = 0;
        expect(g == NULL, "no generator on failure", __LINE__);
        EXPECT_OK(pmm_generator_new(w, &options, &g));
        pmm_writer_free(w); /* the generator keeps the writer alive */

        /* Every stream handed over is released, whatever the outcome. */
        stream = test_stream(&ok_state);
        EXPECT_ERR(pmm_generator_add_thread_spans(NULL, S("stream"), &stream), PMM_ERR_INVALID_ARGUMENT, "generator");
        expect(released == 1 && stream.release == NULL, "released with a NULL generator", __LINE__);
        stream = test_stream(&ok_state);
        EXPECT_ERR(pmm_generator_add_thread_spans(g, NULL, 3, &stream), PMM_ERR_INVALID_ARGUMENT, "stream_id");
        expect(released == 2, "released with a NULL stream id", __LINE__);
        stream = test_stream(&failing_state);
        EXPECT_ERR(pmm_generator_add_thread_spans(g, S("stream"), &stream), PMM_ERR_INVALID_DATA, "schema refused on purpose");
        expect(released == 3, "released when the schema fails", __LINE__);
        /* Bad data fails the generator: every later call says so, naming the cause. */
        stream = test_stream(&ok_state);
        EXPECT_ERR(pmm_generator_add_async_events(g, &stream), PMM_ERR_CALL_ORDER, "failed on an earlier error");
        expect(released == 4, "released by a failed generator", __LINE__);
        EXPECT_ERR(pmm_generator_get_stats(g, &stats), PMM_ERR_CALL_ORDER, "schema refused on purpose");
        EXPECT_ERR(pmm_generator_finish(g, &stats), PMM_ERR_CALL_ORDER, "schema refused on purpose");
        pmm_generator_free(g);
        g = NULL;
        EXPECT_OK(pmm_writer_new_buffer(S(pid), 0, &w));
        EXPECT_OK(pmm_generator_new(w, &options, &g));
        pmm_writer_free(w);
        stream = test_stream(&ok_state);
        EXPECT_ERR(pmm_generator_add_thread_spans(g, S("stream"), &stream), PMM_ERR_INVALID_DATA, "missing column 'begin'");
        expect(released == 5, "released on a missing column", __LINE__);
        pmm_generator_free(g);
        g = NULL;
        EXPECT_OK(pmm_writer_new_buffer(S(pid), 0, &w));
        EXPECT_OK(pmm_generator_new(w, &options, &g));
        pmm_writer_free(w);
        stream = test_stream(&ok_state);
        EXPECT_ERR(pmm_generator_add_thread_spans(g, S("unknown"), &stream), PMM_ERR_INVALID_ARGUMENT, "not in the thread list");
        expect(released == 6, "released with an unknown stream id", __LINE__);
        stream = test_stream(&ok_state);
        EXPECT_ERR(pmm_generator_add_async_events(g, &stream), PMM_ERR_INVALID_DATA, "missing column 'time'");
        expect(released == 7, "released on a missing column", __LINE__);
        pmm_generator_free(g);
        g = NULL;
        EXPECT_OK(pmm_writer_new_buffer(S(pid), 0, &w));
        EXPECT_OK(pmm_generator_new(w, &options, &g));
        pmm_writer_free(w);
        EXPECT_ERR(pmm_generator_add_async_events(g, NULL), PMM_ERR_INVALID_ARGUMENT, "NULL");
        stream = test_stream(&ok_state);
        stream.release = NULL;
        EXPECT_ERR(pmm_generator_add_async_events(g, &stream), PMM_ERR_INVALID_ARGUMENT, "released");
        expect(released == 7, "a released stream is not released again", __LINE__);
        stream = test_stream(&ok_state);
        EXPECT_ERR(pmm_generator_add_measures(NULL, &stream), PMM_ERR_INVALID_ARGUMENT, "generator");
        expect(released == 8, "measures: released with a NULL generator", __LINE__);
        stream = test_stream(&ok_state);
        EXPECT_ERR(pmm_generator_add_log_entries(NULL, &stream), PMM_ERR_INVALID_ARGUMENT, "generator");
        expect(released == 9, "log entries: released with a NULL generator", __LINE__);
        EXPECT_ERR(pmm_generator_add_measures(g, NULL), PMM_ERR_INVALID_ARGUMENT, "NULL");
        EXPECT_ERR(pmm_generator_add_log_entries(g, NULL), PMM_ERR_INVALID_ARGUMENT, "NULL");
        EXPECT_ERR(pmm_generator_get_stats(g, NULL), PMM_ERR_INVALID_ARGUMENT, "stats");
        EXPECT_OK(pmm_generator_finish(g, &stats));
        expect(stats.thread_spans == 0 && stats.async_spans == 0 && stats.async_tracks == 1 && stats.log_entries == 0
               && stats.measures == 0 && stats.counter_tracks == 0, "empty stats", __LINE__);
        EXPECT_ERR(pmm_generator_finish(g, &stats), PMM_ERR_CALL_ORDER, "finished");
        stream = test_stream(&ok_state);
        EXPECT_ERR(pmm_generator_add_async_events(g, &stream), PMM_ERR_CALL_ORDER, "finished");
        expect(released == 10, "released after finish", __LINE__);
        stream = test_stream(&ok_state);
        EXPECT_ERR(pmm_generator_add_log_entries(g, &stream), PMM_ERR_CALL_ORDER, "finished");
        expect(released == 11, "log entries: released after finish", __LINE__);
        EXPECT_ERR(pmm_generator_finish(NULL, &stats), PMM_ERR_INVALID_ARGUMENT, "generator");
        pmm_generator_free(g);
        g = NULL;
        EXPECT_OK(pmm_writer_new_buffer(S(pid), 0, &w));
        EXPECT_OK(pmm_generator_new(w, &options, &g));
        pmm_writer_free(w);
        stream = test_stream(&ok_state);
        EXPECT_ERR(pmm_generator_add_log_entries(g, &stream), PMM_ERR_INVALID_DATA, "missing column 'time'");
        expect(released == 12, "log entries: released on a missing column", __LINE__);
        pmm_generator_free(g);
        g = NULL;
        EXPECT_OK(pmm_writer_new_buffer(S(pid), 0, &w));
        EXPECT_OK(pmm_generator_new(w, &options, &g));
        pmm_writer_free(w);
        stream = test_stream(&ok_state);
        EXPECT_ERR(pmm_generator_add_measures(g, &stream), PMM_ERR_INVALID_DATA, "missing column 'time'");
        expect(released == 13, "measures: released on a missing column", __LINE__);
        pmm_generator_free(g);
        pmm_generator_free(NULL);
    }

    test_impossible_sizes();
    test_duplicate_threads();
    test_last_error_threads();
    test_refused_streams_are_released_unread();
    test_nul_in_messages();
    test_generator_on_a_stopped_writer();
    test_outputs_untouched_on_error();

    printf("abi_misuse: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
