# micromegas Perfetto trace generation: Swift core (libperfetto_mm.so), C ABI, Python package.
#
#   make demo    install what is needed, build, write a trace from built-in sample data
#   make test    build and run every test (Swift, C example, C ABI misuse under valgrind, pytest)
#   make bench   writer, generator and end-to-end benchmarks, BENCH lines (docs/benchmarks.md)
#   make wheel   the binary wheel of micromegas-perfetto (manylinux tag from auditwheel) in dist/
#   make fuzz    the C ABI fuzzer for FUZZ_SECONDS (default 300; make test runs it for 30)
#   make trace-fuzz  the trace validator's fuzzer for TRACE_FUZZ_SECONDS (default 120; make test: 15)

SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin
export SWIFT_BACKTRACE ?= enable=no

# The shipped library and the tools are built in their own scratch path, always with
# -static-stdlib: a plain `swift build -c release` (.build) can never leave there a
# libperfetto_mm.so that needs the Swift runtime. python/setup.py builds in the same path.
RELEASE_SCRATCH := $(shell pwd)/.build-release-static
# The linker's version script keeps the library's dynamic symbols to the header's pmm_* functions.
# Its SONAME is libperfetto_mm.so: a program linked by the library's path records that name
# (found through its rpath or LD_LIBRARY_PATH), not the build folder's path.
EXPORTS_MAP := $(shell pwd)/Sources/PerfettoMM/exports.map
SWIFT_RELEASE := swift build -c release -Xswiftc -static-stdlib -Xlinker --version-script=$(EXPORTS_MAP) \
  -Xlinker -soname=libperfetto_mm.so --scratch-path $(RELEASE_SCRATCH)
BIN := $(RELEASE_SCRATCH)/release
OUT := $(shell pwd)/.build/out
LIB := $(BIN)/libperfetto_mm.so
CFLAGS := -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -pedantic -Werror -Iinclude
# The same files as C++ (the header's extern "C" block): -std=c++11 and -std=c++17 are added.
CXXFLAGS := -Wall -Wextra -pedantic -Werror -Iinclude
CLINK := -L$(BIN) -lperfetto_mm -Wl,-rpath,$(BIN)
GOLDEN := Tests/Fixtures/golden
VALGRIND := valgrind -q --leak-check=full --show-possibly-lost=no --errors-for-leak-kinds=definite,indirect --error-exitcode=9
PYTHON ?= python3
PIP := $(PYTHON) -m pip -q
export PIP_ROOT_USER_ACTION := ignore
export PIP_DISABLE_PIP_VERSION_CHECK := 1

DIST := $(shell pwd)/dist

.PHONY: all build deps python-deps python-install wheel demo test test-swift test-asan test-tsan test-c test-library test-python test-fuzz fuzz fuzz-build trace-fuzz bench clean

all: build

# Tools the tests need that a fresh machine may lack (Debian packages).
deps:
	@command -v swift >/dev/null || { echo "swift toolchain not found (expected in /opt/swift/usr/bin)"; exit 1; }
	@command -v cc >/dev/null && command -v g++ >/dev/null && command -v valgrind >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc g++ libc6-dev valgrind >/dev/null; }
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: Python 3.9+ with pip is needed"; exit 1; }

# A compiler warning fails the build: $(call no_warnings,COMMAND,LOG) runs COMMAND, keeps its
# output in .build/LOG.log and fails if it printed any warning. The lines allowed are the
# linker's about mktemp in the toolchain's static Foundation (linked into pmm-scenario) and, in
# the AddressSanitizer build, gold's about the sanitizer runtime's own local symbols: not ours.
no_warnings = @echo "$(1)"; set -o pipefail; mkdir -p .build; $(1) 2>&1 | tee .build/$(2).log; \
  if grep 'warning:' .build/$(2).log | grep -v -e 'mktemp.*is dangerous' -e "Cannot export local symbol '__asan"; then \
    echo "FAIL: the build printed the warnings above; warnings are errors here"; exit 1; fi

build:
	$(call no_warnings,$(SWIFT_RELEASE),build-release)

