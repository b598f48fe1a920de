#!/usr/bin/env bash
# scripts/lesson_figures.sh — the figures of docs/lessons.md, made by the tool:
# for each scenarios/teach_*.lua, the --html page of its weak side failing,
# screenshotted by headless Chromium into docs/figures/<lesson>-weak.png, and
# the figure line under the lesson's heading in docs/lessons.md.
#
#   scripts/lesson_figures.sh [--chaoslab PATH] [--only teach_X] [--check]
#
#   --chaoslab PATH  the binary (default build/chaoslab; scripts/build.sh)
#   --only teach_X   just that lesson
#   --check          make nothing: exit 1 unless every teach file has its
#                    figure (a PNG of at most FIGURE_BYTES_MAX bytes) and
#                    docs/lessons.md shows it
#
# The weak side's seed is the first of 1..SEEDS_MAX whose weak run shows the
# lesson's violation (`--variant weak` exits 0 exactly then). Runs are
# deterministic, so the pages are the same on every machine; the PNGs are
# as stable as Chromium's rendering. Needs chromium (scripts/setup.sh --test).
# Exit status 0 done, 1 a lesson's weak side never failed or a check failed,
# 2 bad usage or a missing tool.
set -euo pipefail
cd "$(dirname "$0")/.."

SEEDS_MAX=10
FIGURE_BYTES_MAX=153600  # 150 KB: the docs stay light
WIDTH_PX=1120
chaoslab=${CHAOSLAB:-build/chaoslab}
chromium=${CHROMIUM:-chromium}
figures=docs/figures
lessons=docs/lessons.md
only="" check=0
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --chaoslab) [[ $# -ge 2 ]] || usage; chaoslab=$2; shift 2 ;;
    --only) [[ $# -ge 2 ]] || usage; only=$2; shift 2 ;;
    --check) check=1; shift ;;
    -h|--help) usage ;;
    *) echo "lesson_figures: unknown option '$1'" >&2; usage ;;
  esac
done

lessons_list() {
  local f
  for f in scenarios/teach_*.lua; do
    f=${f#scenarios/}; f=${f%.lua}
    [[ -z "$only" || "$only" == "$f" ]] && echo "$f"
  done
}
[[ -n "$(lessons_list)" ]] || { echo "lesson_figures: no lesson '$only'" >&2; exit 2; }

if [[ $check -eq 1 ]]; then
  bad=0
  for l in $(lessons_list); do
    png=$figures/$l-weak.png
    if [[ ! -s $png ]]; then echo "$l: $png missing (run scripts/lesson_figures.sh)"; bad=1; continue; fi
    [[ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" == 89504e470d0a1a0a ]] ||
      { echo "$l: $png is not a PNG"; bad=1; }
    size=$(stat -c %s "$png")
    [[ $size -le $FIGURE_BYTES_MAX ]] || { echo "$l: $png is $size bytes (max $FIGURE_BYTES_MAX)"; bad=1; }
    grep -q "](figures/$l-weak.png)" "$lessons" || { echo "$l: $lessons does not show $png"; bad=1; }
  done
  [[ $bad -eq 0 ]] && echo "lesson figures: ok"
  exit $bad
fi

[[ -x "$chaoslab" ]] || { echo "lesson_figures: $chaoslab not built (scripts/build.sh)" >&2; exit 2; }
command -v "$chromium" >/dev/null || { echo "lesson_figures: no $chromium (scripts/setup.sh --test)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$figures"

for l in $(lessons_list); do
  seed=0
  for s in $(seq 1 $SEEDS_MAX); do
    # relative paths: the page's reproduce command is the reader's
    if "$chaoslab" run "scenarios/$l.lua" --variant weak --seed "$s" --db none --json \
         --html "$tmp/$l.html" >"$tmp/$l.json"; then
      seed=$s; break
    fi
  done
  [[ $seed -gt 0 ]] || { echo "lesson_figures: $l: no weak seed in 1..$SEEDS_MAX shows the lesson" >&2; exit 1; }
  # The crop: the header, what was violated, the timeline with its link
  # rows, and the legend (the SVG's height is in the page).
  height=$(/usr/bin/python3 - "$tmp/$l.html" <<'EOF'
import re, sys
page = open(sys.argv[1], encoding="utf-8").read()
svg = int(re.search(r'<svg class="timeline" width="\d+" height="(\d+)"', page).group(1))
items = page.count('<li class="')
print(240 + 32 * items + svg + 110)
EOF
)
  timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars \
    --window-size="$WIDTH_PX,$height" --screenshot="$tmp/$l.png" "file://$tmp/$l.html" \
    >/dev/null 2>&1
  size=$(stat -c %s "$tmp/$l.png")
  [[ $size -le $FIGURE_BYTES_MAX ]] ||
    { echo "lesson_figures: $l: $size bytes, over $FIGURE_BYTES_MAX" >&2; exit 1; }
  cp "$tmp/$l.png" "$figures/$l-weak.png"
  # The figure line (and its caption) under the lesson's heading, replaced
  # in place when present: only these lines of docs/lessons.md change.
  /usr/bin/python3 - "$lessons" "$l" "$seed" "$tmp/$l.json" <<'EOF'
import json, sys
path, lesson, seed, run = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
o = json.load(open(run, encoding="utf-8"))
broke = [i["name"] for i in o["invariants"] if not i["passed"] and i["expected"] == "violation"]
what = ", ".join(broke) if broke else "its lesson's invariant"
image = (f"![{lesson}, weak side, seed {seed}: {what} violated]"
         f"(figures/{lesson}-weak.png)")
caption = (f"*The weak side failing (`chaoslab run scenarios/{lesson}.lua --variant weak "
           f"--seed {seed} --html F`; regenerate: `scripts/lesson_figures.sh --only {lesson}`): "
           f"broker lanes by role and term, the links each fault cut, and what was violated "
           f"({what}).*")
lines = open(path, encoding="utf-8").read().split("\n")
at = [i for i, x in enumerate(lines) if f"](figures/{lesson}-weak.png)" in x]
if at:
    i = at[0]
    lines[i] = image
    if i + 1 < len(lines) and lines[i + 1].startswith("*The weak side failing"):
        lines[i + 1] = caption
    else:
        lines.insert(i + 1, caption)
else:
    head = [i for i, x in enumerate(lines) if x.startswith(f"## {lesson} ")]
    if not head:
        sys.exit(f"lesson_figures: {path} has no '## {lesson} ' heading")
    lines[head[0] + 1:head[0] + 1] = ["", image, caption]
open(path, "w", encoding="utf-8").write("\n".join(lines))
EOF
  echo "$l: seed $seed, $figures/$l-weak.png ($size bytes)"
done
