#!/bin/sh
# deploy/shard.sh — one shard of a seed sweep, for array jobs (Kubernetes
# Indexed Jobs, Slurm job arrays, CI matrices). See docs/ci.md.
#
# The shard index comes from the scheduler: JOB_COMPLETION_INDEX (Kubernetes)
# or SLURM_ARRAY_TASK_ID (Slurm), else CHAOSLAB_SHARD_INDEX. Settings:
#   CHAOSLAB          the binary (default: chaoslab on PATH)
#   CHAOSLAB_SCENARIO the scenario file (required)
#   CHAOSLAB_SEEDS    the whole seed range A..B (required)
#   CHAOSLAB_SHARDS   the number of shards N (default: SLURM_ARRAY_TASK_COUNT)
#   CHAOSLAB_OUT      a directory every shard and the merge step share
#   CHAOSLAB_ARGS     more `chaoslab run` options (e.g. "--acks leader")
# Writes $CHAOSLAB_OUT/shard-I.db, shard-I.xml (JUnit), html-I/ (index.html,
# one row per run, and a page per run not as expected; a shard holding a
# single run gets that run's page as the file html-I) and shard-I.rc (the
# exit code). An expectation that failed (exit 1) is a result, not a job
# failure: the job succeeds and deploy/merge.sh gates on it, so schedulers
# do not retry deterministic failures. Exit 2 (bad usage, broken scenario,
# database error) fails the job.
set -eu
index=${JOB_COMPLETION_INDEX:-${SLURM_ARRAY_TASK_ID:-${CHAOSLAB_SHARD_INDEX:-}}}
shards=${CHAOSLAB_SHARDS:-${SLURM_ARRAY_TASK_COUNT:-}}
: "${CHAOSLAB_SCENARIO:?set CHAOSLAB_SCENARIO to the scenario file}"
: "${CHAOSLAB_SEEDS:?set CHAOSLAB_SEEDS to the seed range A..B}"
: "${CHAOSLAB_OUT:?set CHAOSLAB_OUT to a directory shared with the merge step}"
if [ -z "$index" ] || [ -z "$shards" ]; then
  echo "shard.sh: no shard index (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID) or count (CHAOSLAB_SHARDS)" >&2
  exit 2
fi
mkdir -p "$CHAOSLAB_OUT"
rc=0
# shellcheck disable=SC2086  # CHAOSLAB_ARGS is a list of options
"${CHAOSLAB:-chaoslab}" run "$CHAOSLAB_SCENARIO" --seeds "$CHAOSLAB_SEEDS" \
  --shard "$index/$shards" --db "$CHAOSLAB_OUT/shard-$index.db" \
  --junit "$CHAOSLAB_OUT/shard-$index.xml" --html "$CHAOSLAB_OUT/html-$index" \
  ${CHAOSLAB_ARGS:-} || rc=$?
echo "$rc" > "$CHAOSLAB_OUT/shard-$index.rc"
[ "$rc" -le 1 ] || exit "$rc"
exit 0
