"""Benchmark: phototrichogram anagen fraction on rendered pairs, against the truth.

Usage::

    .venv/bin/python benchmarks/bench_phototrichogram.py [--subjects N] [--seed S]
        [--preset NAME] [--style standard|hard]

A trial is simulated and rendered with ``phototrichogram=True`` (each visit re-imaged
``phototrichogram_days`` later, clipped hair regrowing at each follicle's own rate) into
a temporary folder. Both images of every pair are measured with the default
configuration, then the pair goes through
:func:`hairtrial.track.phototrichogram.phototrichogram` twice, side by side:

* ``shaft`` (the default with images): growth traced along each clipped hair on both
  images, fields registered from their absorptance maps;
* ``hairs`` (the baseline: what a hair counter without the images can do): the two
  measurements registered from exit points and matched, growth = difference of the
  matched hairs' measured lengths.

Truth per pair: the anagen share of the follicles whose hair is counted (exit in the
field) in both images, from the renderer's truth JSON. Per hair: a measured hair is
scored when its exit lies within 15 px of a true exit or tip of the clipped image.

Prints, per method: pairs registered, anagen-fraction MAE and bias, per-hair phase
accuracy, hairs classified per pair against hairs present, and ms per pair (the
measurement of the two images excluded).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from hairtrial.io import read_image
from hairtrial.measure import measure_image
from hairtrial.simulate.config import load_preset
from hairtrial.simulate.trial import with_overrides, write_trial
from hairtrial.track.phototrichogram import PhototrichogramResult, phototrichogram


def _truth(first: dict, again: dict) -> tuple[float, set[int]]:
    seen = {h["follicle_id"] for h in first["hairs"] if h["exit_px"]}
    phase = {h["follicle_id"]: h["phase"] for h in again["hairs"] if h["exit_px"]}
    both = seen & set(phase)
    return float(np.mean([phase[f] == "anagen" for f in both])), both


def _hair_accuracy(
    result: PhototrichogramResult, measured: dict, first: dict, again: dict
) -> list[bool]:
    """Score each classified hair: its phase against the truth (found by exit or tip)."""
    ends = np.array(
        [h["exit_px"] if h["exit_px"] else [np.nan, np.nan] for h in first["hairs"]]
        + [h["tip_px"] for h in first["hairs"]]
    )
    fid = [h["follicle_id"] for h in first["hairs"]] * 2
    phase = {h["follicle_id"]: h["phase"] for h in again["hairs"]}
    out = []
    for g in result.hairs:
        exit_px = measured[g.id_first].exit_px
        dist = np.hypot(*(ends - np.asarray(exit_px)).T)
        if np.isfinite(dist).any() and np.nanmin(dist) < 15:
            truth = phase.get(fid[int(np.nanargmin(dist))])
            out.append((g.phase == "anagen") == (truth == "anagen"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=2)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--preset", default="nanfang-2023")
    parser.add_argument("--style", default="standard", choices=("standard", "hard"))
    args = parser.parse_args()
    preset = with_overrides(load_preset(args.preset), subjects=args.subjects)
    if args.style != "standard":
        from dataclasses import replace

        preset = replace(preset, imaging=replace(preset.imaging, style=args.style))
    offset = preset.imaging.phototrichogram_days
    stats: dict[str, dict[str, list]] = {
        m: {"err": [], "acc": [], "ms": [], "share": [], "refused": []} for m in ("shaft", "hairs")
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        write_trial(preset, out, seed=args.seed, phototrichogram=True, workers=2)
        firsts = sorted(p for p in (out / "images").glob("*_d???.jpg"))
        for first_path in firsts:
            day = int(first_path.stem[-3:])
            again_path = first_path.with_name(
                f"{first_path.stem[:-3]}{day + offset:03d}_regrowth.jpg"
            )
            first = json.loads(first_path.with_suffix(".truth.json").read_text())
            again = json.loads(again_path.with_suffix(".truth.json").read_text())
            a1, a2 = read_image(first_path).pixels, read_image(again_path).pixels
            m1 = measure_image(a1, um_per_px=first["um_per_px"])
            m2 = measure_image(a2, um_per_px=again["um_per_px"])
            truth, present = _truth(first, again)
            measured = {h.id: h for h in m1.hairs}
            for method, images in (("shaft", (a1, a2)), ("hairs", None)):
                t0 = time.perf_counter()
                res = phototrichogram(m1, m2, days=float(offset), images=images)
                stats[method]["ms"].append(1000 * (time.perf_counter() - t0))
                if res.anagen_fraction is None:
                    stats[method]["refused"].append(first_path.name)
                    continue
                stats[method]["err"].append(res.anagen_fraction - truth)
                stats[method]["acc"].extend(_hair_accuracy(res, measured, first, again))
                stats[method]["share"].append(len(res.hairs) / max(len(present), 1))
    n = len(firsts)
    print(f"{args.preset}, {args.style} style, seed {args.seed}: {n} pairs, {offset} days apart")
    print(f"{'method':8s} {'registered':>10s} {'AF MAE':>7s} {'AF bias':>8s} "
          f"{'hair acc':>9s} {'classified':>11s} {'ms/pair':>8s}")  # fmt: skip
    for method, s in stats.items():
        err = np.array(s["err"])
        mae = float(np.abs(err).mean()) if len(err) else float("nan")
        bias = float(err.mean()) if len(err) else float("nan")
        acc = float(np.mean(s["acc"])) if s["acc"] else float("nan")
        share = float(np.mean(s["share"])) if s["share"] else float("nan")
        print(f"{method:8s} {n - len(s['refused']):>6d}/{n:<3d} {mae:7.3f} {bias:+8.3f} "
              f"{acc:9.3f} {share:10.0%} {np.median(s['ms']):8.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
