#!/usr/bin/env python3
"""GPU check (issue 34): proves the CUDA path in at most 8 minutes, or says which part fails.

    python scripts/gpu_check.py --out DIR              # on a CUDA machine
    python scripts/gpu_check.py --out DIR --dry-run    # every step on the CPU, tiny sizes

Five steps, each in a process of its own with its own timeout (a hung CUDA call cannot
eat the others' time), each asserting what it measures:

  env         (a) a CUDA build of torch, a visible GPU and its name, bf16, cuDNN
  match       (b) one recognizer step and one adversary step of the trainer on the same
                  batch at height 64, CRNN and TPP-PHOCNet, CPU against GPU with TF32 off:
                  loss, gradient norm and parameter updates within 1e-4 (fp32) and 2e-2
                  (bf16 autocast against the fp32 CPU step)
  throughput  (c) none and afdm at full width, fp32 against bf16 + channels_last: steps/s,
                  peak memory, host-device syncs per step (torch.cuda.set_sync_debug_mode:
                  at most 2 per recognizer step and per adversary update beyond those
                  inside torch's CTC loss),
                  loader words/s, and the projected time of every paper-gw cell
  learning    (d) the cpu preset's recipe (which leaves the CTC plateau) on Latin digits:
                  validation CER below 0.5 within 800 steps, no skipped step, for none and afdm
  roundtrip   (e) one tiny cell through papermill on the device, killed mid-run and resumed
                  by the sweep; a run moved CPU -> GPU -> CPU through its checkpoint

Every step writes DIR/step-<name>.json as it ends and the driver DIR/gpu_check.json after
each step (status of all so far), so a cut-off check still leaves what it measured. The
exit code is 0 only when every check passed (a check skipped with a reason, as on the
CPU in --dry-run, passes). AFDM_GPU_CHECK_PERTURB=<step> perturbs that step's device
result (the tests use it to see a failure reported).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("env", "match", "throughput", "learning", "roundtrip")
# seconds per step on the GPU (sum: 8 minutes); --dry-run uses DRY_TIMEOUT for each
TIMEOUTS = {"env": 30, "match": 90, "throughput": 120, "learning": 150, "roundtrip": 90}
DRY_TIMEOUT = 300
PERTURB = "AFDM_GPU_CHECK_PERTURB"
FP32_TOL, BF16_TOL = 1e-4, 2e-2
SGD_LR = 0.1  # the match compares updates of plain SGD: Adam's first update is lr x sign(g),
# which turns a rounding difference in a near-zero gradient into a full step


# --- reporting ----------------------------------------------------------------------------
class Report:
    """The checks of one step: each a name, a value, a limit and whether it passed."""

    def __init__(self, step: str, dry_run: bool) -> None:
        self.step, self.dry_run = step, dry_run
        self.checks: list[dict[str, Any]] = []
        self.data: dict[str, Any] = {}

    def check(self, name: str, ok: bool, value: Any = None, limit: Any = None) -> bool:
        self.checks.append({"name": name, "ok": bool(ok), "value": value, "limit": limit})
        return bool(ok)

    def skip(self, name: str, reason: str) -> None:
        self.checks.append({"name": name, "ok": True, "skipped": reason})

    def close(self, seconds: float, error: str | None = None) -> dict[str, Any]:
        ok = error is None and all(c["ok"] for c in self.checks)
        return {"step": self.step, "ok": ok, "error": error, "seconds": round(seconds, 2),
                "dry_run": self.dry_run, "checks": self.checks, **self.data}


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    tmp.replace(path)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


# --- the trainer's steps (ONE place) --------------------------------------------------------
def trainer_steps(cfg, task, model, afdm, images, widths, texts, lr: float = SGD_LR
                  ) -> dict[str, float | None]:
    """One recognizer step (features warped by the frozen AFDM, p_warp 1) and one
    adversary step on the same batch, by the trainer's own public steps
    (``Trainer.recognizer_step`` / ``Trainer.adversary_step``), each with plain SGD;
    returns the recognizer loss, both gradient norms and the skipped steps."""
    import torch

    from afdm_lib.parts import Parts
    from afdm_lib.train import Trainer

    # writes nothing; p_warp 1: every word of the batch warped in the recognizer step
    trainer = Trainer(cfg.replace(p_warp=1.0), Path("unused-gpu-check-run"), progress=False)
    params = list(model.parameters())
    trainer.parts = Parts(task, model, afdm, torch.optim.SGD(params, lr=lr),
                          torch.optim.SGD(afdm.parameters(), lr=lr), images.device)
    loss = trainer.recognizer_step(images, widths, texts, warped=True)  # a device tensor
    rec_grad = _grad_norm(params)
    trainer.adversary_step(images, widths, texts)
    return {"loss": None if loss is None else float(loss), "rec_grad_norm": rec_grad,
            "adv_grad_norm": _grad_norm(list(afdm.parameters())),
            "skipped": trainer.state.bad_steps}


def _grad_norm(params) -> float:
    import torch

    grads = [p.grad.detach().float().cpu().flatten() for p in params if p.grad is not None]
    return float(torch.cat(grads).norm()) if grads else 0.0


# --- set-up shared by the steps -----------------------------------------------------------------
def _device(dry_run: bool):
    import torch

    from afdm_lib.device import resolve_device

    return torch.device("cpu") if dry_run else resolve_device("cuda")


def _batch(dataset: str, height: int, batch_size: int, words: int = 128):
    from afdm_lib.bench import bench_batch
    from afdm_lib.data import load_dataset

    ds = load_dataset(dataset, None, "train", size=words)
    ds.height, ds.augment = height, False
    return ds, bench_batch(ds, batch_size)


def _build(cfg, ds, device):
    """Task, model and AFDM of ``cfg`` built from the seed on the CPU, then moved."""
    import torch

    from afdm_lib.models import build_model
    from afdm_lib.parts import apply_speed_options, build_afdm
    from afdm_lib.tasks import make_task

    torch.manual_seed(cfg.seed)
    task = make_task(cfg, ds)
    model = build_model(cfg.arch, task.num_outputs, cfg.width, cfg.height, cfg.insert_after,
                        cfg.batch_norm)
    afdm = build_afdm(cfg, model)
    model.to(device)
    afdm.to(device)
    apply_speed_options(cfg, model)
    return task, model, afdm


# --- (a) environment -----------------------------------------------------------------------------
def step_env(rep: Report, dry_run: bool) -> None:
    import torch

    from afdm_lib.device import environment, seed_everything, torch_build

    rep.data["torch_build"] = torch_build()
    if dry_run:
        seed_everything(0)
        env = environment("cpu")
        rep.data["environment"] = env
        rep.check("cpu runs are bit-identical", env["bit_identical"] is True)
        for name in ("CUDA build", "GPU visible", "bf16", "cuDNN"):
            rep.skip(name, "dry run on the CPU")
        return
    rep.check("CUDA build", torch.version.cuda is not None, torch.version.cuda)
    if not rep.check("GPU visible", torch.cuda.is_available(), torch.cuda.device_count()):
        return
    seed_everything(0, "cuda")
    env = environment("cuda", amp=True)
    rep.data["environment"] = env
    rep.check("GPU name", bool(env["device_name"]), env["device_name"])
    rep.check("bf16", env["bf16_supported"], env["bf16_supported"])
    rep.check("cuDNN", torch.backends.cudnn.is_available() and env["cudnn"] is not None,
              env["cudnn"])
    rep.check("TF32 off", not env["tf32_matmul"] and not env["tf32_cudnn"],
              {k: env[k] for k in ("tf32_matmul", "tf32_cudnn")})


# --- (b) CPU against GPU ----------------------------------------------------------------
def step_match(rep: Report, dry_run: bool) -> None:
    import torch

    from afdm_lib.config import RunConfig
    from afdm_lib.device import seed_everything

    device = _device(dry_run)
    width, batch = (0.125, 4) if dry_run else (1.0, 8)
    perturb = os.environ.get(PERTURB) == "match"
    for arch, task_name in (("crnn", "recognition"), ("tpp-phocnet", "spotting")):
        for amp in (False, True):
            if amp and dry_run:
                rep.skip(f"{arch} bf16", "dry run: bf16 autocast is emulated on this CPU")
                continue
            cfg = RunConfig(task=task_name, arch=arch, dataset="digits-latin", width=width,
                            height=64, batch_size=batch, method="afdm", p_warp=1.0,
                            quiet=True, train_size=None)
            ds, (images, widths, texts) = _batch(cfg.dataset, 64, batch)
            runs = {}
            for side, dev, side_cfg in (("cpu", torch.device("cpu"), cfg),
                                        ("device", device, cfg.replace(amp=amp,
                                                                       device=device.type))):
                seed_everything(0, dev)  # TF32 off on CUDA
                task, model, afdm = _build(side_cfg, ds, dev)
                before = [p.detach().cpu().clone() for p in model.parameters()]
                adv_before = [p.detach().cpu().clone() for p in afdm.parameters()]
                out = trainer_steps(side_cfg, task, model, afdm, images.to(dev),
                                    widths.to(dev), texts)
                out["update"] = torch.cat([(p.detach().cpu() - b).flatten() for p, b in
                                           zip(model.parameters(), before)])
                out["adv_update"] = torch.cat([(p.detach().cpu() - b).flatten() for p, b
                                               in zip(afdm.parameters(), adv_before)])
                if side == "device" and perturb:  # the tests' deliberate failure
                    out["loss"] = out["loss"] * 1.05
                runs[side] = out
            ref, got = runs["cpu"], runs["device"]
            tol = BF16_TOL if amp else FP32_TOL
            tag = f"{arch} {'bf16' if amp else 'fp32'}"
            rep.check(f"{tag}: no skipped step", got["skipped"] == 0 and ref["skipped"] == 0,
                      got["skipped"], 0)
            rep.check(f"{tag}: recognizer loss", _rel(got["loss"], ref["loss"]) <= tol,
                      [got["loss"], ref["loss"]], tol)
            rep.check(f"{tag}: recognizer gradient norm",
                      _rel(got["rec_grad_norm"], ref["rec_grad_norm"]) <= tol,
                      [got["rec_grad_norm"], ref["rec_grad_norm"]], tol)
            rep.check(f"{tag}: adversary gradient norm",
                      _rel(got["adv_grad_norm"], ref["adv_grad_norm"]) <= tol,
                      [got["adv_grad_norm"], ref["adv_grad_norm"]], tol)
            for key, name in (("update", "recognizer"), ("adv_update", "adversary")):
                # parameters after the step: their SGD updates, relative to the update size
                diff = float((got[key] - ref[key]).norm() / ref[key].norm().clamp_min(1e-12))
                rep.check(f"{tag}: {name} parameters after the step", diff <= tol, diff, tol)


# --- (c) throughput -----------------------------------------------------------------------------
def _timed(fn, device, repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` (synchronised on CUDA)."""
    import torch

    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


