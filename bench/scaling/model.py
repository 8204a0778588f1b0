#!/usr/bin/env python3
"""Cost model of `uqmerge run` (Algorithm 1) in N candidates, samples per dataset, J, model size
and ranks. docs/scaling.md derives it; this file is the one place its formulas live.

  model.py check MEASURED.json     calibrate the constants on the 1-rank calibration runs that
                                   bench/scaling/run.sh made here, predict its Algorithm 1 runs
                                   at 1 and 2 ranks, print predicted beside measured
  model.py project [MEASURED.json] [--eff 0.5] [--model 7b|13b] [--nodes 1,4,16] ...
                                   LLaVA-1.5 on nodes of 8 A100-80GB (every assumption printed;
                                   the host-side image cost and the dropout-mask cost per element
                                   come from MEASURED.json when given, else the figures in
                                   docs/scaling.md)

Critical path of one run on R ranks (stages run one after another, as the code does):

  T(R) = launch + prepare + N*load + n_R*t_img + (2N-1)*n_R*t_item
         + sum_{t=2..N} step(t, R) + final + teardown
  n_R    = sum_d ceil(S_d*J / R)              (sample, j) items of the busiest rank; one fp64
                                              allreduce per dataset (negligible) closes each
  t_item = F_item/rate + L*H*T^2*(attn_bytes/HBM + mask_s) + item_overhead
  t_img  = img_host + F_img/rate_vis          first model only (the vision cache serves the rest)
  load   = load_fixed + max(B/fs_node, nodes*B/fs_agg) + B/h2d
  step(t, R), current form "rank 0 writes, all reload":
         = t*B_merged/merge_host + B/write + write_fixed + reload
  step(t, R), sharded form (each rank merges 1/R of the bytes, allgather of the full model):
         = k_t*B_merged/(R*merge_dev) + B*(R-1)/R / allgather_busbw + step_fixed
           k_t = 2 at t = 2 then 1 (linear's running sum), or t (methods that re-merge all)
"""
import argparse
import json
import math
from dataclasses import dataclass, field, replace


@dataclass
class Shape:
    """A LLaVA-1.5 model: LLaMA decoder + CLIP tower (run up to hidden state -2) + 2-layer projector."""
    name: str
    L: int            # decoder layers
    d: int            # hidden size
    f: int            # MLP intermediate size
    H: int            # attention heads
    kv: int           # key/value heads
    vocab: int
    Lv: int           # CLIP layers that run (vision_feature_layer -2: all but the last)
    dv: int
    fv: int
    P: int            # image tokens (patches)
    patch: int
    T: int            # prompt tokens with the image expanded (what each forward sees)
    dtype_bytes: int
    bytes_total: float = 0.0   # checkpoint tensor bytes
    bytes_vision: float = 0.0  # the frozen tower (copied, not merged)

    def __post_init__(self):
        if not self.bytes_total:
            self.bytes_total = self.params() * self.dtype_bytes
            self.bytes_vision = self.params_vision() * self.dtype_bytes

    @property
    def dh(self):
        return self.d // self.H

    def layer_params(self):
        q, kvp = self.d * self.H * self.dh, 2 * self.d * self.kv * self.dh
        return q + kvp + self.H * self.dh * self.d + 3 * self.d * self.f

    def params_vision(self):
        per = 4 * self.dv * self.dv + 2 * self.dv * self.fv
        return (self.Lv + 1) * per + 3 * self.patch ** 2 * self.dv + (self.P + 1) * self.dv

    def params_projector(self):
        return self.dv * self.d + self.d * self.d

    def params(self):
        return self.L * self.layer_params() + 2 * self.vocab * self.d + self.params_vision() + self.params_projector()

    @property
    def bytes_merged(self):
        return self.bytes_total - self.bytes_vision

    def flops_item(self):
        """Multiply-adds x 2 of one (sample, j) forward as uqmerge runs it: L-1 full layers with
        explicit attention (the full T x T square: dropout needs it), the last layer's keys and
        values for all tokens but query, output, MLP for the last position only, the projector
        on the image features (it is merged, so it runs per model), the option rows of the head."""
        T, dh = self.T, self.dh
        full = 2 * T * self.layer_params() + 2 * 2 * self.H * T * T * dh
        kvp = 2 * self.d * self.kv * dh
        last = 2 * T * kvp + 2 * (self.layer_params() - kvp) + 2 * 2 * self.H * T * dh
        return (self.L - 1) * full + last + 2 * self.P * self.params_projector() + 2 * self.d * 8

    def flops_image(self):
        """One vision-tower pass (CLS + P tokens) up to hidden state -2."""
        Tv = self.P + 1
        per = 2 * Tv * (4 * self.dv * self.dv + 2 * self.dv * self.fv) + 2 * 2 * Tv * Tv * self.dv
        return self.Lv * per + 2 * self.P * 3 * self.patch ** 2 * self.dv

    def mask_elems(self):
        """Dropout-mask elements drawn per item: [H, T, T] per layer (decisions.md)."""
        return self.L * self.H * self.T * self.T


