#!/usr/bin/python3
"""Run the scale-out files' own commands locally for 2 shards and check the
merged result equals an unsharded run.

usage: scaleout.py CHAOSLAB_BINARY SOURCE_DIR

Kubernetes: the container command and env of deploy/k8s/sweep-job.yaml
(an Indexed Job) and merge-job.yaml, run with JOB_COMPLETION_INDEX=0,1;
/opt/chaoslab is mapped to the source tree and the binary, the results
directory to a temp dir, and the sweep made small (a test fixture, 6 seeds,
2 shards). Slurm: deploy/slurm/sweep.sbatch with SLURM_ARRAY_TASK_ID=0,1 and
SLURM_ARRAY_TASK_COUNT=2, then merge.sbatch. Also: a failing shard makes the
merge step exit 1, a baseline regression too, a missing shard exit 2."""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

import yaml

BIN, SRC = sys.argv[1], sys.argv[2]
FIXTURE = os.path.join(SRC, "tests/scenarios/engine_actions.lua")
TEACH = os.path.join(SRC, "tests/scenarios/engine_teach.lua")
SEEDS = "1..6"


def fail(msg):
    sys.exit("scaleout: " + msg)


def digest(db):
    con = sqlite3.connect(db)
    rows = con.execute("SELECT seed, verdict, trace_hash FROM runs ORDER BY seed").fetchall()
    con.close()
    return rows


def container(path):
    with open(path) as f:
        job = yaml.safe_load(f)
    c = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in c.get("env", [])}
    return job, c["command"], env


def local(value, out):
    return value.replace("/opt/chaoslab/bin/chaoslab", BIN).replace(
        "/opt/chaoslab", SRC).replace("/results", out)


def run(cmd, env, want):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != want:
        fail(f"{cmd} exited {p.returncode}, want {want}\n{p.stdout}{p.stderr}")
    return p


def base_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CHAOSLAB", "SLURM_", "JOB_COMPLETION"))}
    return env


def kubernetes(tmp, want):
    out = os.path.join(tmp, "k8s")
    job, cmd, env = container(os.path.join(SRC, "deploy/k8s/sweep-job.yaml"))
    if job["spec"]["completionMode"] != "Indexed":
        fail("sweep-job.yaml is not an Indexed Job")
    if str(job["spec"]["completions"]) != env["CHAOSLAB_SHARDS"]:
        fail("sweep-job.yaml: completions != CHAOSLAB_SHARDS")
    env = {k: local(v, out) for k, v in env.items()}
    env.update(CHAOSLAB_SHARDS="2", CHAOSLAB_SEEDS=SEEDS, CHAOSLAB_SCENARIO=FIXTURE)
    cmd = [local(a, out) for a in cmd]
    for i in range(2):
        run(cmd, {**base_env(), **env, "JOB_COMPLETION_INDEX": str(i)}, 0)
    _, mcmd, menv = container(os.path.join(SRC, "deploy/k8s/merge-job.yaml"))
    menv = {k: local(v, out) for k, v in menv.items()}
    menv.update(CHAOSLAB_SHARDS="2")
    run([local(a, out) for a in mcmd], {**base_env(), **menv}, 0)
    got = digest(os.path.join(out, "sweep/merged.db"))
    if got != want:
        fail(f"kubernetes: merged {got} != unsharded {want}")
    for i in range(2):
        if not os.path.exists(os.path.join(out, f"sweep/shard-{i}.xml")):
            fail(f"kubernetes: no JUnit file of shard {i}")
        index = os.path.join(out, f"sweep/html-{i}/index.html")
        if not os.path.exists(index):
            fail(f"kubernetes: no HTML index of shard {i}")
        with open(index) as f:
            if "<html" not in f.read(4096).lower():
                fail(f"kubernetes: {index} is not an HTML page")
    print(f"kubernetes: 2 shards merged = unsharded ({len(got)} runs)")


