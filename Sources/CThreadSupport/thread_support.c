/* The CThreadSupport target only declares inline atomics (include/pmm_thread_support.h). */
#include "pmm_thread_support.h"