def llava_7b(T=676):
    # LLaVA-1.5-7B: Vicuna-7B (LLaMA 32 x 4096, MLP 11008, 32 heads, vocab 32064 in llava-hf),
    # CLIP ViT-L/14 at 336 px (24 layers, 23 run; 576 patches), fp16/bf16 checkpoints.
    return Shape("LLaVA-1.5-7B", 32, 4096, 11008, 32, 32, 32064, 23, 1024, 4096, 576, 14, T, 2)


def llava_13b(T=676):
    return Shape("LLaVA-1.5-13B", 40, 5120, 13824, 40, 40, 32064, 23, 1024, 4096, 576, 14, T, 2)


@dataclass
class Work:
    N: int
    S: list            # samples per dataset
    J: int
    batch: int = 4
    chosen: int = 0    # step re-merged into merged/ at the end (0 = N, the worst case)
    tsv_bytes: float = 0.0

    def items(self, R):
        return sum(math.ceil(s * self.J / R) for s in self.S)


INF = float("inf")


@dataclass
class Machine:
    name: str
    ranks_per_node: int
    rate: float               # achieved FLOP/s of the language-model forward, per rank
    rate_vis: float           # achieved FLOP/s of the vision tower
    hbm: float = INF          # bytes/s; with attn_bytes: the explicit attention's memory traffic
    attn_bytes: float = 0.0   # bytes moved per attention-probability element (scores, softmax, mask, product)
    mask_s: float = 0.0       # seconds per dropout-mask element drawn on the host (0: drawn on the device)
    item_overhead: float = 0.0  # host seconds per item (prompt, tokenizer, kernel launches)
    img_host: float = 0.0     # host seconds per image: decode + AugMix + LLaVA preprocessing (serial in the rank)
    load_fixed: float = 0.0   # seconds per model load besides moving bytes
    fs_node: float = INF      # bytes/s one node reads from the shared filesystem
    fs_agg: float = INF       # bytes/s the filesystem serves to all nodes together
    h2d: float = INF          # bytes/s host -> device per rank while all ranks of a node copy
    merge_host: float = INF   # input bytes/s of rank 0's merge (current form)
    merge_dev: float = INF    # input bytes/s of one rank's merge of its shard (sharded form)
    write: float = INF        # bytes/s one writer gets (merged checkpoint, fsync)
    write_agg: float = INF    # bytes/s when every node writes its shards at once
    write_fixed: float = 0.0
    step_fixed: float = 0.0   # per merge step besides merging and moving bytes (resume-state save, barrier)
    ag_intra: float = INF     # allgather bus bandwidth inside a node (bytes/s per rank)
    ag_inter: float = INF     # allgather bus bandwidth across nodes (bytes/s per rank)
    ag_shared: bool = False   # CPU: the allgather is memory copies through one memory system
    load_sharded: bool = False  # candidates: each rank reads 1/R of the file, then an allgather (not every node all of it)
    memcpy: float = INF       # bytes/s of memcpy (read + write counted), with ag_shared
    launch: float = 0.0
    parse: float = INF        # dataset bytes/s one rank parses (every rank parses every dataset)
    prepare_fixed: float = 0.0
    teardown: float = 0.0
    notes: dict = field(default_factory=dict)