MAX_SYNCS = 2  # host-device syncs per step, beyond those inside the loss function itself


def _syncs(fn) -> list[str]:
    """Host-device synchronisations of one call of ``fn`` (CUDA's sync debug mode warns at
    each, blocking host-to-device copies included): where each was raised, file:line."""
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    return [f"{Path(w.filename).name}:{w.lineno}" for w in caught
            if "synchroniz" in str(w.message)]


def _loss_syncs(b) -> list[str]:
    """The syncs of the task's loss function alone, forward and backward, on the step's
    batch (the model's output held fixed): torch's CUDA CTC loss copies lengths and
    offsets between host and device itself, which no caller can avoid."""
    import torch

    model = b.trainer.parts.model
    with torch.no_grad():
        out = model(b.images, b.widths).float()

    class Fixed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.out = torch.nn.Parameter(out.clone())
            self.output_lengths = getattr(model, "output_lengths", None)  # CTC models

        def forward(self, *args, **kwargs):
            return self.out

    fixed = Fixed()
    return _syncs(lambda: b.task.loss(fixed, b.images, b.widths, b.texts).backward())


def sync_checks(rep: Report, key: str, b) -> dict[str, Any]:
    """Count the real syncs of one recognizer step and one adversary update and check
    that at most MAX_SYNCS of each are not the loss function's own."""
    b.rec(), b.adv()  # warm-up: caches filled, cuDNN's choices made
    rec, adv, loss = _syncs(b.rec), _syncs(b.adv), _loss_syncs(b)
    for name, found in (("recognizer step", rec), ("adversary step", adv)):
        beyond = len(found) - len(loss)
        rep.check(f"{key}: syncs per {name} beyond the loss function's", beyond <= MAX_SYNCS,
                  {"step": found, "loss_function": loss}, MAX_SYNCS)
    return {"syncs_recognizer_step": len(rec), "syncs_adversary_step": len(adv),
            "syncs_loss_function": len(loss), "sync_sites": {"recognizer": rec,
                                                             "adversary": adv,
                                                             "loss_function": loss}}


