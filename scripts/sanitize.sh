#!/usr/bin/env bash
# Build fastconv's extension with AddressSanitizer + UndefinedBehaviorSanitizer in a
# separate directory (the in-place build of the checkout is not touched) and run the
# test suite, or a representative subset, against that build.
#
#   scripts/sanitize.sh                 # committed code (git archive HEAD), default subset
#   scripts/sanitize.sh --worktree      # the working tree as it is, uncommitted files too
#   scripts/sanitize.sh --all           # every test file (oracles need onnxruntime/torch
#                                       # to coexist with the ASan runtime)
#   scripts/sanitize.sh -- tests/test_conv.py -k dilated    # your own pytest arguments
#   scripts/sanitize.sh --reuse ...     # keep the last build if it is of the same commit
#
# Environment: SANITIZE_DIR (default /tmp/fastconv-sanitize) holds the copy, the build
# and the logs; CC (default gcc). The ASan runtime is LD_PRELOADed into CPython (which is
# not built with it), leak checking is off (CPython keeps its objects at exit), Python
# allocates with malloc so ASan sees its buffers too, and huge allocations return NULL
# (NumPy then raises MemoryError) instead of aborting. Any ASan or UBSan report is
# written to $SANITIZE_DIR/logs/ and makes the script fail, as do failing tests.
#
# Left out under the sanitizers: the two tests that set RLIMIT_AS (ASan's shadow memory
# is terabytes of reserved address space) and the RSS test (ASan's quarantine holds
# freed memory on purpose); they run in the normal suite.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${SANITIZE_DIR:-/tmp/fastconv-sanitize}"
CC="${CC:-gcc}"
SOURCE=head
SUBSET=default
REUSE=0
PYTEST_ARGS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --worktree) SOURCE=worktree ;;
        --all) SUBSET=all ;;
        --reuse) REUSE=1 ;;
        --) shift; PYTEST_ARGS=("$@"); SUBSET=custom; break ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

mkdir -p "$WORK"
HEAD_REV="$(git -C "$REPO" rev-parse --short HEAD)"
if [[ $REUSE == 1 && $SOURCE == head && -f "$WORK/src/.built" && \
      "$(cat "$WORK/src/.built")" == "$HEAD_REV" ]]; then
    REV="$HEAD_REV"
    rm -rf "$WORK/logs"; mkdir -p "$WORK/logs"
    echo "== reusing the sanitized build of $REV in $WORK/src"
else
rm -rf "$WORK/src" "$WORK/logs"
mkdir -p "$WORK/src" "$WORK/logs"
if [[ $SOURCE == head ]]; then
    git -C "$REPO" archive HEAD | tar -x -C "$WORK/src"
    REV="$HEAD_REV"
else
    # tracked and untracked (not ignored) files, without build products
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
        | grep -zv -e '^build/' -e '\.so$' -e '^fastconv/_kernels\.c$' \
        | tar --null --ignore-failed-read -T - -cf -) | tar -x -C "$WORK/src"
    REV="$HEAD_REV+worktree"
fi

SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -g"
echo "== building $REV with $SAN_FLAGS in $WORK/src (log: $WORK/logs/build.log)"
# The flags go into CC itself: setuptools adds CFLAGS/LDFLAGS to the extension's compile
# and link lines but not to setup.py's OpenMP probe executable, which then fails to link
# and the build silently drops OpenMP.
(cd "$WORK/src" && CC="$CC $SAN_FLAGS" \
    python setup.py build_ext --inplace > "$WORK/logs/build.log" 2>&1) || {
    tail -30 "$WORK/logs/build.log"; echo "== build failed" >&2; exit 1; }
if [[ $SOURCE == head ]]; then echo "$REV" > "$WORK/src/.built"; fi
fi
SO="$(ls "$WORK"/src/fastconv/_kernels*.so)"
# ldd's output is read whole first: `ldd | grep -q` under pipefail fails whenever grep
# quits early and ldd gets SIGPIPE
LIBS="$(ldd "$SO")"
if ! grep -q libasan <<< "$LIBS"; then
    echo "== $SO is not linked against libasan: the sanitizer flags were not applied" >&2
    exit 1
