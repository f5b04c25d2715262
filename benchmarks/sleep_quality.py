"""Sleep: recurrent models of hypnograms and actigraphy against classical
baselines, in held-out NLL per epoch and in sleep measures of generated data.

Hypnograms (../shared/data/sleep/hypnograms: one expert-scored 6-h night,
720 epochs, and a 49-min excerpt of another subject, 98 epochs):
  * "cross-subject": train on windows of the full night, test on the other
    subject's excerpt (--test-records sub-02_hypno_30s);
  * "within-night": the full night cut into contiguous blocks (train the
    first 70 %, val 10 %, test the last 20 %).
  Models: `medgen train rnn` (categorical head, time since lights-off as
  input) against first-order Markov chains fitted on the same train windows
  (homogeneous; time-inhomogeneous with one matrix per hour, shrunk to the
  homogeneous one). NLL per scored epoch on the same test windows.
  Sleep measures (metrics/sleep.py) of generated whole nights (720 epochs
  from lights-off) beside the real night's.

Actigraphy (../shared/data/sleep/actigraphy, example_01..05.AWD: five
recordings of 12.8-21.7 days, 1-minute epochs): leave-one-recording-out, one
fold per recording: train on the other four (one of them val), test on the
held-out recording's calendar days. Models: `medgen train rnn` (ZINB head,
time of day as input) against a negative-binomial and a zero-inflated NB
model per hour of the day. NLL per worn epoch, summed over folds; measures
of generated days (mean count, L5, M10, RA, IV, IS, Cole-Kripke sleep with
1-minute epochs) and a discriminative score on log1p(counts) days.

    python benchmarks/sleep_quality.py                       # CPU, 5-min epochs
    python benchmarks/sleep_quality.py --parts actigraphy --epoch-seconds 60 \
        --steps 400                                          # 1-min (GPU, ~8 min)
    python benchmarks/sleep_quality.py --quick               # smoke run

Writes benchmarks/results/sleep_quality.json and, per part, the PNGs
hypnogram-*.png / actogram-*.png under benchmarks/results/sleep/.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shutil
import tempfile
import time

import jax
import numpy as np

from medgen_jax import sleep_pictures
from medgen_jax.baselines.sleep import MarkovChain, TimeOfDayCounts
from medgen_jax.data.registry import load_dataset
from medgen_jax.data.sleep_stages import NUM_STAGES
from medgen_jax.families import _sleep as views
from medgen_jax.metrics import sequence as sm
from medgen_jax.metrics import sleep as sleep_metrics
from medgen_jax.outputs import save_image_grid
from medgen_jax.train.loop import generate_samples, load_run, train_and_evaluate
from medgen_jax.train.task import get_config

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
NIGHT_EPOCHS = 720
NIGHT_KEYS = ("TST", "SE", "SOL", "WASO", "REM_latency", "%N1", "%N2", "%N3",
              "%REM", "awakenings")
RECORDS = tuple(f"example_0{i}" for i in range(1, 6))


def rnn_config(data: dict, steps: int, batch: int, hidden: int):
  c = get_config("rnn")
  for k, v in data.items():
    c.data[k] = v
  c.train.steps = steps
  c.train.batch_size = batch
  c.train.eval_every = steps
  c.train.checkpoint_every = steps
  c.train.log_every = max(steps // 5, 1)
  c.train.progress = False
  c.train.num_devices = 1
  c.rnn.hidden = hidden
  c.rnn.eval_classifier_steps = 0
  return c


def split_nll(task, params, split) -> tuple[float, float]:
  """(summed NLL, scored epochs) of the rnn over every window of a split."""
  batch = task.to_batch(split.arrays)
  mean = task.held_out_nll(params, batch)
  steps = float(batch["mask"].sum())
  return mean * steps, steps


def baseline_nll(model, split) -> tuple[float, float]:
  nll, steps = model.nll(split["x"], split["mask"], split["t0"])
  return float(nll.sum()), float(steps.sum())


def train_rnn(config, work: pathlib.Path):
  t0 = time.time()
  train_and_evaluate(config, work)
  return load_run(work), time.time() - t0


def hypnogram_part(name, data, args, work_root, pictures):
  config = rnn_config(data, args.hyp_steps, 32, args.hyp_hidden)
  config.rnn.layers = args.hyp_layers
  config.rnn.input_noise = args.hyp_input_noise
  ds = load_dataset(config.data)
  train, test = ds.split("train"), ds.split("test")
  epoch = 1.0 / float(ds.metadata["rate"])
  print(f"== hypnogram {name}: {len(train)} train / {len(test)} test windows "
        f"of {train['x'].shape[1]} epochs; {ds.metadata['split_rule']}")
  models = {
      "markov": MarkovChain.fit(train["x"], train["mask"], train["t0"], epoch,
                                NUM_STAGES),
      "markov-hourly": MarkovChain.fit(train["x"], train["mask"], train["t0"],
                                       epoch, NUM_STAGES, bin_seconds=3600.0),
  }
  rows = []
  for m, b in models.items():
    total, steps = baseline_nll(b, test)
    rows.append({"part": f"hypnogram/{name}", "model": m,
                 "nll_per_epoch": total / steps, "test_epochs": steps})
  run, seconds = train_rnn(config, work_root / f"hyp-{name}")
  total, steps = split_nll(run.task, run.state.params, test)
  rows.append({"part": f"hypnogram/{name}", "model": "rnn (categorical)",
               "nll_per_epoch": total / steps, "test_epochs": steps,
               "train_seconds": seconds})
  if "val" in ds.splits:   # for choosing settings without the test split
    v_total, v_steps = split_nll(run.task, run.state.params, ds.split("val"))
    rows[-1]["val_nll_per_epoch"] = v_total / v_steps
    print(f"{name}: rnn val NLL/epoch {v_total / v_steps:.3f}")
  # Whole nights from lights-off, beside the one real full night.
  nights = {"rnn": generate_samples(
      run.task, run.state, args.nights, seed=1,
      options={"length": NIGHT_EPOCHS, "start": "0"})["x"][..., 0]}
  rng = np.random.default_rng(0)
  for m, b in models.items():
    nights[m] = b.sample(rng, args.nights, NIGHT_EPOCHS,
                         np.zeros(args.nights))
  measures = {m: sleep_metrics.night_statistics_table(
      np.rint(v).astype(int), epoch) for m, v in nights.items()}
  real_stages, _ = real_night_measures(pathlib.Path(args.data_dir))
  picture = sleep_pictures.hypnogram_panel(
      [real_stages[None], np.rint(nights["rnn"][:3]),
       nights["markov-hourly"][:3]],
      [real_stages[None] >= 0] + [np.ones((3, NIGHT_EPOCHS), bool)] * 2,
      ["real night (the one full night)", "rnn (generated nights)",
       "markov-hourly (generated nights)"], epoch)
  save_image_grid(pictures / f"hypnogram-{name}.png", picture)
  return rows, measures


def real_night_measures(data_dir: pathlib.Path):
  from medgen_jax.data.hypnogram_files import read_hypnogram
  h = read_hypnogram(data_dir / "sleep" / "hypnograms" /
                     "data_full_6hrs_100Hz_hypno_30s.txt")
  return h.stages, sleep_metrics.hypnogram_statistics(h.stages,
                                                      h.epoch_seconds)


def actigraphy_fold(held_out, files, args, work_root):
  per_day = int(round(86400 / args.epoch_seconds))
  data = {"name": "actigraphy:" + ",".join(files), "window": per_day,
          "stride": per_day, "epoch_seconds": float(args.epoch_seconds),
          "test_records": held_out, "val_fraction": 0.25,
          "test_fraction": 0.0, "min_valid": 0.5}
  config = rnn_config(data, args.steps, 16, 64)
  ds = load_dataset(config.data)
  train, test = ds.split("train"), ds.split("test")
  epoch = 1.0 / float(ds.metadata["rate"])
  rows = []
  for m, zi in (("tod-nb", False), ("tod-zinb", True)):
    b = TimeOfDayCounts.fit(train["x"], train["mask"], train["t0"], epoch,
                            3600.0, zero_inflated=zi)
    rows.append({"model": m, "fold": held_out, **dict(zip(
        ("nll", "epochs"), baseline_nll(b, test)))})
  run, seconds = train_rnn(config, work_root / f"act-{held_out}")
  total, steps = split_nll(run.task, run.state.params, test)
  rows.append({"model": "rnn (zinb)", "fold": held_out, "nll": total,
               "epochs": steps, "train_seconds": seconds})
  fake = generate_samples(run.task, run.state, len(test), seed=1,
                          options={"length": per_day, "start": "00:00"})
  return rows, test, fake, run, epoch


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--data-dir", default=os.environ.get(
      "MEDGEN_SHARED_DATA", str(REPO.parent / "shared" / "data")))
  p.add_argument("--parts", default="hypnogram,actigraphy")
  p.add_argument("--steps", type=int, default=1500,
                 help="rnn training steps per actigraphy fold")
  # One night of training data: a GRU of 16 units, 300 steps, noise 0.3 on
  # its one-hot inputs, chosen among 8 settings by the within-night VAL NLL
  # (README). Bigger or longer runs overfit (64x2 at 1500 steps: 2.7 nats).
  p.add_argument("--hyp-steps", type=int, default=300)
  p.add_argument("--hyp-hidden", type=int, default=16)
  p.add_argument("--hyp-layers", type=int, default=1)
  p.add_argument("--hyp-input-noise", type=float, default=0.3,
                 help="std of noise on the rnn's one-hot inputs")
  p.add_argument("--epoch-seconds", type=float, default=300.0,
                 help="actigraphy epochs (counts summed); 60 = as recorded")
  p.add_argument("--folds", default=",".join(RECORDS))
  p.add_argument("--nights", type=int, default=64)
  p.add_argument("--quick", action="store_true")
  p.add_argument("--out", default=str(HERE / "results" /
                                      "sleep_quality.json"))
  args = p.parse_args()
  if args.quick:
    args.steps, args.hyp_steps, args.nights, args.folds = (30, 30, 8,
                                                           RECORDS[-1])
  data_dir = pathlib.Path(args.data_dir)
  out_path = pathlib.Path(args.out)
  pictures = out_path.parent / "sleep"
  work_root = pathlib.Path(tempfile.mkdtemp(prefix="sleepbench-"))
  result = {"command": "python benchmarks/sleep_quality.py " + " ".join(
      f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()),
      "backend": jax.default_backend(), "device": str(jax.devices()[0]),
      "machine": platform.processor() or platform.machine(),
      "jax": jax.__version__}
  try:
    if "hypnogram" in args.parts:
      hyp = data_dir / "sleep" / "hypnograms"
      parts = {
          "cross-subject": {"name": f"hypnogram:{hyp}", "window": 120,
                            "stride": 10, "test_records": "sub-02_hypno_30s",
                            "val_fraction": 0.0},
          "within-night": {"name": "hypnogram:" + str(
              hyp / "data_full_6hrs_100Hz_hypno_30s.txt"), "window": 120,
                           "stride": 10, "val_fraction": 0.1,
                           "test_fraction": 0.2},
      }
      rows, measures = [], {}
      for name, data in parts.items():
        r, m = hypnogram_part(name, data, args, work_root, pictures)
        rows += r
        measures[name] = {k: {key: [float(np.nanmean(v[key])),
                                    float(np.nanstd(v[key]))]
                              for key in NIGHT_KEYS} for k, v in m.items()}
      _, real = real_night_measures(data_dir)
      result["hypnogram"] = {"nll": rows, "night_measures": measures,
                             "real_night": {k: real[k] for k in NIGHT_KEYS}}
      print("\n| part | model | held-out NLL / epoch (nats) | test epochs |")
      print("|---|---|---|---|")
      for r in rows:
        print(f"| {r['part']} | {r['model']} | {r['nll_per_epoch']:.3f} | "
              f"{r['test_epochs']:.0f} |")
      print("\n| measure | real night | " + " | ".join(
          f"{p_} {m_}" for p_ in measures for m_ in measures[p_]) + " |")
      print("|---|---|" + "---|" * sum(len(v) for v in measures.values()))
      for key in NIGHT_KEYS:
        cells = [f"{measures[p_][m_][key][0]:.1f} ± "
                 f"{measures[p_][m_][key][1]:.1f}"
                 for p_ in measures for m_ in measures[p_]]
        print(f"| {key} | {real[key]:.1f} | " + " | ".join(cells) + " |")
    if "actigraphy" in args.parts:
      act = data_dir / "sleep" / "actigraphy"
      files = [str(act / f"{r}.AWD") for r in RECORDS]
      rows, reals, fakes, days = [], [], [], {}
      for held_out in args.folds.split(","):
        r, test, fake, run, epoch = actigraphy_fold(held_out, files, args,
                                                    work_root)
        rows += r
        for row in r:
          print(f"fold {held_out}: {row['model']}: NLL/epoch "
                f"{row['nll'] / row['epochs']:.3f} over {row['epochs']:.0f} "
                f"epochs" + (f", trained in {row['train_seconds']:.0f} s"
                             if "train_seconds" in row else ""), flush=True)
        reals.append(test.arrays)
        fakes.append(fake)
        if held_out == args.folds.split(",")[0]:
          pic = views.actigraphy_picture(run.task, test.arrays, fake)
          save_image_grid(pictures / f"actogram-{held_out}.png", pic)
      totals = {}
      for r in rows:
        t = totals.setdefault(r["model"], [0.0, 0.0])
        t[0] += r["nll"]
        t[1] += r["epochs"]
      rx = np.concatenate([a["x"] for a in reals])
      rm = np.concatenate([a["mask"] for a in reals])
      rt = np.concatenate([a["t0"] for a in reals])
      fx = np.concatenate([f["x"] for f in fakes])
      fm = np.concatenate([f["mask"] for f in fakes])
      ft = np.concatenate([f["t0"] for f in fakes])
      real_days = views.day_measures(rx, rm, rt, epoch)
      fake_days = views.day_measures(fx, fm, ft, epoch)
      disc = sm.repeat(lambda seed: sm.discriminative_score(
          np.log1p(rx), rm, np.log1p(fx), fm, seed=seed,
          steps=200 if args.quick else 1000), [0, 1, 2])
      days = {k: {"real": [float(np.nanmean(real_days[k])),
                           float(np.nanstd(real_days[k]))],
                  "rnn": [float(np.nanmean(fake_days[k])),
                          float(np.nanstd(fake_days[k]))]}
              for k in views.DAY_KEYS + ("IS",)}
      result["actigraphy"] = {
          "folds": rows, "epoch_seconds": args.epoch_seconds,
          "nll_per_epoch": {m: t[0] / t[1] for m, t in totals.items()},
          "day_measures": days, "discriminative": disc}
      print(f"\n| model | held-out NLL / worn epoch ({args.epoch_seconds:g}-s "
            "epochs, all folds) |")
      print("|---|---|")
      for m, t in totals.items():
        print(f"| {m} | {t[0] / t[1]:.3f} |")
      print("\n| day measure | real days | rnn days |")
      print("|---|---|---|")
      for k, v in days.items():
        print(f"| {k} | {v['real'][0]:.3f} ± {v['real'][1]:.3f} | "
              f"{v['rnn'][0]:.3f} ± {v['rnn'][1]:.3f} |")
      print(f"discriminative score (log1p days, 3 seeds): {disc[0]:.3f} ± "
            f"{disc[1]:.3f}")
  finally:
    shutil.rmtree(work_root, ignore_errors=True)
  out_path.parent.mkdir(parents=True, exist_ok=True)
  out_path.write_text(json.dumps(result, indent=1, default=float))
  print(f"wrote {out_path}")


if __name__ == "__main__":
  main()
