/* Compiles the public header once as C99, so a header error fails the build. */
#include "../../include/perfetto_mm.h"