# Python runtime dependencies (pyarrow, tqdm) and the build and test ones (pytest, Perfetto's
# protos, DataFusion for the FlightSQL fixture server, wheel + auditwheel for `make wheel`,
# numpy for the tests that numpy still imports after a numpy-free run and takes numpy
# integers: pyarrow 16 and later do not pull it in, and a machine without it failed them;
# pandas for the tests of the pandas Timestamps notebooks pass, which skipped without it).
python-deps:
	$(PIP) install "pyarrow>=14" "tqdm>=4.60" "pytest>=7" "perfetto>=0.9" "protobuf>=4" "datafusion>=40" \
	  "setuptools>=64" "wheel>=0.40" "auditwheel>=6" "numpy>=1.21" "pandas>=1.3"

# pip builds libperfetto_mm.so through the package's build hook and bundles it.
python-install: build python-deps
	$(PIP) install ./python

# A wheel people can install without Swift: py3-none-<the manylinux tag auditwheel reports>.
wheel: build python-deps
	$(PYTHON) python/tools/build_wheel.py $(DIST)

# The demo reads the built-in sample lake whatever the user's environment names (a lake, or a
# server: micromegas users often export $MICROMEGAS_ANALYTICS_URI or $MICROMEGAS_PROFILE).
SAMPLE_ONLY := env -u MICROMEGAS_LAKE -u MICROMEGAS_ANALYTICS_URI -u MICROMEGAS_PROFILE -u MICROMEGAS_TOKEN
demo: deps python-install
	@mkdir -p $(OUT)
	@cd $(OUT) && pid=$$($(SAMPLE_ONLY) $(PYTHON) -m micromegas list-processes --ids | head -n 1) && \
	  $(SAMPLE_ONLY) $(PYTHON) -m micromegas write_perfetto $$pid --filename $(OUT)/demo.perfetto && \
	  echo && echo "trace: $(OUT)/demo.perfetto" && \
	  echo "open it at https://ui.perfetto.dev (Open trace file), or: python -m micromegas --help"

test: deps build test-asan test-tsan test-c test-library test-python test-fuzz
	@echo "make test: all checks passed"

# The Swift tests one at a time (--no-parallel): in parallel, a test's time limit (.timeLimit,
# there to stop a hang) also counted the time it waited for one of the 2 cores behind the
# long tests. Under load the 1-minute WorkerThreadTests (0.05 s of work) timed out under
# TSan after 136 s, and "took" 49 s in the plain run. One at a time, under the same load:
# the plain run 45 s (56 s in parallel), the TSan run 191 s (137 s), each test timed alone.
SWIFT_TEST := swift test --no-parallel

# Every Swift test, without a sanitizer (`make test-swift`, for iterating), or under
# AddressSanitizer (`make test-asan`, what `make test` runs: the same tests, and the Arrow
# importer reads producer memory, so out-of-bounds reads must fail loudly; leaks are checked
# by valgrind on the C ABI). Each build fails on a compiler warning. make test ran both
# until 2026-12-02: the plain run (~95 s with its build) checked nothing the ASan run does not.
test-swift:
	$(call no_warnings,swift build --build-tests,build-tests)
	$(SWIFT_TEST) --skip-build

test-asan:
	$(call no_warnings,swift build --build-tests --sanitize=address --scratch-path .build-asan,build-tests-asan)
	ASAN_OPTIONS=detect_leaks=0 $(SWIFT_TEST) --skip-build --sanitize=address --scratch-path .build-asan

# The tests of the two-thread phases (async events decoded on a worker thread, lane
# placement on a worker thread) and of the async paths they serve, under ThreadSanitizer:
# any data race it reports stops the run. (DecodeAheadTests runs under ASan only: 54 s under
# TSan; AsyncOrderTests and DecodeAheadEdgeTests run the decoding worker here.)
test-tsan:
	TSAN_OPTIONS=halt_on_error=1 $(SWIFT_TEST) --sanitize=thread --scratch-path .build-tsan \
	  --filter 'TwoThreadPlacementTests|WorkerThreadTests|DecodeAheadEdgeTests|AsyncOrderTests|LanesContentTests'