def step_throughput(rep: Report, dry_run: bool) -> None:
    import torch

    from afdm_lib.bench import Bench, data_rate
    from afdm_lib.bench.kernels import Clock
    from afdm_lib.config import RunConfig
    from afdm_lib.device import seed_everything
    from afdm_lib.plan import DATASET_SIZES, plan
    from afdm_lib.presets import expand

    device = _device(dry_run)
    seed_everything(0, device)
    width, batch, repeats = (0.125, 2, 1) if dry_run else (1.0, 32, 10)
    # GW's padded batch width at height 64 (the paper-gw cells), as the plan assumes
    image_width = int(round(DATASET_SIZES["gw"].aspect * 64))
    rates: dict[str, dict[str, float]] = {}
    for arch, task_name in (("crnn", "recognition"), ("tpp-phocnet", "spotting")):
        ds, (images, widths, texts) = _batch("digits-latin", 64, batch)
        padded = torch.zeros(images.shape[0], 1, 64, max(image_width, images.shape[-1]))
        padded[..., : images.shape[-1]] = images
        for precision in ("fp32", "bf16"):
            if precision == "bf16" and dry_run:
                rep.skip(f"{arch} bf16", "dry run: bf16 autocast is emulated on this CPU")
                continue
            fast = precision == "bf16"
            cfg = RunConfig(task=task_name, arch=arch, dataset="digits-latin", width=width,
                            height=64, batch_size=batch, method="afdm", quiet=True,
                            amp=fast, channels_last=fast, device=device.type)
            b = Bench(cfg, ds, (padded, widths, texts), device)
            b.plain(), b.adv()  # warm-up (cuDNN picks its kernels)
            plain, adv = _timed(b.plain, device, repeats), _timed(b.adv, device, repeats)
            key = f"{arch}_{precision}"
            out = {"plain_steps_per_s": 1 / plain, "adversary_steps_per_s": 1 / adv,
                   "batch_width": int(padded.shape[-1]), "skipped": b.trainer.state.bad_steps}
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
                b.rec(), b.adv()
                out["peak_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
                out.update(sync_checks(rep, key, b))
            rates[key] = out
            rep.check(f"{key}: steps run, none skipped", out["skipped"] == 0
                      and math.isfinite(out["plain_steps_per_s"]), out["plain_steps_per_s"])
    if device.type != "cuda":
        rep.skip("sync count", "no CUDA device: nothing to synchronise with")
    rep.data["rates"] = rates
    words = data_rate("digits-latin", 64 if dry_run else 512, 64, batch, 1,
                      Clock(torch.device("cpu")))
    rep.data["loader_words_per_s"] = words["data_images_per_s_cached"]
    rep.check("loader words/s", words["data_images_per_s_cached"] > 0,
              words["data_images_per_s_cached"])
    # projected time of every paper-gw cell from the measured rates (its own precision)
    cells, total, estimated = [], 0.0, 0.0
    preset = expand("paper-gw")
    for row, cell in zip(plan(preset), preset.cells):
        key = f"{cell.config.arch}_{row['precision']}"
        if key not in rates:  # dry run: no bf16 rate
            key = f"{cell.config.arch}_fp32"
        r = rates[key]
        seconds = (row["steps"] / r["plain_steps_per_s"]
                   + row["adversary_steps"] / r["adversary_steps_per_s"])
        cells.append({"cell_id": row["cell_id"], "steps": row["steps"],
                      "projected_hours": seconds / 3600, "estimated_hours": row["gpu_hours"]})
        total += seconds / 3600
        estimated += row["gpu_hours"]
    rep.data["paper_gw"] = {"cells": cells, "projected_hours": total,
                            "estimated_hours": estimated,
                            "note": "training steps only at the measured rates; validation "
                                    "adds ~5-10% (see the plan's FLOPs)"}
    rep.check("paper-gw projected", math.isfinite(total) and total > 0, round(total, 3))


# --- (d) learning -----------------------------------------------------------------------------
def step_learning(rep: Report, dry_run: bool, work: Path) -> None:
    from afdm_lib.config import RunConfig
    from afdm_lib.train import train

    device = _device(dry_run)
    # the cpu preset's recipe (presets.toml: leaves the plateau by ~400-600 steps on
    # 200-1000 digit words), not batch 32 at 1e-3, which never leaves it
    cfg = RunConfig(dataset="digits-latin", train_size=1000, width=0.25, batch_size=16,
                    lr=3e-3, lr_warmup_steps=100, batch_norm="all", epochs=100000,
                    max_steps=800, eval_every=100, val_size=150, test_size=150,
                    warmup_steps=300, afdm_warmup_steps=30, device=device.type, quiet=True)
    if dry_run:
        cfg = cfg.replace(train_size=32, width=0.125, max_steps=4, eval_every=2, val_size=8,
                          test_size=8, warmup_steps=2, afdm_warmup_steps=1)
    for method in ("none", "afdm"):
        record = train(cfg.replace(method=method), work / f"learning-{method}")
        m = record["metrics"]
        rep.data[method] = {k: m.get(k) for k in ("best_val_cer", "cer", "steps", "afdm_steps",
                                                  "skipped_steps", "train_seconds")}
        rep.data[method]["curve"] = [(c["step"], c.get("val_cer")) for c in record["curve"]]
        rep.check(f"{method}: no skipped step", m["skipped_steps"] == 0, m["skipped_steps"], 0)
        if method == "afdm":
            rep.check("afdm: the adversary trained", m["afdm_steps"] > 0, m["afdm_steps"])
        if dry_run:
            rep.skip(f"{method}: val CER < 0.5", "dry run: 4 steps cannot leave the plateau")
        else:
            rep.check(f"{method}: val CER < 0.5 within 800 steps", m["best_val_cer"] < 0.5,
                      m["best_val_cer"], 0.5)


# --- (e) round trips -----------------------------------------------------------------------------
SWEEP_PRESET = """[roundtrip]
seeds = [0]
methods = ["afdm"]
[roundtrip.config]
device = "{device}"
width = 0.125
batch_size = 8
epochs = 1000
max_steps = {steps}
eval_every = {every}
val_size = 8
test_size = 8
warmup_steps = 2
afdm_warmup_steps = 1
quiet = true
[[roundtrip.grid]]
task = "recognition"
arch = "crnn"
datasets = ["digits-latin"]
train_sizes = [64]
"""


def step_roundtrip(rep: Report, dry_run: bool, work: Path) -> None:
    import torch

    from afdm_lib.checkpoint import load_checkpoint
    from afdm_lib.config import RunConfig
    from afdm_lib.presets import expand
    from afdm_lib.results import read_record
    from afdm_lib.sweep import run_sweep
    from afdm_lib.train import train

    device = _device(dry_run)
    presets = work / "roundtrip-presets.toml"
    # long enough to be killed after its first checkpoint (written at every validation)
    steps, every = (40, 4) if dry_run else (300, 10)
    presets.write_text(SWEEP_PRESET.format(device=device.type, steps=steps, every=every))
    results = work / "roundtrip-results"
    cell = expand("roundtrip", presets).cells[0]
    run_dir = results / "runs" / cell.cell_id
    # the sweep in a process of its own, killed once the cell has a checkpoint
    code = ("import sys; from afdm_lib.sweep import run_sweep; "
            f"run_sweep('roundtrip', results={str(results)!r}, presets_file={str(presets)!r}, "
            "quiet=True, jobs=1)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (run_dir / "checkpoint.pt").exists():
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    killed = read_record(run_dir) is None or read_record(run_dir)["status"] != "ok"
    rep.check("papermill cell killed mid-run", killed and (run_dir / "checkpoint.pt").exists())
    summary = run_sweep("roundtrip", results=results, presets_file=presets, quiet=True, jobs=1)
    record = read_record(run_dir)
    rep.data["sweep"] = {k: summary[k] for k in ("ok", "failed", "skipped")}
    rep.check("the sweep resumed the cell and finished it",
              summary["ok"] == 1 and record is not None and record["status"] == "ok"
              and len(record.get("resumes", [])) >= 1,
              {"status": record and record["status"], "resumes": record and record["resumes"],
               "error": record and record["error"]})
    rep.check("the record names the device", record is not None
              and str(record["environment"]["device"]).startswith(device.type),
              record and record["environment"]["device"])
    # CPU -> device -> CPU: one run continued through its checkpoint on the other side
    cfg = RunConfig(dataset="digits-latin", train_size=32, width=0.125, batch_size=8,
                    epochs=1000, max_steps=4, eval_every=2, val_size=8, test_size=8,
                    warmup_steps=1, afdm_warmup_steps=1, method="afdm", quiet=True)
    out = work / "moved"
    train(cfg, out)
    ckpt = load_checkpoint(out / "checkpoint.pt")
    from afdm_lib.models import build_model

    task_outputs = ckpt["model"][[k for k in ckpt["model"] if k.startswith("head")][-1]]
    model = build_model(cfg.arch, task_outputs.shape[0], cfg.width, cfg.height,
                        cfg.insert_after, cfg.batch_norm)
    model.load_state_dict(ckpt["model"])
    model.eval()
    moved = build_model(cfg.arch, task_outputs.shape[0], cfg.width, cfg.height,
                        cfg.insert_after, cfg.batch_norm).to(device)
    moved.load_state_dict(ckpt["model"])  # a CPU checkpoint loaded on the device
    moved.eval()
    _, (images, widths, _) = _batch("digits-latin", cfg.height, 4, words=32)
    with torch.no_grad():
        a = model(images, widths)
        b = moved(images.to(device), widths.to(device)).cpu()
    if os.environ.get(PERTURB) == "roundtrip":
        b = b + 1.0
    diff = float((a - b).abs().max())
    rep.check("CPU checkpoint on the device: same outputs", diff <= FP32_TOL, diff, FP32_TOL)
    back = {k: v.cpu() for k, v in moved.state_dict().items()}
    rep.check("and back: the same weights", all(torch.equal(back[k], v)
                                                 for k, v in ckpt["model"].items()))
    # the run itself continues on the device, then back on the CPU (raised caps resume)
    on_device = train(cfg.replace(device=device.type, max_steps=8), out)
    back_on_cpu = train(cfg.replace(device="cpu", max_steps=12), out)
    rep.check("the run resumed on the device and back on the CPU",
              on_device["metrics"]["steps"] == 8 and back_on_cpu["metrics"]["steps"] == 12
              and len(back_on_cpu["resumes"]) == 2,
              [on_device["metrics"]["steps"], back_on_cpu["metrics"]["steps"]])


# --- driver --------------------------------------------------------------------------------------
def run_step(name: str, out: Path, dry_run: bool) -> int:
    """One step in this process: runs it and writes out/step-<name>.json."""
    rep = Report(name, dry_run)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    t0, error = time.perf_counter(), None
    if dry_run:
        import torch

        torch.set_num_threads(1)  # as a training run; a shared CPU is not slowed further
    try:
        if name in ("learning", "roundtrip"):
            {"learning": step_learning, "roundtrip": step_roundtrip}[name](rep, dry_run, work)
        else:
            {"env": step_env, "match": step_match, "throughput": step_throughput}[name](
                rep, dry_run)
    except Exception as exc:  # the step's own failure, reported with its reason
        import traceback

        error = f"{type(exc).__name__}: {exc}"
        rep.data["traceback"] = traceback.format_exc()
    result = rep.close(time.perf_counter() - t0, error)
    _write(out / f"step-{name}.json", result)
    return 0 if result["ok"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=os.environ.get("OUT"),
                        help="folder for the JSON results (default: $OUT)")
    parser.add_argument("--dry-run", action="store_true",
                        help="every step on the CPU with tiny sizes")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help=f"comma-separated subset of {','.join(STEPS)}")
    parser.add_argument("--step", help=argparse.SUPPRESS)  # one step, in a child process
    args = parser.parse_args(argv)
    if args.out is None:
        parser.error("give --out or set OUT")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.step:
        return run_step(args.step, out, args.dry_run)
    steps = [s for s in args.steps.split(",") if s]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown step(s) {unknown}; choose from {list(STEPS)}")
    summary: dict[str, Any] = {"dry_run": args.dry_run, "started": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "steps": {}, "ok": False}
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for name in steps:
        limit = DRY_TIMEOUT if args.dry_run else TIMEOUTS[name]
        print(f"gpu_check: {name} (at most {limit} s)", flush=True)
        t0 = time.perf_counter()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--out", str(out), "--step",
               name] + (["--dry-run"] if args.dry_run else [])
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        path = out / f"step-{name}.json"
        if proc.returncode in (0, 1) and path.exists():
            result = json.loads(path.read_text())
        else:
            why = (f"timed out after {limit} s" if proc.returncode == -signal.SIGKILL
                   else f"exited with {proc.returncode}")
            result = {"step": name, "ok": False, "error": why,
                      "seconds": round(time.perf_counter() - t0, 2), "checks": []}
            _write(path, result)
        summary["steps"][name] = result
        summary["failed"] = [s for s, r in summary["steps"].items() if not r["ok"]]
        summary["ok"] = not summary["failed"]
        _write(out / "gpu_check.json", summary)  # as it goes
        failed = [c["name"] for c in result["checks"] if not c["ok"]]
        print(f"gpu_check: {name}: {'ok' if result['ok'] else 'FAILED'} in "
              f"{result['seconds']} s" + (f"; failed: {failed}" if failed else "")
              + (f"; error: {result['error']}" if result.get("error") else ""), flush=True)
    summary["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    _write(out / "gpu_check.json", summary)
    print(f"gpu_check: {'passed' if summary['ok'] else 'FAILED: ' + ', '.join(summary['failed'])}"
          f" ({out / 'gpu_check.json'})")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
