/*
 * validate_trace: the validation C ABI on the golden traces, from a descriptor, from a
 * buffer and fed in pieces; a cut trace; examples; misuse. Run under valgrind by
 * `make test-c`. Usage: validate_trace GOLDEN_DIR
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "perfetto_mm.h"

static int passed, failed;

static void expect(int ok, const char *what, int line) {
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "FAIL line %d: %s (last error: %s)\n", line, what, pmm_last_error());
    }
}
#define EXPECT(cond) expect((cond) != 0, #cond, __LINE__)

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = (uint8_t *)malloc((size_t)n + 1);
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) { free(data); data = NULL; }
    fclose(f);
    *len = (size_t)n;
    return data;
}

static void golden_path(char *out, size_t size, const char *dir, const char *name) {
    snprintf(out, size, "%s/%s.perfetto", dir, name);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s GOLDEN_DIR\n", argv[0]); return 2; }
    const char *dir = argv[1];
    char path[4096];
    pmm_validation_stats stats;

    /* Thread-only traces are clean, from a descriptor. */
    golden_path(path, sizeof path, dir, "basic_thread");
    int fd = open(path, O_RDONLY);
    EXPECT(fd >= 0);
    EXPECT(pmm_validate_fd(fd, &stats, NULL) == PMM_OK);
    close(fd);
    EXPECT(stats.is_trace == 1);
    EXPECT(stats.problems_total == 0);
    EXPECT(stats.slices == 11 && stats.slice_ends == 11);

    /* The large golden (micromegas' one async track) shows slices wrong. */
    golden_path(path, sizeof path, dir, "large");
    size_t len = 0;
    uint8_t *data = read_file(path, &len);
    EXPECT(data != NULL);
    pmm_validator *report = NULL;
    EXPECT(pmm_validate_buffer(data, len, &stats, &report) == PMM_OK);
    EXPECT(report != NULL);
    EXPECT(stats.bytes == len);
    EXPECT(stats.wrong_duration_slices > 0);
    EXPECT(stats.wrong_duration_slices == stats.problems[PMM_PROBLEM_WRONG_DURATION]);
    EXPECT(stats.misplaced_end_events == stats.problems[PMM_PROBLEM_MISPLACED_END_EVENT]);
    EXPECT(stats.slices == 23000);
    uint64_t sum = 0;
    for (int k = 0; k < PMM_PROBLEM_KIND_COUNT; k++) sum += stats.problems[k];
    EXPECT(sum == stats.problems_total);
    size_t count = 0;
    EXPECT(pmm_validator_example_count(report, &count) == PMM_OK);
    EXPECT(count > 0);
    size_t wrong_examples = 0;
    for (size_t i = 0; i < count; i++) {
        pmm_validation_example e;
        EXPECT(pmm_validator_get_example(report, i, &e) == PMM_OK);
        EXPECT(e.kind > 0 && e.kind < PMM_PROBLEM_KIND_COUNT);
        EXPECT(pmm_problem_name(e.kind) != NULL);
        EXPECT(e.packet_offset < len);
        EXPECT(e.message != NULL && e.message[e.message_len] == '\0' && strlen(e.message) <= e.message_len &&
               e.message_len > 0);
        if (e.kind == PMM_PROBLEM_WRONG_DURATION) wrong_examples++;
    }
    EXPECT(wrong_examples == PMM_VALIDATION_EXAMPLES_PER_KIND);
    pmm_validation_example e;
    EXPECT(pmm_validator_get_example(report, count, &e) == PMM_ERR_INVALID_ARGUMENT);
    EXPECT(pmm_validator_feed(report, data, 1) == PMM_ERR_CALL_ORDER);
    pmm_validator_free(report);

    /* Fed in 333-byte pieces: the same counts. */
    pmm_validator *v = NULL;
    EXPECT(pmm_validator_new(&v) == PMM_OK);
    for (size_t at = 0; at < len; at += 333) {
        size_t n = len - at < 333 ? len - at : 333;
        EXPECT(pmm_validator_feed(v, data + at, n) == PMM_OK);
    }
    pmm_validation_stats pieces;
    EXPECT(pmm_validator_finish(v, &pieces) == PMM_OK);
    EXPECT(memcmp(pieces.problems, stats.problems, sizeof stats.problems) == 0);
    EXPECT(pieces.packets == stats.packets);
    pmm_validator_free(v);

    /* Cut in the middle of its last packet: truncated. */
    EXPECT(pmm_validate_buffer(data, len - 3, &stats, NULL) == PMM_OK);
    EXPECT(stats.problems[PMM_PROBLEM_TRUNCATED] == 1);
    EXPECT(stats.is_trace == 1);
    free(data);

    /* Not a trace. */
    static const uint8_t text[] = "not a trace";
    EXPECT(pmm_validate_buffer(text, sizeof text - 1, &stats, NULL) == PMM_OK);
    EXPECT(stats.is_trace == 0);
    EXPECT(stats.problems[PMM_PROBLEM_FRAMING] == 1);
    EXPECT(pmm_validate_buffer(NULL, 0, &stats, NULL) == PMM_OK);
    EXPECT(stats.is_trace == 0);

    /* Misuse. */
    EXPECT(pmm_validate_buffer(NULL, 5, &stats, NULL) == PMM_ERR_INVALID_ARGUMENT);
    EXPECT(pmm_validate_fd(-1, &stats, NULL) == PMM_ERR_INVALID_ARGUMENT);
    int dirfd = open(dir, O_RDONLY);
    report = (pmm_validator *)&stats; /* must be reset to NULL on error */
    EXPECT(pmm_validate_fd(dirfd, &stats, &report) == PMM_ERR_IO);
    EXPECT(report == NULL);
    close(dirfd);
    EXPECT(pmm_validator_new(NULL) == PMM_ERR_INVALID_ARGUMENT);
    EXPECT(pmm_validator_feed(NULL, text, 1) == PMM_ERR_INVALID_ARGUMENT);
    EXPECT(pmm_validator_finish(NULL, &stats) == PMM_ERR_INVALID_ARGUMENT);
    EXPECT(pmm_validator_example_count(NULL, &count) == PMM_ERR_INVALID_ARGUMENT);
    EXPECT(pmm_problem_name(0) == NULL && pmm_problem_name(PMM_PROBLEM_KIND_COUNT) == NULL);
    EXPECT(strcmp(pmm_problem_name(PMM_PROBLEM_MISPLACED_END_EVENT), "misplaced_end_event") == 0);
    EXPECT(pmm_validator_new(&v) == PMM_OK);
    EXPECT(pmm_validator_get_example(v, 0, &e) == PMM_ERR_CALL_ORDER);
    EXPECT(pmm_validator_feed(v, NULL, 1) == PMM_ERR_INVALID_ARGUMENT);
    EXPECT(pmm_validator_finish(v, NULL) == PMM_OK);
    pmm_validator_free(v);
    pmm_validator_free(NULL);

    printf("validate_trace: %d checks passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