# The C example writes the `basic` golden scenario through the header, whole and in
# 256-byte chunks; the README's C example is built as C99, C++11 and C++17 and its trace
# validated; the misuse test exercises every error path and the hostile-Arrow test
# streams no producer should make (and the fuzzer's finds), both under valgrind; running out
# of memory with async spans is an error. Every C file also compiles as C++11 and C++17.
test-c: build
	@mkdir -p $(OUT)
	cc $(CFLAGS) examples/c/write_basic.c $(CLINK) -o $(OUT)/write_basic
	$(OUT)/write_basic $(OUT)/c_basic.perfetto $(OUT)/c_basic_chunked.perfetto
	cmp $(OUT)/c_basic.perfetto $(GOLDEN)/basic.perfetto
	cmp $(OUT)/c_basic_chunked.perfetto $(GOLDEN)/basic.perfetto
	for std in c++11 c++17; do g++ -x c++ -std=$$std $(CXXFLAGS) -fsyntax-only examples/c/write_basic.c || exit 1; done
	@# The README's C example exactly as written, as C99, C++11 and C++17: it runs and
	@# writes the same clean one-slice trace each time.
	awk '/^## Using the library from C/ { f = 1 } f && /^```c/ { g = 1; next } g && /^```/ { exit } g' README.md \
	  > $(OUT)/readme_c.c && grep -q 'int main' $(OUT)/readme_c.c
	cc $(CFLAGS) Tests/c/check_trace.c $(CLINK) -o $(OUT)/check_trace
	cc $(CFLAGS) $(OUT)/readme_c.c $(CLINK) -o $(OUT)/readme_c
	for std in c++11 c++17; do g++ -x c++ -std=$$std $(CXXFLAGS) $(OUT)/readme_c.c $(CLINK) -o $(OUT)/readme_$$std || exit 1; done
	for app in readme_c readme_c++11 readme_c++17; do $(OUT)/$$app > $(OUT)/$$app.perfetto && \
	  $(OUT)/check_trace $(OUT)/$$app.perfetto 1 && cmp $(OUT)/$$app.perfetto $(OUT)/readme_c.perfetto || exit 1; done
	cc $(CFLAGS) Tests/c/abi_misuse.c $(CLINK) -o $(OUT)/abi_misuse
	$(VALGRIND) $(OUT)/abi_misuse
	cc $(CFLAGS) Tests/c/hostile_arrow.c $(CLINK) -o $(OUT)/hostile_arrow
	$(VALGRIND) $(OUT)/hostile_arrow
	@# Out of memory while pairing and placing async spans, or validating a packet cut across
	@# pieces (a limited address space, as `ulimit -v` sets): an error, not an abort. Not under valgrind (an address space of its own).
	cc $(CFLAGS) Tests/c/async_oom.c $(CLINK) -o $(OUT)/async_oom
	$(OUT)/async_oom
	cc $(CFLAGS) Tests/c/validate_trace.c $(CLINK) -o $(OUT)/validate_trace
	for f in Tests/c/validate_trace.c Tests/c/abi_misuse.c Tests/c/hostile_arrow.c Tests/c/async_oom.c; do \
	  for std in c++11 c++17; do g++ -x c++ -std=$$std -D_POSIX_C_SOURCE=200809L $(CXXFLAGS) -fsyntax-only $$f || exit 1; done; done
	$(VALGRIND) $(OUT)/validate_trace $(GOLDEN)
	@for f in $(GOLDEN)/*.json; do n=$$(basename $$f .json); \
	  rm -rf $(OUT)/chunks-$$n; $(BIN)/pmm-scenario $$f $(OUT)/$$n.perfetto --chunk-size 4096 --chunks-dir $(OUT)/chunks-$$n >/dev/null && \
	  cmp $(OUT)/$$n.perfetto $(GOLDEN)/$$n.perfetto && \
	  (cd $(OUT)/chunks-$$n && cat $$(ls | sort -n)) | cmp - $(GOLDEN)/$$n.perfetto || exit 1; \
	done; echo "pmm-scenario: every golden scenario byte-identical, whole and as chunk files"

# The shipped library needs only the system C/C++ runtime: the one built here and the one
# inside the installed Python package (what users load).
INSTALLED_LIB = $$(env -u MICROMEGAS_PERFETTO_LIB $(PYTHON) -c 'from micromegas_perfetto import _native; print(_native.library_path())')
test-library: build python-install
	@for lib in $(LIB) $(INSTALLED_LIB); do echo "$$lib:"; \
	  deps=$$(ldd $$lib | awk '{print $$1}') || exit 1; echo "$$deps" | tr '\n' ' '; echo; \
	  if echo "$$deps" | grep -qi swift; then echo "FAIL: $$lib depends on the Swift runtime"; exit 1; fi; \
	  for d in $$deps; do case $$d in linux-vdso.so.*|libc.so.*|libm.so.*|libstdc++.so.*|libgcc_s.so.*|/lib64/ld-linux*|libdl.so.*|libpthread.so.*|librt.so.*) ;; \
	    *) echo "FAIL: $$lib: unexpected dependency $$d"; exit 1;; esac; done; \
	done; echo "ldd: only the system C/C++ runtime, in the build and in the installed package"
	@for lib in $(LIB) $(INSTALLED_LIB); do readelf -d $$lib | grep -q 'SONAME.*\[libperfetto_mm\.so\]' || \
	  { echo "FAIL: $$lib: no SONAME libperfetto_mm.so"; readelf -d $$lib | grep SONAME; exit 1; }; done
	@# Linked by its path, a program records the library's name, and runs through its rpath.
	@mkdir -p $(OUT) && cc $(CFLAGS) examples/c/write_basic.c $(LIB) -Wl,-rpath,$(BIN) -o $(OUT)/write_basic_by_path
	@readelf -d $(OUT)/write_basic_by_path | grep NEEDED | grep -q '\[libperfetto_mm\.so\]' || \
	  { echo "FAIL: a program linked by the library's path does not need it by name"; exit 1; }
	@$(OUT)/write_basic_by_path $(OUT)/by_path.perfetto $(OUT)/by_path_chunked.perfetto && cmp $(OUT)/by_path.perfetto $(GOLDEN)/basic.perfetto
	@echo "SONAME libperfetto_mm.so, in the build and in the installed package"

# The libFuzzer target (Tests/fuzz/arrow_fuzz.c) against the library built with
# AddressSanitizer and coverage, in its own scratch path. It starts from the seed corpus in
# Tests/fuzz/corpus (read-only) and adds what it finds to .build-fuzz/corpus. Any crash,
# sanitizer report, leak or input running over 10 s fails the run; the input is left in
# .build-fuzz/artifacts (turn it into a case of Tests/c/hostile_arrow.c).
FUZZ_SECONDS ?= 300
FUZZ_DIR := $(shell pwd)/.build-fuzz
FUZZ_CC := /opt/swift/usr/bin/clang
FUZZ_LIB := $(FUZZ_DIR)/release/libperfetto_mm.so
# The instrumented library is rebuilt only when a source changed: its link alone takes ~35 s.
# The public header is one (the core imports its constants and structs through CPerfettoMM).
SWIFT_SOURCES := Package.swift include/perfetto_mm.h $(shell find Sources -type f)
# swiftc keeps only the last of SwiftPM's -sanitize=address -sanitize=fuzzer, so the Swift code
# had AddressSanitizer but no coverage counters, and libFuzzer was guided by the fuzzers' C code
# alone (cov 20 for trace_fuzz). -sanitize=address,fuzzer gives swiftc both; the counters are checked.
$(FUZZ_LIB): $(SWIFT_SOURCES)
	swift build -c release --scratch-path $(FUZZ_DIR) --sanitize=address --sanitize=fuzzer \
	  -Xswiftc -sanitize=address,fuzzer --product perfetto_mm
	@hex=$$(readelf -SW $@ | awk '{ for (i = 1; i < NF; i++) if ($$i == "__sancov_cntrs") print $$(i + 4) }'); \
	  n=$$((16#$${hex:-0})); [ $$n -gt 1000 ] || \
	  { echo "FAIL: $@ has $$n coverage counters: its Swift code is not instrumented for libFuzzer"; exit 1; }
	@touch $@
# A fuzzer: clang's output without the linker's notes about Swift's local symbols; its status kept.
$(FUZZ_DIR)/%_fuzz: Tests/fuzz/%_fuzz.c $(FUZZ_LIB) include/perfetto_mm.h
	@rm -f $@
	$(FUZZ_CC) -g -O1 -std=c99 -Wall -Wextra -Werror -fsanitize=fuzzer,address -fuse-ld=lld -Iinclude \
	  $< -L$(FUZZ_DIR)/release -lperfetto_mm -Wl,-rpath,$(FUZZ_DIR)/release -o $@ > $@.log 2>&1; \
	  rc=$$?; grep -v "Cannot export local symbol" $@.log; exit $$rc
$(FUZZ_DIR)/arrow_fuzz: Tests/c/arrow_build.h
fuzz-build: $(FUZZ_DIR)/arrow_fuzz $(FUZZ_DIR)/trace_fuzz

fuzz: fuzz-build
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts
	ASAN_OPTIONS=detect_leaks=1 $(FUZZ_DIR)/arrow_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	  -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/ $(FUZZ_DIR)/corpus Tests/fuzz/corpus 2>&1 | \
	  grep -v -E '^(#[0-9]+.*(NEW|REDUCE|pulse)|"|###### |\s+NEW_FUNC)' ; exit $${PIPESTATUS[0]}

# make test fuzzes briefly (the corpus it starts from holds the finds of longer runs); run
# `make fuzz` and `make trace-fuzz` for longer campaigns.
test-fuzz: fuzz-build
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=30
	$(MAKE) --no-print-directory trace-fuzz TRACE_FUZZ_SECONDS=15

# The trace validator's fuzzer (Tests/fuzz/trace_fuzz.c): any input as a trace, whole and
# in pieces, from Tests/fuzz/trace_corpus (the small golden traces, by name, and the minimised
# finds of longer runs).
TRACE_FUZZ_SECONDS ?= 120
trace-fuzz: fuzz-build
	@mkdir -p $(FUZZ_DIR)/trace_corpus $(FUZZ_DIR)/artifacts
	ASAN_OPTIONS=detect_leaks=1 $(FUZZ_DIR)/trace_fuzz -max_total_time=$(TRACE_FUZZ_SECONDS) -timeout=10 \
	  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/ $(FUZZ_DIR)/trace_corpus \
	  Tests/fuzz/trace_corpus 2>&1 | grep -v -E '^(#[0-9]+.*(NEW|REDUCE|pulse)|"|###### |\s+NEW_FUNC)' ; exit $${PIPESTATUS[0]}

# pytest against the installed package (not the source tree), with its bundled library; the
# official-client tests install the wheel beside micromegas==0.32.0 (PyPI) in fresh venvs.
test-python: python-install wheel
	cd python/tests && env -u MICROMEGAS_PERFETTO_LIB -u MICROMEGAS_LAKE -u MICROMEGAS_ANALYTICS_URI \
	  -u MICROMEGAS_PROFILE -u MICROMEGAS_TOKEN MICROMEGAS_PERFETTO_WHEEL=$$(ls $(DIST)/micromegas_perfetto-*.whl) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider .

bench: build python-install
	@mkdir -p $(OUT)
	$(BIN)/pmm-bench memory
	@# File cases: flush earlier dirty pages first, or kernel write-back throttles the run.
	sync; $(BIN)/pmm-bench file --scale 1 --out $(OUT)/bench.perfetto --keep
	@# The validator on that trace (1M thread spans + 200k async spans, micromegas layout), then 4x.
	$(BIN)/pmm-bench validate $(OUT)/bench.perfetto --name validate
	sync; $(BIN)/pmm-bench file --scale 4 --out $(OUT)/bench.perfetto --keep
	$(BIN)/pmm-bench validate $(OUT)/bench.perfetto --name validate_4x
	rm -f $(OUT)/bench.perfetto
	$(BIN)/pmm-bench generator-memory
	$(BIN)/pmm-bench generator-args-flows
	sync; $(BIN)/pmm-bench generator-file --threads-scale 1
	sync; $(BIN)/pmm-bench generator-file --threads-scale 4
	$(PYTHON) python/bench/write_perfetto_bench.py $(shell pwd)/.build/bench-lakes
	$(PYTHON) python/bench/logs_metrics_bench.py $(shell pwd)/.build/bench-lakes
	@# No unsafe flags in Package.swift: the hot stored properties are @exclusivity(unchecked).
	@# The ratio of that build to one with every exclusivity check off (the former
	@# -enforce-exclusivity=unchecked unsafe flag, given here on the command line): about 1.
	swift build -c release -Xswiftc -static-stdlib -Xswiftc -enforce-exclusivity=unchecked \
	  --scratch-path $(shell pwd)/.build-bench-unchecked --product pmm-bench
	$(PYTHON) python/bench/compare_builds.py exclusivity_annotated_vs_unchecked $(BIN)/pmm-bench \
	  $(shell pwd)/.build-bench-unchecked/release/pmm-bench 7

clean:
	rm -rf .build .build-* dist