fi
if ! grep -q libgomp <<< "$LIBS" && [[ "${FASTCONV_NO_OPENMP:-}" != 1 ]]; then
    echo "== $SO has no OpenMP: the threaded paths would not be checked" >&2
    exit 1
fi

LIBASAN="$("$CC" -print-file-name=libasan.so)"
# libstdc++ right behind it: ASan resolves __cxa_throw when it starts, and onnx's C++
# extension throws (a CHECK failure in ASan's interceptor otherwise)
LIBSTDCXX="$("$CC" -print-file-name=libstdc++.so.6)"
export LD_PRELOAD="$LIBASAN:$LIBSTDCXX${LD_PRELOAD:+:$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:log_path=$WORK/logs/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=0:log_path=$WORK/logs/ubsan"
export PYTHONMALLOC=malloc
export PYTHONPATH="$WORK/src"
export PYTHONDONTWRITEBYTECODE=1

DESELECT=(
    --deselect tests/test_errors.py::test_overflowing_sizes_raise_before_allocating
    --deselect tests/test_hardening_arrays.py::test_model_absurd_batch_views_raise_before_allocating
    --deselect tests/test_hardening_memory.py::test_rss_flat_over_1000_runs
)
case $SUBSET in
    all) TARGETS=(tests) ;;
    custom) TARGETS=() ;;
    default)
        # every kernel family, the binding's checks, the graph, the file readers and the
        # hardening tests; not the oracle comparisons (onnxruntime, torch: third-party
        # native code under the ASan runtime) nor the ONNX backend corpus
        TARGETS=()
        for f in test_c_oracle test_conv test_pool test_elementwise_linear test_errors \
                 test_guard_pages test_out_buffers test_prepared test_threads test_graph \
                 test_io test_onnx_import test_models test_locally_connected \
                 test_hardening_arrays test_hardening_files test_hardening_threads \
                 test_hardening_memory test_fuzz_short test_winograd test_gemm_edges; do
            [[ -f "$WORK/src/tests/$f.py" ]] && TARGETS+=("tests/$f.py")
        done ;;
esac

echo "== running pytest under ASan+UBSan ($(date -u +%FT%TZ))"
cd "$WORK/src"
set +e
python -c "import fastconv, sys; print('fastconv from', fastconv.__file__, fastconv.cpu_info())"
python -m pytest -q -p no:cacheprovider "${DESELECT[@]}" "${TARGETS[@]}" "${PYTEST_ARGS[@]}" \
    2>&1 | tee "$WORK/logs/pytest.log" | tail -25
STATUS=${PIPESTATUS[0]}
set -e

# a report is an error; "failed to allocate" warnings are the huge allocations the tests
# make on purpose (allocator_may_return_null turns them into MemoryError)
REPORTS=$(grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|CHECK failed' \
          "$WORK"/logs/asan.* "$WORK"/logs/ubsan.* 2>/dev/null || true)
WARNINGS=$(cat "$WORK"/logs/asan.* "$WORK"/logs/ubsan.* 2>/dev/null | grep -c WARNING || true)
if [[ -n "$REPORTS" ]]; then
    echo "== sanitizer reports:"
    for r in $REPORTS; do echo "--- $r"; head -40 "$r"; done
fi
SUMMARY="$(grep -E '(passed|failed|error)' "$WORK/logs/pytest.log" | tail -1 || true)"
echo "== $(date -u +%FT%TZ) $REV: pytest exit $STATUS; $SUMMARY; sanitizer reports: $(echo "$REPORTS" | grep -c . || true) (allocation warnings: $WARNINGS)"
if [[ $STATUS -ne 0 || -n "$REPORTS" ]]; then
    exit 1
fi
echo "== clean"
