"""``inkread bench``: where the time goes, measured in one run.

Per line (batch of one, as in live recognition): milliseconds for features,
network, greedy decoding and beam search with the LM, as medians and 95th
percentiles, on one thread and on all threads, for the recognizer's engine
(ONNX Runtime by default) and for torch beside it. Then the training
throughput of one optimisation step (batch built by
:func:`inkread.train.make_batch`, forward, CTC, backward, AdamW) beside a
bare ``nn.LSTM`` of the same size doing forward and backward on random
tensors of the same shape: their ratio shows what everything around the
LSTM (data pipeline, conv front end, reversal, CTC, optimizer) costs.
Finally peak memory, and the synthetic-ink and saliency benchmarks when
those modules are present.

Numbers are wall-clock on a shared machine: compare ratios from one run,
never absolute times across runs.
"""
from __future__ import annotations

import logging
import os
import resource
import sys
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .decode import DEFAULT_BEAM

log = logging.getLogger(__name__)


def _stats(ms: Sequence[float]) -> dict:
    a = np.asarray(ms, dtype=np.float64)
    if a.size == 0:
        return {"median_ms": None, "p95_ms": None, "n": 0}
    return {"median_ms": float(np.median(a)), "p95_ms": float(np.percentile(a, 95)), "n": int(a.size)}


def _timed(fn: Callable, *args: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args)
    return out, (time.perf_counter() - t0) * 1000.0


def bench_lines(rec: Any, inks: Sequence, threads: int, beam_decoder: Any) -> dict:
    """Per-line stage timings with ``threads`` torch threads.

    Args:
        rec: a :class:`~inkread.recognizer.Recognizer`.
        inks: the lines (the first is also run once as a warm-up).
        threads: torch threads for this pass.
        beam_decoder: the beam-search decoder to time (with LM if there is one).
    """
    import torch
    from .features import featurize
    from .recognizer import settle_memory
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    t: dict[str, list[float]] = {"features": [], "network": [], "greedy": [], "beam": []}
    frames = []
    try:
        for k, ink in enumerate([inks[0]] + list(inks)):
            f, t_f = _timed(featurize, ink, rec.feature_config)
            (lp, olen), t_n = _timed(rec.emissions, [f.x])
            _, t_g = _timed(rec._greedy, lp, olen)
            _, t_b = _timed(beam_decoder, lp, olen)
            if k == 0:
                settle_memory()  # as the app does after loading a model
                continue  # warm-up
            for key, v in zip(t, (t_f, t_n, t_g, t_b)):
                t[key].append(v)
            frames.append(int(olen[0]))
    finally:
        torch.set_num_threads(old)
    out = {k: _stats(v) for k, v in t.items()}
    out["total_greedy"] = _stats(np.add(np.add(t["features"], t["network"]), t["greedy"]))
    out["total_beam"] = _stats(np.add(np.add(t["features"], t["network"]), t["beam"]))
    out["threads"] = threads
    out["output_frames_median"] = float(np.median(frames)) if frames else 0.0
    return out


def bench_train_step(rec: Any, samples: Sequence, batch: int, steps: int = 3,
                     threads: Optional[int] = None) -> dict:
    """Seconds per training step and per bare-LSTM step of the same size.

    Uses :func:`inkread.train.make_batch` (with augmentation), so the step
    includes the data pipeline exactly as training runs it. ``threads``
    torch threads (None = torch's setting) for both.
    """
    import torch
    old = torch.get_num_threads()
    torch.set_num_threads(threads or old)
    try:
        out = _train_step_times(rec, samples, batch, steps)
        from .train import bf16_native
        if bf16_native():  # what `inkread train --bf16` would take here
            out["step_bf16_s"] = _train_step_times(rec, samples, batch, steps, bf16=True)["step_s"]
    finally:
        torch.set_num_threads(old)
    out["threads"] = threads or old
    return out


