#!/usr/bin/env bash
# bench/sweep_swarm.sh — the evidence behind "this strategy is safe": sweep
# the library's swarm scenario (random fault mixes, VOPR-style) over many
# seeds and count the verdicts.
#
#   bench/sweep_swarm.sh [--seeds N] [--first A] [--jobs J] [--db FILE]
#                        [--chaoslab PATH] [--scenario FILE]
#                        [STRATEGY OVERRIDES...] [-- MORE chaoslab run ARGS]
#
#   --seeds N      how many seeds (default 10000), from --first (default 1)
#   --jobs J       worker processes (default 2)
#   --db FILE      store every run (default: none, the sweep is only counted)
#   overrides      any `chaoslab run` strategy option, e.g. --fsync never,
#                  --acks leader, --election unclean, --set check_quorum=off
#
# Prints one line:  seeds= pass= fail= stalled= invariant= error= wall_s=
# then "ok" or "NOT ok". The bar depends on the strategy:
#   no override (the scenario's safe strategy): every seed must pass;
#   with overrides (a weak strategy): violations (fail) are expected, but no
#   seed may stall, trip an internal invariant or error.
# Exit status 0 when the bar is met, 1 when not, 2 on bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=10000 first=1 jobs=2 db=none
chaoslab=${CHAOSLAB:-build/chaoslab}
scenario=scenarios/swarm_nemesis.lua
overrides=() extra=()
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seeds) seeds=${2:?}; shift 2 ;;
    --first) first=${2:?}; shift 2 ;;
    --jobs) jobs=${2:?}; shift 2 ;;
    --db) db=${2:?}; shift 2 ;;
    --chaoslab) chaoslab=${2:?}; shift 2 ;;
    --scenario) scenario=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    --) shift; extra=("$@"); break ;;
    --*) [[ $# -ge 2 ]] || usage; overrides+=("$1" "$2"); shift 2 ;;
    *) usage ;;
  esac
done
[[ "$seeds" =~ ^[1-9][0-9]*$ && "$first" =~ ^[0-9]+$ && "$jobs" =~ ^[1-9][0-9]*$ ]] || usage
[[ -x "$chaoslab" ]] || { echo "sweep_swarm: $chaoslab not built (scripts/build.sh)" >&2; exit 2; }

last=$((first + seeds - 1))
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s.%N)
# Exit 1 (some seed not as expected) is a result here, not a failure.
set +e
"$chaoslab" run "$scenario" --seeds "$first..$last" --jobs "$jobs" --db "$db" --json \
  ${overrides[@]+"${overrides[@]}"} ${extra[@]+"${extra[@]}"} >"$out"
rc=$?
set -e
end=$(date +%s.%N)
if [[ $rc -eq 2 ]] && ! grep -q '"sweep":true' "$out"; then
  echo "sweep_swarm: chaoslab run failed (exit 2)" >&2
  exit 2
fi
# --json prints one line per run, {"type":"run","seed":N,"variant":V,"verdict":W,...},
# then one {"type":"summary",...} line (docs/reports.md).
count() { { grep -o "^{\"type\":\"run\",\"seed\":[0-9]*,\"variant\":\"[a-z]*\",\"verdict\":\"$1\"" "$out" || true; } | wc -l; }
pass=$(count pass) fail=$(count fail) stalled=$(count stalled)
invariant=$(count invariant) error=$(count error)
wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
echo "seeds=$seeds pass=$pass fail=$fail stalled=$stalled invariant=$invariant error=$error wall_s=$wall"
# The stalled and tripped seeds, with what reproduces them.
{ grep -o '^{"type":"run","seed":[0-9]*,"variant":"[a-z]*","verdict":"\(stalled\|invariant\|error\)"' "$out" || true; } |
  sed 's/{"type":"run","seed":\([0-9]*\).*"verdict":"\([a-z]*\)"/  \2: chaoslab run '"${scenario//\//\\/}"' --seed \1/' |
  head -n 50 || true
bad=$((stalled + invariant + error))
[[ ${#overrides[@]} -eq 0 ]] && bad=$((bad + fail))
[[ $((pass + fail + stalled + invariant + error)) -eq $seeds ]] || bad=$((bad + 1))
if [[ $bad -eq 0 ]]; then echo ok; else echo "NOT ok"; exit 1; fi
