"""Quality of generated physiological series: rnn, rgan and timegan
against real data.

Each model is trained by the project's loop (`train_and_evaluate`) on the
train split, then as many series as the held-out test split holds are
generated and compared with the TEST windows (never the training ones):

  * discriminative score: |accuracy - 0.5| of a post-hoc GRU classifier of
    real vs generated (Yoon et al. 2019's protocol; 0 is best);
  * predictive score: MAE on real test windows of a GRU next-step predictor
    trained on the generated windows (train-on-synthetic, test-on-real;
    lower is better, the "real" row trains it on real train windows);
  * MMD (Gaussian kernel, median bandwidth), the spectral distance of the
    per-channel power spectra, and for ECG the distance between heart-rate
    distributions (bpm).

The "real (train)" row scores real train windows with the same protocol: the
floor any generator can reach with this many windows. Post-hoc scores are
mean +- std over `--seeds` classifier/predictor seeds (the generator is
trained once per model).

    python benchmarks/sequence_quality.py                    # all, ~40 min CPU
    python benchmarks/sequence_quality.py --datasets sines --seeds 3
    python benchmarks/sequence_quality.py --quick            # a smoke run
    python benchmarks/sequence_quality.py --datasets sines --models '' \
        --from-run rgan-static-d3=runs/sines-d3@15000   # score a kept run
    python benchmarks/sequence_quality.py --datasets sines --models '' \
        --from-run tg-last=runs/tg@16000,weights=last   # sample options
    python benchmarks/sequence_quality.py --datasets sines --models '' \
        --from-run tg=runs/tg@best     # the checkpoint chosen without test

`@best` scores every checkpoint of the run (from `--select-after`) with
`--select-judges` of TimeGAN's judges against windows the test score never
sees (the validation split, or the training windows when there is none),
on samples of another seed, with judge seeds the test score does not use;
the checkpoint with the lowest mean is then scored on the test windows as
any other row, which records every checkpoint's selection scores.

Writes benchmarks/results/sequence_quality.json and, per data set and
model, a PNG of real vs generated traces under benchmarks/results/traces/.
The sines benchmark is TimeGAN's (5 channels, 24 steps, random frequency
and phase, in [0, 1]); its table reports TimeGAN at 0.011 +- 0.008
(discriminative) and 0.093 +- 0.019 (predictive), real data 0.094 +- 0.001.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import pathlib
import platform
import shutil
import tempfile
import time

import jax
import numpy as np

from medgen_jax.data.registry import load_dataset
from medgen_jax.metrics import sequence as sm
from medgen_jax.outputs import save_image_grid
from medgen_jax.train.checkpoint import Checkpointer
from medgen_jax.train.loop import (CHECKPOINT_DIR, generate_samples, load_run,
                                   train_and_evaluate)
from medgen_jax.train.task import get_config

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent


@dataclasses.dataclass
class Spec:
  """One data set of the table."""

  name: str
  data: dict            # data.* overrides
  steps: int            # generator training steps
  batch_size: int
  hidden: int
  layers: int
  disc_steps: int       # post-hoc classifier steps
  pred_steps: int       # post-hoc predictor steps
  pred_output: str      # "sigmoid" for data in [0, 1] (TimeGAN), else linear
  ecg_channel: int | None = None   # channel whose heart rate is compared


def specs(data_dir: pathlib.Path, quick: bool,
          train_scale: float = 1.0) -> dict[str, Spec]:
  q = 0.05 if quick else 1.0
  s = lambda n: max(int(n * q), 20)   # noqa: E731
  g = lambda n: max(int(n * q * train_scale), 20)   # noqa: E731
  return {
      "sines": Spec("sines", {"name": "sines", "sines_examples": 10000,
                              "window": 24, "val_fraction": 0.0,
                              "test_fraction": 0.3},
                    steps=g(5000), batch_size=128, hidden=32, layers=2,
                    disc_steps=s(2000), pred_steps=s(5000),
                    pred_output="sigmoid"),
      "ecg_mitbih100": Spec(
          "ecg_mitbih100",
          {"name": str(data_dir / "mitbih_100" / "100"), "channels": "MLII",
           "resample": 100.0, "window": 200, "stride": 100,
           "val_fraction": 0.1, "test_fraction": 0.2},
          steps=g(2000), batch_size=64, hidden=64, layers=2,
          disc_steps=s(1000), pred_steps=s(2000), pred_output="linear",
          ecg_channel=0),
      "ecg_abp_03700181": Spec(
          "ecg_abp_03700181",
          {"name": str(data_dir / "physionet_vitals" / "03700181"),
           "channels": "MCL1,ABP", "resample": 62.5, "window": 125,
           "stride": 32, "val_fraction": 0.1, "test_fraction": 0.2},
          steps=g(2000), batch_size=64, hidden=64, layers=2,
          disc_steps=s(1000), pred_steps=s(2000), pred_output="linear",
          ecg_channel=0),
  }


MODELS = {
    "rnn": ("rnn", {"rnn.head": "gaussian"}),   # the README's Gaussian rows
    "rnn-mdn": ("rnn", {"rnn.head": "mdn"}),
    "rgan": ("rgan", {}),
    "rgan+supervised": ("rgan", {"rgan.supervised": 10.0}),
    # Noise drawn once per series (see families/rgan/step.py:noise).
    "rgan-static": ("rgan", {"rgan.noise_dim": 0, "rgan.static_noise_dim": 8}),
    "rgan-both": ("rgan", {"rgan.static_noise_dim": 8}),
    "rgan-static-d3": ("rgan", {"rgan.noise_dim": 0, "rgan.static_noise_dim": 8,
                                "rgan.d_steps": 3}),
    "rgan-static16-d3": ("rgan", {"rgan.noise_dim": 0,
                                  "rgan.static_noise_dim": 16,
                                  "rgan.d_steps": 3}),
    # TimeGAN (Yoon et al. 2019) at its paper's size, GRU 24 x 3; the first
    # tenth of the steps trains the autoencoder, the next tenth the latent
    # supervisor, the rest is joint training (families/timegan/step.py).
    "timegan": ("timegan", {"timegan.hidden": 24, "timegan.layers": 3,
                            "timegan.embed_steps": lambda steps: steps // 10,
                            "timegan.supervise_steps":
                                lambda steps: steps // 10}),
}


def build_config(spec: Spec, family: str, extra: dict):
  c = get_config(family)
  for k, v in spec.data.items():
    c.data[k] = v
  c.train.steps = spec.steps
  c.train.batch_size = spec.batch_size
  c.train.eval_every = spec.steps
  c.train.checkpoint_every = spec.steps
  c.train.log_every = max(spec.steps // 10, 1)
  c.train.progress = False
  c.train.num_devices = 1
  section = c[family]
  section.hidden = spec.hidden
  section.layers = spec.layers
  section.eval_classifier_steps = 0
  for path, v in extra.items():   # a callable value: of the step budget
    sec, field = path.split(".")
    c[sec][field] = v(spec.steps) if callable(v) else v
  return c


def paper_judge_hidden(channels: int) -> int:
  """GRU units of TimeGAN's own judge: channels // 2 (2 for the sines)."""
  return max(channels // 2, 1)


def score(spec: Spec, real, real_mask, fake, fake_mask, rate, seeds):
  """Every metric of one model's samples against the real test windows."""
  out = {}
  disc = functools.partial(sm.discriminative_score, real, real_mask, fake,
                           fake_mask, steps=spec.disc_steps)
  pred = functools.partial(sm.predictive_score, fake, fake_mask, real,
                           real_mask, steps=spec.pred_steps,
                           output=spec.pred_output)
  # TimeGAN's own judge: GRU units = channels // 2 (2 for the sines), where
  # "discriminative" uses the stricter default of at least 4. Each score:
  # (mean, std) over the seeds, and every seed's value under "<name>_seeds".
  for name, fn in (("discriminative", disc),
                   ("discriminative_timegan", functools.partial(
                       disc, hidden=paper_judge_hidden(real.shape[2]))),
                   ("predictive", pred)):
    values = [float(fn(seed=s)) for s in seeds]
    out[name] = (float(np.mean(values)), float(np.std(values)))
    out[f"{name}_seeds"] = values
  out["mmd"] = float(sm.mmd(real, fake, real_mask, fake_mask))
  _, rs = sm.power_spectra(real, real_mask, rate)
  _, fs = sm.power_spectra(fake, fake_mask, rate)
  out["spectral_distance"] = float(sm.spectral_distance(rs, fs))
  if spec.ecg_channel is not None:
    c = spec.ecg_channel
    hr_r = sm.heart_rate_bpm(real[..., c], real_mask, rate)
    hr_f = sm.heart_rate_bpm(fake[..., c], fake_mask, rate)
    out["hr_real_bpm"] = float(np.nanmedian(hr_r))
    out["hr_fake_bpm"] = float(np.nanmedian(hr_f))
    out["hr_fake_found"] = float(np.isfinite(hr_f).mean())
    out["hr_distance_bpm"] = float(sm.heart_rate_distance(hr_r, hr_f))
  return out


def score_run(trained, spec: Spec, label: str, test, rate, seeds, pictures,
              options=None, **facts) -> dict:
  """One table row: as many generated series as `test` holds, scored
  against it, and a PNG of real vs generated traces. `options`: the
  family's sample options, by their `generate` names."""
  real, real_mask = test["x"], test["mask"]
  options = check_options(trained, label, options)
  samples = generate_samples(trained.task, trained.state, len(real), seed=1,
                             options=options)
  fake, fake_mask = samples["x_norm"], samples["mask"]
  t0 = time.time()
  row = {"dataset": spec.name, "model": label,
         **score(spec, real, real_mask, fake, fake_mask, rate, seeds),
         "train_steps": int(trained.step), **facts,
         "score_seconds": time.time() - t0}
  print(row)
  save_image_grid(pictures / f"{spec.name}-{label}.png",
                  trained.task.trace_picture(real, real_mask, fake))
  return row


# Selection never reuses the test score's sample seed (1) or judge seeds
# (0 .. --seeds - 1).
SELECT_SAMPLE_SEED = 2
SELECT_JUDGE_SEED0 = 1000


def check_options(trained, label: str, options) -> dict:
  """`options` ({name: text}) typed by the family's sample options."""
  known = {o.dest: o.type for o in trained.task.sample_options}
  unknown = sorted(set(options or {}) - set(known))
  if unknown:
    raise SystemExit(f"--from-run {label}: unknown sample option(s) "
                     f"{', '.join(unknown)}; {type(trained.task).__name__} "
                     f"takes {', '.join(sorted(known))}")
  return {k: known[k](v) for k, v in (options or {}).items()}


def select_step(spec: Spec, label: str, work: pathlib.Path, options,
                reference, n: int, judges: int, after: int) -> dict:
  """The checkpoint of `work` whose samples TimeGAN's judge separates
  least from `reference` (never the test windows): {"selected_step",
  "selection_scores": {step: [score per judge]}, ...}."""
  with Checkpointer(work / CHECKPOINT_DIR, create=False) as ckpt:
    steps = [s for s in ckpt.all_steps() if s >= after]
  if not steps:
    raise SystemExit(f"--from-run {label}: {work} has no checkpoint at step "
                     f">= --select-after {after}")
  idx = np.random.default_rng(SELECT_SAMPLE_SEED).permutation(
      len(reference["x"]))[:n]
  ref_x, ref_m = reference["x"][idx], reference["mask"][idx]
  candidates = {}
  for step in steps:
    trained = load_run(work, step)
    samples = generate_samples(trained.task, trained.state, len(ref_x),
                               seed=SELECT_SAMPLE_SEED,
                               options=check_options(trained, label, options))
    candidates[step] = (samples["x_norm"], samples["mask"])
  seeds = range(SELECT_JUDGE_SEED0, SELECT_JUDGE_SEED0 + judges)
  best, scores = sm.select_by_judge(ref_x, ref_m, candidates, seeds=seeds,
                                    steps=spec.disc_steps,
                                    hidden=paper_judge_hidden(ref_x.shape[2]))
  for step, values in scores.items():
    print(f"{label} step {step}: selection judge {np.mean(values):.3f} "
          f"({', '.join(f'{v:.3f}' for v in values)})")
  print(f"{label}: selected step {best}")
  return {"selected_step": int(best), "selection_judge_seeds": list(seeds),
          "selection_scores": {str(k): v for k, v in scores.items()}}


def parse_from_run(parser, value: str, all_specs, datasets):
  """`LABEL=WORKDIR[@STEP|@best][,OPTION=VALUE...]` -> (label, workdir,
  step, "best" or None, data set, sample options): the data set whose
  every `data.*` setting the run's config.json shares; the options go to
  the family's `generate` as `medgen sample --OPTION VALUE` would (e.g.
  weights=last)."""
  label, sep, rest = value.partition("=")
  rest, *pairs = rest.split(",")
  work, _, step = rest.partition("@")
  options = dict(pair.partition("=")[::2] for pair in pairs)
  if (not sep or not label or not work
      or (step and not step.isdigit() and step != "best")
      or not all(k and v for k, v in options.items())):
    parser.error(f"--from-run {value!r}: expected "
                 "LABEL=WORKDIR[@STEP|@best][,OPTION=VALUE...]")
  config = pathlib.Path(work) / "config.json"
  if not config.is_file():
    parser.error(f"--from-run {value!r}: {config} is missing; pass the "
                 "folder of a run of `medgen train rnn|rgan|timegan`")
  data = json.loads(config.read_text()).get("data", {})
  for name in datasets:
    if all(data.get(k) == v for k, v in all_specs[name].data.items()):
      return (label, pathlib.Path(work),
              int(step) if step.isdigit() else (step or None), name, options)
  parser.error(f"--from-run {value!r}: its data settings match none of "
               f"--datasets {','.join(datasets)}")


def fmt(v):
  if isinstance(v, (tuple, list)):
    return f"{v[0]:.3f} ± {v[1]:.3f}"
  return "-" if v is None else f"{v:.3f}"


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--datasets", default="sines,ecg_mitbih100,ecg_abp_03700181")
  p.add_argument("--models", default="rnn,rnn-mdn,rgan,rgan+supervised",
                 help=f"comma-separated, of {','.join(MODELS)}")
  p.add_argument("--seeds", type=int, default=3)
  p.add_argument("--from-run", action="append", default=[],
                 metavar="LABEL=WORKDIR[@STEP|@best][,OPTION=VALUE...]",
                 help="also score an existing run (its last, STEP's, or the "
                 "checkpoint the selection judges pick: @best) as row "
                 "LABEL, beside the data set its config names, sampled "
                 "with the family's `medgen sample` options (e.g. "
                 ",weights=last for timegan); repeatable. With --models '' "
                 "nothing is trained")
  p.add_argument("--select-judges", type=int, default=5,
                 help="@best: TimeGAN judges per checkpoint (their mean "
                 "picks it)")
  p.add_argument("--select-after", type=int, default=0,
                 help="@best: only checkpoints at this step or later")
  p.add_argument("--quick", action="store_true", help="tiny budgets (smoke)")
  p.add_argument("--train-scale", type=float, default=1.0,
                 help="multiplies the generators' training steps")
  p.add_argument("--data-dir", default=os.environ.get(
      "MEDGEN_SHARED_DATA", str(REPO.parent / "shared" / "data")))
  p.add_argument("--out", default=str(HERE / "results" /
                                      "sequence_quality.json"))
  args = p.parse_args()
  if args.select_judges < 1 or args.select_after < 0:
    p.error(f"--select-judges must be >= 1 and --select-after >= 0, got "
            f"{args.select_judges} and {args.select_after}")
  if args.seeds > SELECT_JUDGE_SEED0:
    p.error(f"--seeds must be <= {SELECT_JUDGE_SEED0} (the selection judges' "
            f"first seed), got {args.seeds}")
  all_specs = specs(pathlib.Path(args.data_dir), args.quick,
                    args.train_scale)
  models = [m for m in args.models.split(",") if m]
  unknown = [m for m in models if m not in MODELS]
  if unknown:
    p.error(f"--models: unknown {','.join(unknown)}; "
            f"choose from {','.join(MODELS)}")
  from_runs = [parse_from_run(p, v, all_specs, args.datasets.split(","))
               for v in args.from_run]
  seeds = list(range(args.seeds))
  out_path = pathlib.Path(args.out)
  pictures = out_path.parent / "traces"
  rows = []
  work_root = pathlib.Path(tempfile.mkdtemp(prefix="seqbench-"))
  try:
    for ds_name in args.datasets.split(","):
      spec = all_specs[ds_name]
      base = build_config(spec, "rnn", {})
      data = load_dataset(base.data)
      test, train = data.split("test"), data.split("train")
      real, real_mask = test["x"], test["mask"]
      rate = float(data.metadata["rate"])
      n = len(real)
      print(f"== {ds_name}: train {len(train)} / test {n} windows of "
            f"{real.shape[1]} steps x {real.shape[2]} channels at {rate:g} Hz")
      idx = np.random.default_rng(0).permutation(len(train))[:n]
      t0 = time.time()
      floor = score(spec, real, real_mask, train["x"][idx], train["mask"][idx],
                    rate, seeds)
      rows.append({"dataset": ds_name, "model": "real (train)", **floor,
                   "train_steps": 0, "train_seconds": 0.0,
                   "score_seconds": time.time() - t0})
      print(rows[-1])
      for label, work, step, ds, options in from_runs:
        if ds != ds_name:
          continue
        facts = {}
        if step == "best":
          # The validation split when the run has one, else the training
          # windows: never the test windows scored below.
          ref_name = ("val" if len(data.splits.get("val", ()))
                      else "train")
          t0 = time.time()
          facts = select_step(spec, label, work, options,
                              data.split(ref_name), n, args.select_judges,
                              args.select_after)
          facts.update(selection_reference=ref_name,
                       selection_seconds=time.time() - t0)
          step = facts["selected_step"]
        rows.append(score_run(load_run(work, step), spec, label, test, rate,
                              seeds, pictures, options, train_seconds=0.0,
                              run=str(work), sample_options=options, **facts))
      for model in models:
        family, extra = MODELS[model]
        config = build_config(spec, family, extra)
        work = work_root / f"{ds_name}-{model}"
        t0 = time.time()
        train_and_evaluate(config, work)
        seconds = time.time() - t0
        rows.append(score_run(load_run(work), spec, model, test, rate, seeds,
                              pictures, train_seconds=seconds))
  finally:
    shutil.rmtree(work_root, ignore_errors=True)

  cols = ["discriminative", "discriminative_timegan", "predictive", "mmd",
          "spectral_distance", "hr_distance_bpm"]
  print("\n| data | model | " + " | ".join(cols) + " | train s |")
  print("|" + "---|" * (len(cols) + 3))
  for r in rows:
    print(f"| {r['dataset']} | {r['model']} | "
          + " | ".join(fmt(r.get(c)) for c in cols)
          + f" | {r['train_seconds']:.0f} |")
  out_path.parent.mkdir(parents=True, exist_ok=True)
  out_path.write_text(json.dumps({
      "command": "python benchmarks/sequence_quality.py " + " ".join(
          f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()),
      "backend": jax.default_backend(), "machine": platform.processor() or
      platform.machine(), "jax": jax.__version__, "seeds": seeds,
      "specs": {k: dataclasses.asdict(v) for k, v in all_specs.items()},
      "rows": rows}, indent=2))
  print(f"wrote {out_path}")


if __name__ == "__main__":
  main()