def _train_step_times(rec: Any, samples: Sequence, batch: int, steps: int, bf16: bool = False) -> dict:
    import copy

    import torch
    import torch.nn.functional as F
    from .train import Item, TrainConfig, make_batch, train_autocast
    items = []
    for s in list(samples)[:batch]:
        arr = s.ink.to_array()
        items.append(Item(arr, s.text, rec.alphabet.encode(s.text, unknown="drop"),
                          s.ink.time_synthesized, len(arr)))
    model = copy.deepcopy(rec.model).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    cfg, rng = TrainConfig(bf16=bf16), np.random.default_rng(0)
    step_s, build_s, shapes = [], [], None
    for k in range(steps + 1):
        t0 = time.perf_counter()
        b = make_batch(items, rec.feature_config, rng, cfg)
        t1 = time.perf_counter()
        with train_autocast(cfg):
            lp, olen = model(b["x"], b["lengths"])
        loss = F.ctc_loss(lp.float().transpose(0, 1), b["targets"], olen, b["target_lengths"],
                          blank=0, zero_infinity=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if k:
            step_s.append(t2 - t0)
            build_s.append(t1 - t0)
        shapes = (tuple(b["x"].shape), int(b["lengths"].sum()), tuple(lp.shape))
    (B, T, _), valid, (_, T_out, _) = shapes  # type: ignore[misc]
    step = float(np.median(step_s))
    if bf16:
        return {"step_s": step}
    bare = _bare_lstm(rec.model, B, T_out, steps)
    return {"batch": B, "input_frames": valid, "padded_input_frames": B * T, "output_frames": B * T_out,
            "step_s": step, "batch_build_s": float(np.median(build_s)),
            "input_frames_per_s": valid / step, "output_frames_per_s": B * T_out / step,
            "bare_lstm_step_s": bare, "bare_lstm_output_frames_per_s": B * T_out / bare,
            "step_over_bare_lstm": step / bare}


def _bare_lstm(model: Any, B: int, T: int, steps: int) -> float:
    """Median seconds of forward+backward of a plain bidirectional nn.LSTM of the model's size."""
    import torch
    cfg = model.cfg
    size_in = cfg.conv_channels if cfg.conv_channels > 0 else cfg.input_size * max(cfg.subsample, 1)
    lstm = torch.nn.LSTM(size_in, cfg.hidden_size, cfg.num_layers, batch_first=True, bidirectional=True)
    x = torch.randn(B, T, size_in)
    times = []
    for k in range(steps + 1):
        t0 = time.perf_counter()
        out, _ = lstm(x)
        out.sum().backward()
        if k:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _optional(modname: str, fn: str, *args: Any) -> Any:
    """Call ``modname.fn(*args)`` if that module and function exist; report failures as text."""
    import importlib
    try:
        mod = importlib.import_module(modname)
    except ModuleNotFoundError as exc:
        if exc.name == modname:
            return None
        raise
    f = getattr(mod, fn, None)
    if f is None:
        return None
    try:
        return f(*args)
    except Exception as exc:  # another module's benchmark must not sink this one
        log.warning("%s.%s failed: %s", modname, fn, exc)
        return f"failed: {type(exc).__name__}: {exc}"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is kB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def run(rec: Any, samples: Sequence, lines: int = 20, beam: int = DEFAULT_BEAM, train_batch: int = 16,
        all_threads: Optional[int] = None, extras: bool = True, data: str = "",
        train_threads: Optional[int] = None) -> dict:
    """The whole benchmark; returns the report as a plain dict (see :func:`format_report`).

    Args:
        rec: the recognizer to time.
        samples: labelled samples; the first ``lines`` are timed per line and
            the first ``train_batch`` make the training batch.
        all_threads: thread count of the "all threads" pass (default torch's).
        extras: also run the synth and saliency benchmarks if present.
        data: the data spec, for the report.
        train_threads: torch threads for the training step (default ``all_threads``).
    """
    import torch
    from .decode import BeamSearchDecoder
    samples = list(samples)
    inks = [s.ink for s in samples[:lines] if not s.ink.is_empty]
    if not inks:
        raise ValueError("no lines with ink to benchmark")

    def beam_dec() -> BeamSearchDecoder:
        """A fresh decoder on a cold LM: the decoder and the LM cache what they have scored,
        so a pass over lines already decoded would be timed as faster than new text."""
        if rec.lm is not None:
            rec.lm.clear_cache()
        return BeamSearchDecoder(rec.alphabet, beam=beam, nbest=1, lm=rec.lm,
                                 lm_weight=rec.lm_weight if rec.lm else 0.0,
                                 bonus=rec.bonus if rec.lm else 0.0)
    n_all = all_threads or torch.get_num_threads()
    report: dict = {
        "model": {"path": rec.path, "parameters": rec.model.num_parameters(),
                  "config": rec.model.cfg.to_dict(), "trained": bool(rec.meta)},
        "data": data, "lines": len(inks), "beam": beam, "lm": rec.settings(True)["lm"],
        "points_median": float(np.median([ink.num_points for ink in inks])),
        "backend": rec.settings(False)["backend"],
        "machine": machine(),
    }
    # The recognizer's own engine, and beside it in the same run: the float graph when the
    # recognizer computes in int8, and torch when it is another engine.
    engines = {report["backend"]: rec}
    if rec.int8:
        engines["onnx"] = type(rec)(rec.model, rec.alphabet, rec.feature_config, backend="onnx")
    if rec.backend != "torch":
        engines["torch"] = type(rec)(rec.model, rec.alphabet, rec.feature_config, backend="torch")
    for name, r in engines.items():
        rows = {"1": bench_lines(r, inks, 1, beam_dec())}
        if n_all != 1:
            rows[str(n_all)] = bench_lines(r, inks, n_all, beam_dec())
        report["per_line" if r is rec else f"per_line_{name}"] = rows
    if train_batch > 0:
        report["train"] = bench_train_step(rec, [s for s in samples if not s.ink.is_empty], train_batch,
                                           threads=train_threads or n_all)
    if extras:
        report["synth_lines_per_second"] = _optional("inkread.synth", "bench_lines_per_second")
        report["saliency"] = _optional("inkread.saliency", "bench", rec.model, inks[:5])
    report["peak_rss_mb"] = peak_rss_mb()
    return report


def machine() -> dict:
    """What the timings depend on beyond the code: the CPU, its vector instructions as torch
    sees them (an AVX2 core ran the shipped network 1.9x slower than an AVX512 one,
    models/README.md), the cores, and the load when the run began."""
    import platform

    import torch
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            name = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), name)
    except OSError:
        pass
    try:
        load = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        load = None
    return {"cpu": name, "capability": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
            "load_average": load}


