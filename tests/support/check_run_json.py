#!/usr/bin/python3
"""tests/support/check_run_json.py — checks `chaoslab run --json` output.

    check_run_json.py FILE RUNS

FILE holds what `chaoslab run --json` printed. RUNS = 1: one run object and
nothing else (a single run). RUNS > 1: exactly RUNS run lines, then one
summary line whose counts agree with them (a range, docs/reports.md).
Every figure must be a JSON number (or null: not measured) and "violated"
a list of invariant names that agrees with the invariants' "passed".
Exits 0 when the output is well-formed, 1 (with the reason) when not.
"""
import json
import sys

INVARIANTS = ["no_loss", "no_duplicates", "no_phantoms", "ordering", "replica_agreement",
              "availability", "recovery", "max_unavailable", "attempt_success",
              "consumer_availability", "leaderless", "progress", "drained", "latency",
              "duplicate_enqueues"]
VERDICTS = {"pass", "fail", "stalled", "invariant", "error"}
COUNTS = ["seed", "exit_code", "events", "published", "confirmed", "processed", "nacked",
          "failed", "unknown", "unknown_at_end", "probe_published", "faults", "stop_time_ns",
          "events_budget"]


def number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_run(o, where):
    assert o.get("type") == "run", f"{where}: type {o.get('type')!r}"
    assert o["verdict"] in VERDICTS, f"{where}: verdict {o['verdict']!r}"
    for key in ["violated", "not_as_expected"]:
        assert isinstance(o[key], list), f"{where}: {key} is not a list"
        for name in o[key]:
            assert name in INVARIANTS, f"{where}: {key} names {name!r}"
    if o["verdict"] == "error":
        return
    for key in COUNTS:
        assert isinstance(o[key], int) and not isinstance(o[key], bool), f"{where}: {key}"
    for key in ["sim_time_s", "wall_time_s", "wall_budget_s"]:
        assert number(o[key]), f"{where}: {key} is not a number"
    assert len(o["trace_hash"]) == 16 and int(o["trace_hash"], 16) >= 0, f"{where}: trace_hash"
    invs = o["invariants"]
    if o["verdict"] in ("pass", "fail"):
        assert [i["name"] for i in invs] == INVARIANTS, f"{where}: invariant names"
    for inv in invs:
        figs = inv["figures"]
        assert isinstance(figs, dict) and figs, f"{where}: {inv['name']}: figures not an object"
        for k, v in figs.items():
            assert v is None or number(v), f"{where}: {inv['name']}.{k} = {v!r} not a number"
        assert isinstance(inv["summary"], str), f"{where}: {inv['name']}: summary"
    violated = [i["name"] for i in invs if not i["passed"]]
    assert violated == o["violated"], f"{where}: violated {o['violated']} vs {violated}"
    wrong = [i["name"] for i in invs if not i["as_expected"]]
    assert wrong == o["not_as_expected"], f"{where}: not_as_expected"
    for k, v in o["metrics"].items():
        assert v is None or number(v), f"{where}: metrics.{k}"
    for v in o["violations"]:
        assert isinstance(v["time_ns"], int) and isinstance(v["detail"], str), f"{where}: violation"
        assert v["message"] is None or v["message"].startswith("0x"), f"{where}: message id"


def check_summary(o, runs):
    assert o.get("type") == "summary" and o["sweep"] is True, "last line: not a summary"
    assert o["runs"] == len(runs), f"summary: runs {o['runs']} vs {len(runs)} lines"
    assert isinstance(o["seed_first"], int) and isinstance(o["seed_last"], int), "summary: seeds"
    assert isinstance(o["ok"], bool), "summary: ok"
    for side in o["strategies"]:
        mine = [r for r in runs if r["variant"] == side["variant"]]
        assert side["runs"] == len(mine), f"summary: {side['variant']} runs"
        assert side["passed"] == sum(r["exit_code"] == 0 for r in mine), "summary: passed"
        for name in INVARIANTS:
            seen = sum(name in r["violated"] for r in mine)
            assert side["violations"][name] == seen, f"summary: violations.{name}"


def main():
    path, want = sys.argv[1], int(sys.argv[2])
    lines = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    if want == 1:
        assert len(lines) == 1, f"{len(lines)} lines for one run"
        check_run(lines[0], "line 1")
    else:
        assert len(lines) == want + 1, f"{len(lines)} lines for {want} runs"
        for i, o in enumerate(lines[:-1]):
            check_run(o, f"line {i + 1}")
        check_summary(lines[-1], lines[:-1])
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (AssertionError, KeyError, ValueError, TypeError) as e:
        print(f"check_run_json: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
