#!/usr/bin/env python3
"""Stage costs of the runs bench/scaling/run.sh made, from what the binary exposes: results.h5
(`/timing` total_seconds = the command from its first line to just before results.h5 is written;
per candidate `/uq/model_NNN` seconds, evaluations, vision_passes; per step `/run/steps/step_TTT`
seconds — each an evaluation only, model load excluded), rank 0's log lines (millisecond time
stamps: "candidate X: uncertainty" / "step t (...)" in `run`, "X: uncertainty ..." in `uq`, each
printed when that evaluation ends), results.h5's modification time, and the wall clock around
each command. Everything else is by difference:

  launch     = (mtime(results.h5) - total_seconds) - wall start   mpirun, process start, MPI init
  prepare    = start of the first evaluation - t0                 headers, tokenizers, datasets, 1st load
  load(m)    = start of evaluation m - end of evaluation m-1       model load (mmap) between two
  step(t)    = start of step t's evaluation - end of the previous  the merge: sharded engine (each
                                                                   rank merges its tensors, allgather;
                                                                   results.h5 merge_seconds) or, in
                                                                   older binaries, rank 0 merges t
                                                                   models, writes, all reload; the
                                                                   resume state's save
  final      = mtime(results.h5) - end of the last evaluation      the chosen step written to merged/
                                                                   (re-merged if not the last), card
  teardown   = wall end - mtime(results.h5)                        barrier, MPI finalize, exit

  resumed    = a run resumed from its state (nothing evaluated) with --save-all-steps: its final
               gap minus the original's final gap minus the step's merge_seconds = the write of
               one merged checkpoint

  measure.py RUNS_DIR --rows N --rev REV --out measured.json   (prints the measured tables)"""
import argparse
import datetime as dt
import json
import re
import statistics
import struct
import sys
from pathlib import Path

import h5py

LINE = re.compile(r"^\[(\d\d):(\d\d):(\d\d)\.(\d{3})\] \[rank (\d+)/(\d+)\] (\w+)\s+(.*)$")


def wall(runs, name):
    s, e = (float(x) for x in (runs / f"{name}.wall").read_text().split())
    return s, e


def log_events(runs, name, start):
    """[(absolute seconds, message)] of rank 0's log lines."""
    base = dt.datetime.fromtimestamp(start)
    out = []
    for line in (runs / f"{name}.err").read_text().splitlines():
        m = LINE.match(line)
        if not m or m.group(5) != "0":
            continue
        h, mi, s, ms = (int(m.group(k)) for k in range(1, 5))
        t = base.replace(hour=h, minute=mi, second=s, microsecond=ms * 1000).timestamp()
        if t < start - 43200:
            t += 86400  # crossed midnight
        out.append((t, m.group(8)))
    return out


def find(events, pattern):
    rx = re.compile(pattern)
    hits = [t for t, msg in events if rx.search(msg)]
    if len(hits) != 1:
        sys.exit(f"measure.py: expected one log line matching {pattern!r}, found {len(hits)}")
    return hits[0]


def timeline(runs, name):
    """Stage costs of one `uq` or `run` command (rank 0's view, the critical path)."""
    start, end = wall(runs, name)
    h5p = runs / f"{name}.h5"
    f = h5py.File(h5p, "r")
    mtime = h5p.stat().st_mtime
    total = float(f["timing"].attrs["total_seconds"])
    t0 = mtime - total
    command = f.attrs["command"].decode() if isinstance(f.attrs["command"], bytes) else f.attrs["command"]
    ev = log_events(runs, name, start)
    models = []
    prev_end = None
    for key in sorted(f["uq"]):
        g = f["uq"][key]
        mname = g.attrs["name"].decode() if isinstance(g.attrs["name"], bytes) else g.attrs["name"]
        pat = rf"^candidate {re.escape(mname)}: uncertainty" if command == "run" else rf"^{re.escape(mname)}: uncertainty"
        e = find(ev, pat)
        sec = float(g.attrs["seconds"])
        models.append({"name": mname, "load": (e - sec - prev_end) if prev_end is not None else None, "eval": sec,
                       "evaluations": int(g.attrs["evaluations"]), "vision_passes": int(g.attrs["vision_passes"])})
        if prev_end is None:
            first_start = e - sec
        prev_end = e
    out = {"command": command, "ranks": int(f.attrs["ranks"]), "wall": end - start, "total_seconds": total,
           "launch": t0 - start, "prepare": first_start - t0, "models": models, "teardown": end - mtime}
    if command == "run":
        steps = []
        for key in sorted(f["run"]["steps"])[1:]:  # step 1 is the first candidate's evaluation, reused
            t = int(key.split("_")[1])
            e = find(ev, rf"^step {t} \(")
            g = f["run"]["steps"][key]
            sec = float(g.attrs["seconds"])
            ms = float(g.attrs["merge_seconds"]) if "merge_seconds" in g.attrs else None  # sharded engine
            steps.append({"t": t, "merge_io": e - sec - prev_end, "merge_seconds": ms, "eval": sec})
            prev_end = e
        out["steps"] = steps
        out["chosen_step"] = int(f["run"].attrs["chosen_step"])
    out["final"] = mtime - prev_end
    return out


