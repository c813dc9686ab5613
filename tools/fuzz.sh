#!/usr/bin/env bash
# Runs the libFuzzer targets built by `make fuzz-build` (build/fuzz/fuzz-NAME), each for SECONDS,
# from its seeds and regression inputs in tests/data/fuzz/NAME/ (read only) plus the growing
# corpus build/fuzz/corpus/NAME/. Every crash, leak, timeout (20 s) or out-of-memory input is
# copied into tests/data/fuzz/NAME/ (a regression input the unit suite fuzz_regress replays: fix it,
# commit it) and makes the run fail. One line per target: seconds, executions, corpus, findings.
#   tools/fuzz.sh SECONDS NAME...
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: tools/fuzz.sh SECONDS NAME...}
shift
failed=0
# the store targets commit an LMDB transaction per input: keep their stores in memory
[ -z "${TMPDIR:-}" ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm
for t in "$@"; do
  bin=build/fuzz/fuzz-$t corpus=build/fuzz/corpus/$t art=build/fuzz/artifacts/$t/ seeds=tests/data/fuzz/$t
  mkdir -p "$corpus" "$art" "$seeds"
  start=$(date +%s)
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=3072 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$art" "$corpus" "$seeds" >build/fuzz/$t.log 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' build/fuzz/$t.log | tail -1)
  found=() slow=0
  for f in "$art"*; do
    [ -f "$f" ] || continue
    case "$(basename "$f")" in
      slow-unit-*) slow=$((slow + 1)) ;; # over 10 s on a loaded machine: noted, not a failure
      *) cp "$f" "$seeds/" && found+=("$seeds/$(basename "$f")") ;;
    esac
    rm -f "$f"
  done
  printf 'fuzz %-10s %4ds  %10s execs  corpus %5d  slow %d  exit %d  findings: %s\n' "$t" "$took" "${execs:-?}" \
    "$(ls "$corpus" | wc -l)" "$slow" "$rc" "${found[*]:-none}"
  if [ $rc -ne 0 ] || [ ${#found[@]} -gt 0 ]; then failed=1; echo "  see build/fuzz/$t.log" >&2; fi
done
exit $failed
