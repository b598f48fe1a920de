#!/usr/bin/env bash
# The README's main command: install dependencies, build, and run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec build/chaoslab run scenarios/leader_crash.lua "$@"
