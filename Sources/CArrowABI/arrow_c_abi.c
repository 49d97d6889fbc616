/* The CArrowABI target only declares the Arrow C structures (include/arrow_c_abi.h). */
#include "arrow_c_abi.h"
