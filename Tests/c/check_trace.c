/*
 * check_trace: validates a trace file through the C ABI and fails unless it is a trace
 * with no problem and exactly SLICES slices. `make test-c` runs it on the trace of the
 * README's C example. Usage: check_trace FILE SLICES
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "perfetto_mm.h"

int main(int argc, char **argv) {
    pmm_validation_stats stats;
    unsigned long long slices;
    int fd;
    if (argc != 3) {
        fprintf(stderr, "usage: %s FILE SLICES\n", argv[0]);
        return 2;
    }
    slices = strtoull(argv[2], NULL, 10);
    fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 2;
    }
    if (pmm_validate_fd(fd, &stats, NULL) != PMM_OK) {
        fprintf(stderr, "%s: %s\n", argv[1], pmm_last_error());
        close(fd);
        return 2;
    }
    close(fd);
    if (!stats.is_trace || stats.problems_total != 0 || stats.slices != slices) {
        fprintf(stderr, "%s: is_trace %d, %llu problems, %llu slices (expected a trace with no problem and %llu slices)\n",
                argv[1], (int)stats.is_trace, (unsigned long long)stats.problems_total,
                (unsigned long long)stats.slices, slices);
        return 1;
    }
    printf("%s: a trace, no problem, %llu slices, %llu bytes\n", argv[1], slices, (unsigned long long)stats.bytes);
    return 0;
}
