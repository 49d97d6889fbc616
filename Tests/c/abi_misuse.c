/*
 * abi_misuse: every misuse of the C ABI returns an error code and a message, never
 * crashes, and leaves a usable (or cleanly stopped) writer. Run under valgrind by
 * `make test` to check that no path leaks.
 */
#include <fcntl.h>
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
    /* A closed descriptor. */
    fd = open("/dev/null", O_WRONLY);
    close(fd);
    EXPECT_OK(pmm_writer_new_fd(S(pid), fd, 0, &w));
    EXPECT_OK(pmm_writer_emit_process_descriptor(w, S("exe")));
    EXPECT_ERR(pmm_writer_flush(w), PMM_ERR_IO, "Bad file descriptor");
    pmm_writer_free(w);

    printf("abi_misuse: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