def slurm(tmp, want, scenario=FIXTURE, args="", merge_want=0, baseline=None):
    out = os.path.join(tmp, "slurm")
    shutil.rmtree(out, ignore_errors=True)
    sweep = os.path.join(SRC, "deploy/slurm/sweep.sbatch")
    with open(sweep) as f:
        if "#SBATCH --array=0-" not in f.read():
            fail("sweep.sbatch has no --array=0-N")
    env = {**base_env(), "CHAOSLAB_HOME": SRC, "CHAOSLAB": BIN, "CHAOSLAB_SEEDS": SEEDS,
           "CHAOSLAB_SCENARIO": scenario, "CHAOSLAB_OUT": out, "CHAOSLAB_ARGS": args,
           "SLURM_ARRAY_TASK_COUNT": "2"}
    for i in range(2):
        run(["/bin/bash", sweep], {**env, "SLURM_ARRAY_TASK_ID": str(i)}, 0)
    menv = {**env, "CHAOSLAB_SHARDS": "2"}
    if baseline:
        menv["CHAOSLAB_BASELINE"] = baseline
    run(["/bin/bash", os.path.join(SRC, "deploy/slurm/merge.sbatch")], menv, merge_want)
    if want is not None:
        got = digest(os.path.join(out, "merged.db"))
        if got != want:
            fail(f"slurm: merged {got} != unsharded {want}")
        print(f"slurm: 2 shards merged = unsharded ({len(got)} runs)")
    return out, menv


def main():
    tmp = tempfile.mkdtemp(prefix="chaoslab_scaleout_")
    try:
        whole = os.path.join(tmp, "whole.db")
        run([BIN, "run", FIXTURE, "--seeds", SEEDS, "--db", whole], base_env(), 0)
        want = digest(whole)
        if len(want) != 6:
            fail(f"unsharded run stored {len(want)} runs")
        kubernetes(tmp, want)
        slurm(tmp, want)
        # a shard that fails an expectation: the shard job succeeds, the gate fails
        slurm(tmp, None, TEACH, "--variant strong --fsync never", merge_want=1)
        print("slurm: failing shards -> merge step exit 1")
        # the gate with a baseline: equal figures pass; a baseline whose
        # confirm p99 was 1 ns ("last week was faster") fails it
        base = os.path.join(tmp, "baseline.db")
        run([BIN, "run", FIXTURE, "--seeds", SEEDS, "--db", base], base_env(), 0)
        slurm(tmp, want, baseline=base)
        print("slurm: same figures as the baseline -> merge step exit 0")
        con = sqlite3.connect(base)
        con.execute("UPDATE metrics SET value = 1 WHERE name = 'publish_confirm_p99'")
        con.commit()
        con.close()
        out, menv = slurm(tmp, want, baseline=base, merge_want=1)
        print("slurm: a regression against the baseline -> merge step exit 1")
        os.remove(os.path.join(out, "shard-1.rc"))
        run(["/bin/bash", os.path.join(SRC, "deploy/slurm/merge.sbatch")], menv, 2)
        print("slurm: a missing shard -> merge step exit 2")
        # no shard index from any scheduler, or one out of range: exit 2
        env = {**base_env(), "CHAOSLAB": BIN, "CHAOSLAB_SCENARIO": FIXTURE,
               "CHAOSLAB_SEEDS": SEEDS, "CHAOSLAB_OUT": out, "CHAOSLAB_SHARDS": "2"}
        p = run(["/bin/sh", os.path.join(SRC, "deploy/shard.sh")], env, 2)
        if "no shard index" not in p.stderr:
            fail("shard.sh without an index: " + p.stderr)
        p = run(["/bin/sh", os.path.join(SRC, "deploy/shard.sh")],
                {**env, "JOB_COMPLETION_INDEX": "2"}, 2)
        if "--shard wants I/N" not in p.stderr:
            fail("shard.sh with index 2 of 2: " + p.stderr)
        print("shard.sh: no index or index out of range -> exit 2")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


main()