def predict(shape: Shape, work: Work, m: Machine, nodes: int, form: str, incremental: bool = True):
    """Seconds per stage on the busiest rank (= the run's critical path). form: "current" (rank 0
    merges the t members, writes the checkpoint, every rank reloads it) or "sharded" (each rank
    merges its 1/R of the bytes, allgather); incremental: linear's running sum (step t touches
    only member t; step 2 both) instead of all t members."""
    R = nodes * m.ranks_per_node
    n = work.items(R)
    B, Bm = shape.bytes_total, shape.bytes_merged
    t_item = (shape.flops_item() / m.rate + shape.mask_elems() * (m.attn_bytes / m.hbm + m.mask_s) + m.item_overhead)
    t_img = m.img_host + shape.flops_image() / m.rate_vis
    fs_read = max(B / m.fs_node, nodes * B / m.fs_agg)

    def allgather():
        if R == 1:
            return 0.0
        if m.ag_shared:  # CPU: every rank's copy goes through the same memory
            return 2 * B * (R - 1) / m.memcpy
        return B * (R - 1) / R / (m.ag_intra if nodes == 1 else m.ag_inter)

    load = m.load_fixed + fs_read + B / m.h2d
    if m.load_sharded:
        load = m.load_fixed + max(B / nodes / m.fs_node, B / m.fs_agg) + B / R / m.h2d + allgather()
    # the node that wrote the step's checkpoint reads it from its page cache; the others from the FS
    reload = m.load_fixed + (0.0 if nodes == 1 else max(B / m.fs_node, (nodes - 1) * B / m.fs_agg)) + B / m.h2d

    def touched(t):
        return (2 if t == 2 else 1) if incremental else t

    steps = 0.0
    for t in range(2, work.N + 1):
        if form == "current":
            steps += t * Bm / m.merge_host + B / m.write + m.write_fixed + reload + m.step_fixed
        else:
            steps += touched(t) * Bm / (R * m.merge_dev) + allgather() + m.step_fixed
    chosen = work.chosen or work.N
    if form == "current":  # the chosen step is merged again into merged/
        final = chosen * Bm / m.merge_host + B / m.write + m.write_fixed
    else:  # the last step's weights are in memory; another step is merged again; every node writes its shards
        final = (0.0 if chosen == work.N else chosen * Bm / (R * m.merge_dev) + allgather()) \
            + B / min(m.write * nodes, m.write_agg) + m.write_fixed
    return {
        "launch": m.launch,
        "prepare": m.prepare_fixed + work.tsv_bytes / m.parse + load,  # the first model's load is in it
        "loads": (work.N - 1) * load,
        "images": n * t_img,
        "forwards": (2 * work.N - 1) * n * t_item,
        "steps": steps,
        "final": final,
        "teardown": m.teardown,
        "_items_per_rank": n,
        "_t_item": t_item,
        "_t_img": t_img,
        "_load": load,
        "_R": R,
    }


def total(p):
    return sum(v for k, v in p.items() if not k.startswith("_"))


# ---------------------------------------------------------------------------------------------
# The machine here, calibrated on bench/scaling/run.sh's 1-rank runs (never on the runs it predicts)

