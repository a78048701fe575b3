#!/usr/bin/env bash
# Bounded fuzzing: every target (or the ones named) for SECONDS each, one
# after another, on the corpora in fuzz/corpus/ (seeded by fuzz/seed.sh when
# missing). Prints per target "ran N s, E execs, no crash" or the crash file;
# exits non-zero when any target crashed (or timed out / ran out of memory).
#
#   fuzz/run.sh SECONDS [TARGET...]
#
# Works on stable rustc: the targets are built without a sanitizer
# (--sanitizer none; cargo-fuzz's default AddressSanitizer needs -Zsanitizer,
# i.e. nightly or RUSTC_BOOTSTRAP=1), in release mode with debug assertions
# (cargo-fuzz's default) so integer overflow panics too.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
secs="${1:?usage: fuzz/run.sh SECONDS [TARGET...]}"
shift
FLAGS=(--sanitizer none)

if [ "$#" -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
[ -d corpus/inbound_parse ] || ./seed.sh
# One target named: build only it; otherwise all of them.
one=()
[ "${#targets[@]}" -eq 1 ] && one=("${targets[0]}")
mkdir -p artifacts
cargo fuzz build "${FLAGS[@]}" "${one[@]}" >artifacts/build.log 2>&1 \
  || { tail -30 artifacts/build.log >&2; echo "fuzz: build failed (fuzz/artifacts/build.log)" >&2; exit 2; }

# Run the binaries just built (cargo fuzz run would rebuild each time, and
# the tree may change under a long run).
bin="target/$(rustc -vV | sed -n 's/^host: //p')/release"
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="artifacts/$t/last-run.log"
  extra=()
  [ -f "dict/$t.dict" ] && extra+=("-dict=dict/$t.dict")
  # Raw messages are larger than libFuzzer's 4 KiB default.
  [ "$t" = inbound_parse ] && extra+=("-max_len=65536")
  start=$(date +%s)
  "$bin/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$secs" -timeout=30 \
    -rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}" "corpus/$t" >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  if [ "$rc" -eq 0 ]; then
    echo "$t: ran $took s, ${execs:-?} execs, no crash (coverage ${cov:-?}, corpus $(ls "corpus/$t" | wc -l))"
  else
    status=1
    found=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    echo "$t: CRASH after $took s, ${execs:-?} execs: fuzz/${found:-?} (log: fuzz/$log)"
    grep -m1 -E "panicked at|ERROR: libFuzzer" "$log" | sed 's/^/  /'
    [ -n "$found" ] && echo "  reproduce: fuzz/$bin/$t fuzz/$found"
  fi
done
exit "$status"