def format_report(r: dict) -> str:
    """Human-readable lines of a :func:`run` report."""
    m = r["model"]
    mc = r.get("machine") or {}
    out = [f"model: {m['path'] or '(untrained, random weights)'}: {m['parameters']:,} parameters, "
           f"{'trained' if m['trained'] else 'UNTRAINED: decoding times are not representative'}",
           f"machine: {mc.get('cpu')}, {mc.get('capability')}, {mc.get('cores')} cores, "
           f"load average {mc.get('load_average')} at the start",
           f"data: {r['data']}: {r['lines']} lines, median {r['points_median']:.0f} points",
           f"beam {r['beam']}, LM: {r['lm'] or 'none'}", "",
           f"{'ms per line':<18}" + "".join(f"{k:>18}" for k in
                                          ("features", "network", "greedy", "beam", "total_greedy"))]
    backend = r.get("backend", "torch")
    for key in [k for k in r if k.startswith("per_line")]:
        name = backend if key == "per_line" else key[len("per_line_"):]
        for thr, row in r[key].items():
            cells = "".join(f"{row[k]['median_ms']:9.2f} /{row[k]['p95_ms']:7.2f}"
                            for k in ("features", "network", "greedy", "beam", "total_greedy"))
            out.append(f"{name + ', ' + thr + ' thr':<18}{cells}   (median / p95; "
                       f"{row['output_frames_median']:.0f} output frames)")
    if "train" in r:
        t = r["train"]
        out += ["", f"train step ({t['threads']} threads): batch {t['batch']}, "
                    f"{t['padded_input_frames']} padded input frames: "
                    f"{t['step_s']:.3f} s ({t['batch_build_s']:.3f} s building the batch), "
                    f"{t['input_frames_per_s']:.0f} input frames/s, {t['output_frames_per_s']:.0f} LSTM frames/s",
                f"bare nn.LSTM fwd+bwd, same size: {t['bare_lstm_step_s']:.3f} s, "
                f"{t['bare_lstm_output_frames_per_s']:.0f} frames/s; step / bare = {t['step_over_bare_lstm']:.2f}"]
        if "step_bf16_s" in t:
            out.append(f"train step in bfloat16 (inkread train --bf16): {t['step_bf16_s']:.3f} s, "
                       f"{t['step_s'] / t['step_bf16_s']:.2f}x the float32 speed")
    out.append("")
    for key, label in (("synth_lines_per_second", "synthetic lines/s"), ("saliency", "saliency")):
        if key in r:
            v = r[key]
            out.append(f"{label}: {'not available' if v is None else (f'{v:.1f}' if isinstance(v, float) else v)}")
    out.append(f"peak memory: {r['peak_rss_mb']:.0f} MB")
    return "\n".join(out)
