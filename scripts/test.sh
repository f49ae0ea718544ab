#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds CPython 3.14 (regular
# and free-threaded, once: scripts/python314.sh), builds trmtop plainly and
# with AddressSanitizer+UBSan, runs unit, agent and end-to-end tests in
# both, then the fuzzers, and ends with one line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
bash scripts/deps.sh || { echo "dependency installation failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0; failed=0; skipped=0
count() {  # count <testlog.json> : meson results, the e2e entry by its junit xml
  local out
  out=$(/usr/bin/python3 "$root/scripts/count_results.py" "$@") || out="0 1 0"
  set -- $out
  passed=$((passed + $1)); failed=$((failed + $2)); skipped=$((skipped + $3))
}

# CPython 3.14 from ../shared/interpreters/: its absence is a skip (the
# tests say why), a failed build a failure.
py314_out=$(bash scripts/python314.sh); py314_rc=$?
case $py314_rc in
  0) export TRMTOP_PY314=$(echo "$py314_out" | sed -n 's/^PY314=//p')
     export TRMTOP_PY314T=$(echo "$py314_out" | sed -n 's/^PY314T=//p') ;;
  3) export TRMTOP_PY314_SKIP="../shared/interpreters/ is missing: no CPython 3.14 to build" ;;
  *) export TRMTOP_PY314_SKIP="the CPython 3.14 build failed (counted as a failure above)"
     echo "python314: build failed"; failed=$((failed + 1)) ;;
esac

for variant in plain asan; do
  dir="$root/build-ci-$variant"
  opts=()
  [ "$variant" = asan ] && opts=(-Db_sanitize=address,undefined -Db_lundef=false)
  echo "=== $variant build"
  # --reconfigure: the interpreters are found at configure time; a
  # folder that is no build tree (an interrupted setup) is set up anew
  [ -d "$dir" ] && [ ! -f "$dir/build.ninja" ] && rm -rf "$dir"
  setup=(meson setup "$dir" "${opts[@]}"); [ -d "$dir" ] && setup+=(--reconfigure)
  if ! "${setup[@]}" >/dev/null || ! ninja -C "$dir"; then
    echo "build failed ($variant)"; failed=$((failed + 1)); continue
  fi
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  meson test -C "$dir" --print-errorlogs --num-processes 2 --timeout-multiplier 3 || true
  count "$dir/meson-logs/testlog.json" "$dir/e2e-junit.xml"
done

echo "=== fuzzers"
fuzz_out=$(bash scripts/fuzz.sh 2>&1); echo "$fuzz_out"
fp=$(echo "$fuzz_out" | sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
if [ -n "$fp" ]; then
  set -- $fp; passed=$((passed + $1)); failed=$((failed + $2))
else
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
