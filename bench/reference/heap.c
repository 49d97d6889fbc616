/* pmm-bench support: heap bytes in use (mallinfo2), for the async held-bytes figure. */
#include <malloc.h>

#include "bench_reference.h"

size_t bench_heap_bytes_in_use(void) {
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}
