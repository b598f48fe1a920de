#!/bin/sh
# deploy/merge.sh — after every shard of deploy/shard.sh: merge the shard
# databases into $CHAOSLAB_OUT/merged.db and gate. See docs/ci.md.
#   CHAOSLAB, CHAOSLAB_OUT, CHAOSLAB_SHARDS as for shard.sh
#   CHAOSLAB_BASELINE  optional baseline database: also gate with
#                      `report compare --baseline` (exit 1 on a regression)
# Exit 0 every shard held its expectations (and nothing regressed), 1 a
# shard failed an expectation or a figure regressed, 2 a shard is missing
# or errored, or the merge failed.
set -eu
: "${CHAOSLAB_OUT:?set CHAOSLAB_OUT}"
shards=${CHAOSLAB_SHARDS:-${SLURM_ARRAY_TASK_COUNT:-}}
: "${shards:?set CHAOSLAB_SHARDS}"
bin=${CHAOSLAB:-chaoslab}
worst=0
i=0
set --
while [ "$i" -lt "$shards" ]; do
  if [ ! -f "$CHAOSLAB_OUT/shard-$i.rc" ]; then
    echo "merge.sh: shard $i/$shards did not finish ($CHAOSLAB_OUT/shard-$i.rc missing)" >&2
    exit 2
  fi
  rc=$(cat "$CHAOSLAB_OUT/shard-$i.rc")
  [ "$rc" -le "$worst" ] || worst=$rc
  # an empty shard (more shards than seeds) writes no database
  if [ -f "$CHAOSLAB_OUT/shard-$i.db" ]; then set -- "$@" "$CHAOSLAB_OUT/shard-$i.db"; fi
  i=$((i + 1))
done
if [ "$#" -gt 0 ]; then
  "$bin" report merge "$CHAOSLAB_OUT/merged.db" "$@" || exit 2
fi
if [ -n "${CHAOSLAB_BASELINE:-}" ]; then
  brc=0
  "$bin" report compare --db "$CHAOSLAB_OUT/merged.db" --baseline "$CHAOSLAB_BASELINE" || brc=$?
  [ "$brc" -le "$worst" ] || worst=$brc
fi
exit "$worst"