def bench_shape(meas):
    tc, vc = meas["shape"]["text_config"], meas["shape"]["vision_config"]
    P = (vc["image_size"] // vc["patch_size"]) ** 2
    # prompt: 101 ids incl. the one image slot (uqmerge answer --json on this case), the slot
    # expanded to P rows, ~10 tokens of the prepended perturbation sentence (this tokenizer)
    T = 101 - 1 + P + 10
    return Shape("bench (LLaMA 512x4, CLIP 256x4 @112px)", tc["num_hidden_layers"], tc["hidden_size"], tc["intermediate_size"],
                 tc["num_attention_heads"], tc["num_key_value_heads"], tc["vocab_size"], vc["num_hidden_layers"] - 1,
                 vc["hidden_size"], vc["intermediate_size"], P, vc["patch_size"], T, meas["shape"]["dtype_bytes"],
                 meas["shape"]["bytes_total"], meas["shape"]["bytes_vision"])


def calibrate(meas):
    """Constants of this machine (per rank, 1 thread) from the 1-rank calibration runs."""
    shape = bench_shape(meas)
    run, bare = meas["calib_run"], meas["calib_bare"]
    n = run["models"][1]["evaluations"]
    t_item = (run["models"][1]["eval"] + run["steps"][0]["eval"]) / (2 * n)  # 2nd candidate and the merge
    t_item_bare = bare["models"][1]["eval"] / n
    t_img = (run["models"][0]["eval"] - t_item * n) / run["models"][0]["vision_passes"]
    t_img_bare = (bare["models"][0]["eval"] - bare["models"][1]["eval"]) / bare["models"][0]["vision_passes"]
    rate = shape.flops_item() / t_item_bare  # the SDPA path: no dropout
    t_vis = shape.flops_image() / rate       # vision tower assumed at the language model's rate
    load = run["models"][1]["load"]
    Bm, B = shape.bytes_merged, shape.bytes_total
    step = run["steps"][0]
    if step["merge_seconds"] is not None:  # sharded engine: merge_seconds is the merge of 2 members on 1 rank
        form, merge_s, step_fixed = "sharded", step["merge_seconds"], step["merge_io"] - step["merge_seconds"]
    else:  # rank 0 merges, writes, all reload: the gap is all of it; charged to the merge
        form, merge_s, step_fixed = "current", step["merge_io"], 0.0
    merge_bps = 2 * Bm / merge_s
    # the resumed run with --save-all-steps merged step 2 again and wrote it before the same final stage
    write_s = run["resume_final"] - run["final"] - merge_s
    parse_s = run["prepare"] - load
    mc = Machine(
        name="this machine (1 core per rank, fp32)", ranks_per_node=1, rate=rate, rate_vis=rate,
        mask_s=(t_item - t_item_bare) / shape.mask_elems(), img_host=t_img - t_vis, load_fixed=load,
        merge_host=merge_bps, merge_dev=merge_bps, write=B / write_s, step_fixed=step_fixed,
        ag_shared=True, memcpy=meas["memcpy_gbs"] * 1e9, launch=run["launch"],
        parse=meas["workload"]["tsv_bytes"] / parse_s, teardown=run["teardown"])
    mc.notes = {"form": form, "t_item_s": t_item, "t_item_no_dropout_s": t_item_bare, "t_img_s": t_img,
                "t_img_no_augmix_s": t_img_bare, "augmix_s_per_image": t_img - t_img_bare,
                "vision_tower_s_per_image": t_vis, "decode_preprocess_s_per_image": t_img_bare - t_vis,
                "rate_gflops": rate / 1e9, "mask_ns_per_elem": mc.mask_s * 1e9, "merge_gbs": merge_bps / 1e9,
                "step_fixed_s": step_fixed, "write_s": write_s,
                "load_s": load, "parse_mbs": mc.parse / 1e6, "launch_s": run["launch"], "T": shape.T,
                "gflop_item": shape.flops_item() / 1e9, "gflop_image": shape.flops_image() / 1e9,
                "mask_elems_item": shape.mask_elems()}
    return shape, mc


def measured_stages(r):
    ev = r["models"]
    return {
        "launch": r["launch"],
        "prepare": r["prepare"],
        "loads": sum(x["load"] for x in ev[1:]),
        "images+forwards": sum(x["eval"] for x in ev) + sum(s["eval"] for s in r["steps"]),
        "steps": sum(s["merge_io"] for s in r["steps"]),
        "final": r["final"],
        "teardown": r["teardown"],
    }


def cmd_check(a):
    meas = json.load(open(a.measured))
    shape, mc = calibrate(meas)
    nt = mc.notes
    print(f"calibrated constants (1-rank calibration runs; workload {shape.name}, T = {shape.T} tokens)")
    print()
    print("| constant | value | from |")
    print("|---|---|---|")
    rows = [
        ("language-model forward per item, dropout 0.1", f"{nt['t_item_s'] * 1e3:.2f} ms", "calib_run: 2nd candidate's and the merge's seconds / items"),
        ("... without dropout (SDPA)", f"{nt['t_item_no_dropout_s'] * 1e3:.2f} ms", "calib_bare: 2nd candidate's seconds / items"),
        ("achieved FLOP rate (SDPA path)", f"{nt['rate_gflops']:.1f} GFLOP/s ({nt['gflop_item']:.2f} GFLOP per item)", "FLOPs / the line above"),
        ("dropout (mask drawn on the CPU + explicit attention)", f"{nt['mask_ns_per_elem']:.2f} ns per mask element ({nt['mask_elems_item'] / 1e6:.2f} M per item)", "difference of the two"),
        ("image: decode + AugMix + preprocess + vision tower", f"{nt['t_img_s'] * 1e3:.1f} ms", "calib_run: (1st candidate - items x the first line) / vision passes"),
        ("... AugMix alone", f"{nt['augmix_s_per_image'] * 1e3:.1f} ms", "calib_run - calib_bare"),
        ("... vision tower", f"{nt['vision_tower_s_per_image'] * 1e3:.2f} ms ({nt['gflop_image']:.2f} GFLOP)", "FLOPs at the language model's rate"),
        ("... decode + preprocess (host)", f"{nt['decode_preprocess_s_per_image'] * 1e3:.1f} ms", "by difference"),
        ("model load (mmap, zero-copy)", f"{nt['load_s'] * 1e3:.1f} ms", "log gap between the two candidates"),
        (f"merge ({nt['form']} form), 1 rank", f"{nt['merge_gbs']:.2f} GB/s of members' bytes", "2 x merged bytes / results.h5 merge_seconds of step 2"),
        ("per step besides the merge (resume state, barrier, load)", f"{nt['step_fixed_s'] * 1e3:.1f} ms", "log gap - merge_seconds"),
        ("write a merged checkpoint (safetensors, fsync)", f"{nt['write_s'] * 1e3:.0f} ms for {shape.bytes_total / 1e6:.0f} MB", "resumed calib_run with --save-all-steps: final gap - original final gap - merge_seconds"),
        ("prepare (parse datasets, validate)", f"{nt['parse_mbs']:.0f} MB/s of TSV", "calib_run prepare - load"),
        ("launch", f"{nt['launch_s']:.2f} s", "calib_run"),
    ]
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    print()
    work = Work(N=meas["workload"]["candidates"], S=meas["workload"]["datasets"], J=meas["workload"]["J"],
                batch=meas["workload"]["batch"], tsv_bytes=meas["workload"]["tsv_bytes"])
    print(f"Algorithm 1 (4 candidates, {nt['form']} form): predicted from the constants above vs measured, seconds")
    print()
    print("| stage | 1 rank predicted | 1 rank measured | 2 ranks predicted | 2 ranks measured |")
    print("|---|---|---|---|---|")
    preds, meass = {}, {}
    for R in (1, 2):
        run = meas["alg1"][str(R)]
        w = replace(work, chosen=run["chosen_step"])
        mR = replace(mc, ranks_per_node=R)
        p = predict(shape, w, mR, 1, nt["form"])
        p["images+forwards"] = p.pop("images") + p.pop("forwards")
        preds[R], meass[R] = p, measured_stages(run)
        meass[R]["total"] = run["wall"]
        preds[R]["total"] = total(p)
    for k in ("launch", "prepare", "loads", "images+forwards", "steps", "final", "teardown", "total"):
        print(f"| {k} | {preds[1][k]:.2f} | {meass[1][k]:.2f} | {preds[2][k]:.2f} | {meass[2][k]:.2f} |")
    print()
    for R in (1, 2):
        err = (preds[R]["total"] - meass[R]["total"]) / meass[R]["total"]
        print(f"{R} rank(s): predicted {preds[R]['total']:.2f} s, measured {meass[R]['total']:.2f} s ({err:+.1%})")


# ---------------------------------------------------------------------------------------------
# Nodes of 8 A100-80GB SXM (DGX A100-like). Every number is an assumption, printed with the table.

# Host-side constants measured here (docs/scaling.md); MEASURED.json replaces them when given.
DEFAULT_HOST = {"img_host": 0.0587, "mask_ns": 9.42, "parse_mbs": 147.0}


def a100(eff, host, eff_vis=None):
    peak = 312e12  # bf16 dense tensor-core peak of an A100
    return Machine(
        name="8 x A100-80GB SXM per node", ranks_per_node=8,
        rate=eff * peak, rate_vis=(eff_vis or eff) * peak,
        hbm=2.0e12, attn_bytes=24.0,   # fp32 scores written+read, softmax out, bf16 probs, mask, product ~ 6 x 4 B
        mask_s=0.0,                    # the GPU path must draw the dropout mask on the device (see --host-mask)
        item_overhead=1.2e-3,          # prompt + tokenizer + ~32 x 25 kernel launches of ~6 us per batch of 4
        img_host=host["img_host"],     # measured here per image on one core; the rank does it serially
        load_fixed=0.5,
        fs_node=10e9, fs_agg=100e9,    # parallel filesystem: per-client read, aggregate
        h2d=12e9,                      # PCIe Gen4 x16, two GPUs per switch uplink, pinned staging
        merge_host=4e9,                # rank 0, 16 threads x 0.25 GB/s (bench/merge: fp16 linear, 2 threads 0.5 GB/s)
        merge_dev=1.0e12,              # one GPU merging its shard: HBM-bound, t inputs read + 1 output written
        write=5e9, write_agg=50e9, write_fixed=0.5,   # single-client write with fsync; aggregate
        ag_intra=230e9,                # NCCL allgather bus bandwidth on NVSwitch (NVLink3 300 GB/s per direction)
        ag_inter=20e9,                 # 1 HDR 200 Gb/s NIC per GPU = 25 GB/s, ~80% achieved
        launch=30.0,                   # srun, process start, CUDA context, NCCL communicator
        parse=host["parse_mbs"] * 1e6, prepare_fixed=1.0, teardown=2.0)


def cmd_project(a):
    host = dict(DEFAULT_HOST)
    src = "docs/scaling.md defaults"
    if a.measured:
        _, mc = calibrate(json.load(open(a.measured)))
        host = {"img_host": mc.img_host, "mask_ns": mc.mask_s * 1e9, "parse_mbs": mc.parse / 1e6}
        src = a.measured
    shape = (llava_13b if a.model == "13b" else llava_7b)(a.tokens)
    work = Work(N=a.candidates, S=[a.samples] * a.datasets, J=a.J, batch=4, chosen=a.chosen, tsv_bytes=a.tsv_mb * 1e6 * a.datasets)
    m = a100(a.eff, host)
    if a.host_mask:
        m.mask_s = host["mask_ns"] * 1e-9
    print(f"Projection: {shape.name} ({shape.params() / 1e9:.2f} B parameters, {shape.bytes_total / 1e9:.1f} GB, "
          f"{shape.bytes_merged / 1e9:.1f} GB merged), N = {work.N}, {a.datasets} datasets x {a.samples} samples, J = {work.J}, "
          f"T = {shape.T} tokens, chosen step {work.chosen or work.N}")
    print(f"  per item {shape.flops_item() / 1e12:.2f} TFLOP, per image {shape.flops_image() / 1e9:.0f} GFLOP, "
          f"{shape.mask_elems() / 1e6:.0f} M dropout-mask elements; {(2 * work.N - 1) * sum(work.S) * work.J} item forwards in all")
    print(f"  A100: {m.rate / 1e12:.0f} TFLOP/s achieved ({a.eff:.0%} of 312 bf16 peak), HBM {m.hbm / 1e12:.1f} TB/s, "
          f"NVSwitch allgather {m.ag_intra / 1e9:.0f} GB/s, IB allgather {m.ag_inter / 1e9:.0f} GB/s per GPU, "
          f"PCIe {m.h2d / 1e9:.0f} GB/s, FS read {m.fs_node / 1e9:.0f} GB/s per node / {m.fs_agg / 1e9:.0f} GB/s total, "
          f"FS write {m.write / 1e9:.0f} GB/s, rank-0 host merge {m.merge_host / 1e9:.0f} GB/s, launch {m.launch:.0f} s")
    print(f"  host per image {m.img_host * 1e3:.1f} ms, dataset parse {host['parse_mbs']:.0f} MB/s ({src}); "
          f"dropout mask {'on the host at %.2f ns/element' % host['mask_ns'] if a.host_mask else 'on the device'}")
    print()
    nodes_list = [int(x) for x in a.nodes.split(",")]
    for form in ("current", "sharded"):
        label = "current form: rank 0 merges and writes, all ranks reload" if form == "current" else \
            "sharded form: each rank merges 1/R, allgather"
        print(f"{label} (minutes per stage)")
        print()
        print("| nodes | GPUs | items/rank/model | launch+prepare | loads | images | forwards | merge steps | final | total min | speed-up vs 1 node | efficiency |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        base = None
        for nd in nodes_list:
            p = predict(shape, work, m, nd, form)
            tot = total(p)
            base = base or tot * nodes_list[0]
            sp = base / tot
            print(f"| {nd} | {p['_R']} | {p['_items_per_rank']} | {(p['launch'] + p['prepare']) / 60:.2f} | {p['loads'] / 60:.2f} | "
                  f"{p['images'] / 60:.2f} | {p['forwards'] / 60:.2f} | {p['steps'] / 60:.2f} | {(p['final'] + p['teardown']) / 60:.2f} | "
                  f"{tot / 60:.1f} | {sp:.1f}x | {sp / nd:.0%} |")
        print()
    # where it stops scaling
    sweep = [2 ** k for k in range(0, 11)]
    print("where it stops scaling: total minutes by node count; 'fixed' = the share of the run that does not "
          "shrink with R (launch, prepare, loads, merge steps, final write)")
    print()
    print("| nodes | " + " | ".join(str(nd) for nd in sweep[:9]) + " |")
    print("|---|" + "---|" * 9)
    for form in ("current", "sharded"):
        ps = [predict(shape, work, m, nd, form) for nd in sweep]
        ts = [total(p) for p in ps]
        print(f"| {form}: minutes | " + " | ".join(f"{t / 60:.1f}" for t in ts[:9]) + " |")
        print(f"| {form}: speed-up | " + " | ".join(f"{ts[0] / t:.1f}x" for t in ts[:9]) + " |")
        fixed = [1 - (p["forwards"] + p["images"]) / total(p) for p in ps]
        print(f"| {form}: fixed | " + " | ".join(f"{x:.0%}" for x in fixed[:9]) + " |")
    print()
    for form in ("current", "sharded"):
        ts = {nd: total(predict(shape, work, m, nd, form)) for nd in sweep}
        half = next((nd for nd in sweep if ts[1] / ts[nd] / nd < 0.5), None)
        fastest = min(sweep, key=lambda nd: ts[nd])
        p16 = predict(shape, work, m, 16, form)
        big = {k: v for k, v in p16.items() if not k.startswith("_") and k not in ("forwards", "images")}
        top = sorted(big.items(), key=lambda kv: -kv[1])[:3]
        print(f"{form}: efficiency below 50% from {half} nodes; fastest at {fastest} nodes ({ts[fastest] / 60:.1f} min, "
              f"{ts[1] / ts[fastest]:.1f}x); largest fixed stages at 16 nodes: "
              + ", ".join(f"{k} {v:.0f} s" for k, v in top))
    print()
    print("sensitivity (sharded form, total minutes at 1 / 4 / 16 nodes)")
    print()
    print("| variant | 1 node | 4 nodes | 16 nodes |")
    print("|---|---|---|---|")
    variants = [(f"{e:.0%} of bf16 peak", a100(e, host)) for e in (0.35, 0.5, 0.65)]
    hm = a100(a.eff, host)
    hm.mask_s = host["mask_ns"] * 1e-9
    variants.append((f"dropout mask drawn on the host as today ({host['mask_ns']:.1f} ns/element)", hm))
    ov = a100(a.eff, host)
    ov.img_host = 0.0
    variants.append(("host image work overlapped with the GPU (prefetch)", ov))
    ls = a100(a.eff, host)
    ls.load_sharded = True
    variants.append(("candidates read once (1/R per rank) + allgather instead of every node reading each", ls))
    for label, mv in variants:
        print(f"| {label} | " + " | ".join(f"{total(predict(shape, work, mv, nd, 'sharded')) / 60:.1f}" for nd in (1, 4, 16)) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("measured")
    p = sub.add_parser("project")
    p.add_argument("measured", nargs="?")
    p.add_argument("--model", choices=["7b", "13b"], default="7b")
    p.add_argument("--eff", type=float, default=0.5, help="achieved fraction of the 312 TFLOP/s bf16 peak")
    p.add_argument("--candidates", type=int, default=10)
    p.add_argument("--datasets", type=int, default=5)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--J", type=int, default=4)
    p.add_argument("--tokens", type=int, default=676, help="prompt tokens incl. the 576 image tokens")
    p.add_argument("--chosen", type=int, default=0, help="step written to merged/ (0 = N)")
    p.add_argument("--tsv-mb", type=float, default=100.0, help="MB per dataset file (base64 images)")
    p.add_argument("--nodes", default="1,4,16")
    p.add_argument("--host-mask", action="store_true", help="dropout masks drawn on the host CPU, as today")
    a = ap.parse_args()
    {"check": cmd_check, "project": cmd_project}[a.cmd](a)


if __name__ == "__main__":
    main()