def resume_final(runs, name):
    """A resumed run (every evaluation memoised): seconds from its last step's log line to results.h5."""
    start, _ = wall(runs, name)
    h5p = runs / f"{name}.h5"
    ev = log_events(runs, name, start)
    last = max(t for t, msg in ev if re.match(r"^step \d+ \(", msg))
    return h5p.stat().st_mtime - last


def best(runs, name, reps=2):
    """The faster repetition (a shared machine only adds time), with every repetition's wall clock."""
    tl = [timeline(runs, f"{name}_{k}") for k in range(1, reps + 1)]
    k = min(range(reps), key=lambda i: tl[i]["wall"])
    out = dict(tl[k])
    out["rep"] = k + 1
    out["walls"] = [x["wall"] for x in tl]
    return out


def safetensors_bytes(path):
    """(total, vision) tensor bytes of one safetensors file, from its header."""
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(n))
    total = vision = 0
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b = e["data_offsets"][1] - e["data_offsets"][0]
        total += b
        if "vision_tower" in name:
            vision += b
    return total, vision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", type=Path)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--rev", default="unknown")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    runs = a.runs
    case = runs.parent
    cfg = json.loads((case / "cand_0" / "config.json").read_text())
    total_b, vision_b = safetensors_bytes(case / "cand_0" / "model.safetensors")

    def median_wall(prefix, n=3):
        return statistics.median(wall(runs, f"{prefix}_{k}")[1] - wall(runs, f"{prefix}_{k}")[0] for k in range(1, n + 1))

    m = {
        "rev": a.rev,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "workload": {"candidates": 4, "datasets": [a.rows], "J": 4, "batch": 4, "threads_per_rank": 1,
                     "tsv_bytes": (case / "data.tsv").stat().st_size},
        "shape": {"text_config": cfg["text_config"], "vision_config": cfg["vision_config"],
                  "bytes_total": total_b, "bytes_vision": vision_b,
                  "dtype_bytes": 4 if cfg.get("torch_dtype", cfg.get("dtype", "float32")) == "float32" else 2},
        "start_s": median_wall("start"),
        "memcpy_gbs": float((runs / "memcpy.txt").read_text()),
        "calib_run": best(runs, "calib_run"),
        "calib_bare": best(runs, "calib_bare"),
        "alg1": {"1": best(runs, "alg1_r1"), "2": best(runs, "alg1_r2")},
    }
    k = m["calib_run"]["rep"]
    m["calib_run"]["resume_final"] = resume_final(runs, f"calib_run_resume_{k}")
    a.out.write_text(json.dumps(m, indent=1))

    print(f"measured stage costs (rev {a.rev}; {a.rows} samples x J=4, 4 candidates, 1 thread per rank; seconds)")
    print()
    print("| stage | 1 rank | 2 ranks | how it is measured |")
    print("|---|---|---|---|")
    r1, r2 = m["alg1"]["1"], m["alg1"]["2"]

    def row(label, f1, how):
        print(f"| {label} | {f1(r1):.3f} | {f1(r2):.3f} | {how} |")

    row("launch (mpirun, process start, MPI init)", lambda r: r["launch"], "t0 (results.h5 mtime - total_seconds) - wall start")
    row("prepare (validate headers, tokenizers, parse TSV) + load of the 1st model", lambda r: r["prepare"], "1st evaluation start - t0")
    row("1st candidate: vision + AugMix + decode + LM", lambda r: r["models"][0]["eval"], "results.h5 /uq/model_000 seconds")
    row("other candidates: LM only (mean of 3)", lambda r: statistics.mean(x["eval"] for x in r["models"][1:]), "results.h5 seconds")
    row("model load between evaluations (mean of 3)", lambda r: statistics.mean(x["load"] for x in r["models"][1:]), "log gap - seconds")
    for k in range(len(r1["steps"])):
        t = r1["steps"][k]["t"]
        row(f"step {t}: merge (+ gather or write + reload) + state save", lambda r, k=k: r["steps"][k]["merge_io"], "log gap - step seconds")
        row(f"step {t}: evaluation", lambda r, k=k: r["steps"][k]["eval"], "results.h5 /run/steps seconds")
    if r1["steps"][0]["merge_seconds"] is not None:
        row("... of which the merges (sum; results.h5 merge_seconds)", lambda r: sum(s["merge_seconds"] for s in r["steps"]), "results.h5 /run/steps merge_seconds")
    row("final: write the chosen step to merged/, card, results.h5", lambda r: r["final"], "results.h5 mtime - last log line")
    row("teardown (barrier, MPI finalize)", lambda r: r["teardown"], "wall end - results.h5 mtime")
    row("**total (wall clock of mpirun)**", lambda r: r["wall"], "date before/after")
    print()
    print(f"faster of 2 repetitions; the two walls: 1 rank {r1['walls'][0]:.2f} / {r1['walls'][1]:.2f} s, "
          f"2 ranks {r2['walls'][0]:.2f} / {r2['walls'][1]:.2f} s")
    print(f"2 ranks vs 1 rank, whole Algorithm 1: {r1['wall'] / r2['wall']:.2f}x; "
          f"LM-only evaluations: {statistics.mean(x['eval'] for x in r1['models'][1:]) / statistics.mean(x['eval'] for x in r2['models'][1:]):.2f}x")
    print(f"process start-up alone (uqmerge inspect, median of 3): {m['start_s']:.3f} s; "
          f"memory copy {m['memcpy_gbs']:.1f} GB/s")


if __name__ == "__main__":
    main()
