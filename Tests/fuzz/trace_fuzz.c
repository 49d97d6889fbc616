/*
 * trace_fuzz: a libFuzzer target for the trace validator (pmm_validate_buffer,
 * pmm_validator_feed). Its input is taken as a trace: validated whole, then fed in
 * pieces whose sizes come from the input's first byte; both must give the same counts
 * and examples, and every example must point inside the input. Any crash,
 * AddressSanitizer report, leak, hang or disagreement is a bug.
 *
 * Built with clang -fsanitize=fuzzer,address against the library built with the same
 * sanitizers (make fuzz-build); seeds in Tests/fuzz/trace_corpus (small golden traces,
 * by name, and the minimised finds of longer runs).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perfetto_mm.h"

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "trace_fuzz: %s (last error: %s)\n", what, pmm_last_error());
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pmm_validation_stats whole, pieces;
    pmm_validator *report = NULL;
    check(pmm_validate_buffer(size ? data : NULL, size, &whole, &report) == PMM_OK, "validate_buffer fails");
    check(report != NULL, "no report");
    check(whole.bytes == size, "bytes differ from the input size");
    uint64_t sum = 0;
    for (int k = 0; k < PMM_PROBLEM_KIND_COUNT; k++) sum += whole.problems[k];
    check(sum == whole.problems_total, "problem counts do not add up");
    size_t examples = 0;
    check(pmm_validator_example_count(report, &examples) == PMM_OK, "example_count fails");
    for (size_t i = 0; i < examples; i++) {
        pmm_validation_example e;
        check(pmm_validator_get_example(report, i, &e) == PMM_OK, "get_example fails");
        check(e.kind > 0 && e.kind < PMM_PROBLEM_KIND_COUNT, "example kind out of range");
        check(e.packet_offset <= size, "example offset past the input");
        /* message_len bytes, then a NUL; a name quoted from the input may hold a NUL itself. */
        check(e.message != NULL && e.message[e.message_len] == '\0' && strlen(e.message) <= e.message_len,
              "example message");
    }

    /* The same input in pieces of 1..256 bytes (from the first byte), cycling. */
    size_t step = size ? (size_t)data[0] % 256 + 1 : 1;
    pmm_validator *v = NULL;
    check(pmm_validator_new(&v) == PMM_OK, "validator_new fails");
    for (size_t at = 0; at < size;) {
        size_t n = size - at < step ? size - at : step;
        check(pmm_validator_feed(v, data + at, n) == PMM_OK, "feed fails");
        at += n;
        step = step % 97 + 1;
    }
    check(pmm_validator_finish(v, &pieces) == PMM_OK, "finish fails");
    check(memcmp(whole.problems, pieces.problems, sizeof whole.problems) == 0, "pieces give other problem counts");
    check(whole.packets == pieces.packets && whole.slices == pieces.slices, "pieces give other counts");
    size_t piece_examples = 0;
    check(pmm_validator_example_count(v, &piece_examples) == PMM_OK && piece_examples == examples,
          "pieces give other examples");
    for (size_t i = 0; i < examples; i++) {
        pmm_validation_example a, b;
        check(pmm_validator_get_example(report, i, &a) == PMM_OK && pmm_validator_get_example(v, i, &b) == PMM_OK,
              "get_example fails");
        check(a.kind == b.kind && a.packet_offset == b.packet_offset && a.message_len == b.message_len &&
                  memcmp(a.message, b.message, a.message_len) == 0,
              "pieces give another example");
    }
    pmm_validator_free(v);
    pmm_validator_free(report);
    return 0;
}
