#!/usr/bin/env bash
# Build each libFuzzer harness in tests/fuzz/ with clang (ASan+UBSan) and run
# it for FUZZ_SECONDS (default 60) on a copy of its seed corpus
# (tests/fuzz/corpus/NAME), with its dictionary if there is one
# (tests/fuzz/dict/NAME.dict).  Prints one line per harness and exits
# non-zero if any found a crash, leak or hang.
set -u
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
out=${FUZZ_DIR:-build-fuzz}
mkdir -p "$out"
printf '#define TRMTOP_VERSION "fuzz"\n' > "$out/config.h"
CC=${FUZZ_CC:-clang}
flags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -D_GNU_SOURCE -std=gnu11 -Iinclude -I"$out")

# harness -> the sources it needs besides itself
declare -A srcs=(
  [fuzz_trm]="src/snapshot/*.c src/render/*.c src/util/*.c"
  [fuzz_tmdump]="src/snapshot/*.c src/util/*.c"
  [fuzz_wire]="src/snapshot/*.c src/util/*.c src/wire/*.c src/session/snapfetch.c"
  [fuzz_reply]="src/snapshot/*.c src/render/*.c src/util/*.c src/wire/*.c src/session/snapfetch.c"
)
passed=0; failed=0
for h in fuzz_trm fuzz_tmdump fuzz_wire fuzz_reply; do
  [ -f "tests/fuzz/$h.c" ] || continue
  files=()
  for pat in ${srcs[$h]}; do for f in $pat; do [ -f "$f" ] && files+=("$f"); done; done
  if ! $CC "${flags[@]}" -Isrc/wire -Isrc/snapshot -Isrc/session "tests/fuzz/$h.c" "${files[@]}" -lm -o "$out/$h" 2> "$out/$h.build.log"; then
    echo "fuzz $h: BUILD FAILED"; sed -n 1,20p "$out/$h.build.log"; failed=$((failed + 1)); continue
  fi
  corpus="$out/$h.corpus"; rm -rf "$corpus"; mkdir -p "$corpus"
  name=${h#fuzz_}
  [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$corpus/"
  dict=(); [ -f "tests/fuzz/dict/$name.dict" ] && dict=(-dict="tests/fuzz/dict/$name.dict")
  if "$out/$h" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 "${dict[@]}" \
       -print_final_stats=1 -artifact_prefix="$out/$h-" "$corpus" > "$out/$h.log" 2>&1; then
    echo "fuzz $h: ok, $(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/$h.log" | awk '{print $2}') runs in ${seconds}s"
    passed=$((passed + 1))
  else
    echo "fuzz $h: FAILED"; grep -E "ERROR|SUMMARY|Test unit written" "$out/$h.log" | head -5
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
