#!/bin/sh
# Regression for issue 9's replication storm: these swarm seeds never
# finished before replication was flow-controlled (each rejected append
# refilled the whole pipeline, so rejections multiplied at one virtual
# instant). Each must now end with a passing verdict; CTest's TIMEOUT turns
# a stall back into a failure.
# usage: storm_seeds.sh CHAOSLAB_BINARY SOURCE_DIR
set -eu
bin=$1; src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for seed in 22 35 49 132 162 174 248; do
  "$bin" run "$src/scenarios/swarm_nemesis.lua" --seed "$seed" --db "$tmp/r.db" >"$tmp/out" 2>&1 || {
    cat "$tmp/out"; echo "storm_seeds: swarm_nemesis seed $seed failed"; exit 1; }
done
for opt in "never" "interval:50"; do
  rc=0
  "$bin" run "$src/scenarios/follower_crash.lua" --seed 1 --fsync "$opt" --db "$tmp/r.db" >"$tmp/out" 2>&1 || rc=$?
  [ "$rc" -le 1 ] || { cat "$tmp/out"; echo "storm_seeds: follower_crash --fsync $opt: exit $rc"; exit 1; }
done
# A 5-broker every() nemesis with fsync=never: 16 of its 20 seeds stalled.
"$bin" run "$src/tests/scenarios/storm_five_every.lua" --jobs 2 --db "$tmp/r.db" >"$tmp/out" 2>&1 || {
  cat "$tmp/out"; echo "storm_seeds: storm_five_every failed"; exit 1; }
echo "storm_seeds: all seeds finished"
