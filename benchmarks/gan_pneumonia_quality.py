"""GAN sample quality on PneumoniaMNIST: recipes, small data, TSTR.

Every GAN row is scored by `medgen evaluate`'s image report
(families/_image_report.py) with one domain feature extractor (a
`medgen train classifier` run on PneumoniaMNIST's train split; its content
hash is printed): Fréchet distance beside its floor (as many real TRAINING
images against the TEST split: what a perfect generator scores with this
many samples), KID, precision / recall / density / coverage, and the class
mix of the samples as the extractor's classifier labels them against the
same classifier's labels of the real test images. All generated-vs-real
numbers use the 624 TEST images.

Two tables:

  --table recipes   unconditional GANs of the named recipes (RECIPES), on
                    the full train split: the before/after table of the
                    default recipe;
  --table mix       the class mix of the named recipes at every kept
                    checkpoint (train with --checkpoint-every to keep them):
                    --mix-samples images of the EMA generator each, labelled
                    by the extractor's classifier;
  --table small     a conditional recipe on 100 %, 25 % and 10 % of the train
                    split (`--train-fraction`, class-stratified), without and
                    with DiffAugment; besides the quality numbers, train on
                    synthetic, test on real (TSTR: a classifier trained on
                    as many class-conditional samples as the real training
                    set has images, scored on the real test split), the same
                    classifier trained on the real subset (TRTR), and on
                    the real subset plus the samples (synthetic
                    augmentation; subsets < 100 %).

    python benchmarks/gan_pneumonia_quality.py --table recipes \
        --recipes dcgan-v0,default [--steps 3000]
    python benchmarks/gan_pneumonia_quality.py --table mix \
        --recipes dcgan-v0 --steps 9000 --checkpoint-every 500
    python benchmarks/gan_pneumonia_quality.py --table small --recipe default

Runs are cached under --root (a finished run is reused, so a table can be
extended without retraining). Prints a table and writes
benchmarks/results/gan_pneumonia_<table>.json.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import numpy as np

from medgen_jax.configs import classifier as classifier_config
from medgen_jax.configs import gan as gan_config
from medgen_jax.data.registry import load_dataset
from medgen_jax.families import _image_report
from medgen_jax.outputs import save_npz
from medgen_jax.train.checkpoint import Checkpointer
from medgen_jax.train.loop import (CHECKPOINT_DIR, CONFIG_FILE, load_run,
                                   train_and_evaluate)
from medgen_jax.train.task import ReportContext

# Each recipe: config overrides on configs/gan.py as it ships today.
RECIPES = {
    # The recipe as it shipped before the evaluation issue (DCGAN: batch
    # norm in D, non-saturating loss, Adam 2e-4 / 0.5, no augmentation).
    "dcgan-v0": {"gan.d_norm": "batch", "gan.augment": "",
                 "gan.loss": "nonsaturating", "gan.ema_decay": 0.999},
    # Today's defaults (configs/gan.py).
    "default": {},
    "augment": {"gan.augment": "translation,cutout"},
    # ADA: the same operations with a probability adapted toward r_t = 0.6.
    "ada": {"gan.augment": "translation,cutout", "gan.ada_target": 0.6},
    "hinge": {"gan.loss": "hinge"},
    # DiffAugment's translation alone (no cutout).
    "translation": {"gan.augment": "translation"},
    # R1 on D's slope at real images (Mescheder et al. 2018), gamma 0.01.
    "r1": {"gan.r1_weight": 0.01},
    # No normalisation in D (per example, as DP-SGD needs).
    "no-norm-d": {"gan.d_norm": "none"},
    # Twice the learning rate of G and D.
    "lr4e-4": {"optimizer.learning_rate": 4e-4},
    # The same, held for 6000 steps (where it levels off), then decayed
    # linearly to 0 at --steps (which must be above 6000).
    "lr4e-4-anneal": {"optimizer.learning_rate": 4e-4,
                      "optimizer.schedule": "linear",
                      "optimizer.decay_begin": 6000},
    # D's minibatch standard deviation feature over groups of 4.
    "minibatch-std": {"gan.d_minibatch_std": 4},
    # G without batch norm: pixel norm (per example) or nothing.
    "g-pixel": {"gan.g_norm": "pixel"},
    "g-none": {"gan.g_norm": "none"},
    # D's batch norm over real and generated images as one batch.
    "joint-batch": {"gan.d_joint_batch": True},
    # PacGAN: D judges pairs of examples.
    "pack2": {"gan.d_pack": 2},
    # G twice as wide as D.
    "g-width-128": {"gan.g_width": 128},
    "layer-d": {"gan.d_norm": "layer"},
    "layer-d-augment": {"gan.d_norm": "layer",
                        "gan.augment": "translation,cutout"},
}
QUALITY_KEYS = ("fd", "fd_floor", "fd_floor_std", "fd_ratio", "kid_mean",
                "precision",
                "recall", "density", "coverage",
                "class_mix/max_gap_vs_real_classifier",
                "class_mix/max_gap_standard_error",
                "memorisation_pixels/p_fake_closer")


def _set(config, overrides: dict) -> None:
  for path, value in overrides.items():
    node = config
    *parents, leaf = path.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value


def _finished(workdir: pathlib.Path, steps: int) -> bool:
  log = workdir / "metrics.jsonl"
  if not log.is_file():
    return False
  lines = [json.loads(l) for l in log.read_text().splitlines() if l.strip()]
  return any(r.get("step") == steps for r in lines)


def _train(config, workdir: pathlib.Path) -> float:
  """Trains unless a finished run is there; returns seconds spent."""
  if _finished(workdir, config.train.steps):
    return 0.0
  if workdir.exists():
    raise SystemExit(f"{workdir} holds an unfinished run; delete it")
  t0 = time.perf_counter()
  train_and_evaluate(config, workdir)
  return time.perf_counter() - t0


def extractor(args) -> pathlib.Path:
  path = pathlib.Path(args.extractor)
  if (path / CONFIG_FILE).is_file():
    return path
  c = classifier_config.get_config()
  c.data.name = "pneumoniamnist"
  c.data.data_dir = args.data_dir
  c.train.steps = args.extractor_steps
  c.train.progress = False
  _train(c, path)
  return path


def gan_config_for(args, recipe: str, fraction: float, conditional: bool,
                   extra: dict | None = None):
  c = gan_config.get_config()
  c.data.name = "pneumoniamnist"
  c.data.data_dir = args.data_dir
  c.data.train_fraction = fraction
  c.train.steps = args.steps
  c.train.eval_every = args.steps
  c.train.checkpoint_every = args.checkpoint_every or args.steps
  c.train.keep_checkpoints = max(3, args.steps // c.train.checkpoint_every)
  c.train.progress = False
  c.gan.conditional = conditional
  _set(c, RECIPES[recipe])
  _set(c, extra or {})
  return c


def quality(workdir: pathlib.Path, extractor_dir, full_data, seed: int):
  """The image report of a GAN run against the full dataset's splits (the
  floor always uses as many full-train-split images as samples)."""
  run = load_run(workdir)
  report = run.task.report(run.state, full_data, ReportContext(
      step=run.step, seed=seed, options={"extractor": str(extractor_dir)}))
  return run, report


def classifier_run(args, workdir, data_name, fraction=1.0, add_samples="",
                   eval_name=""):
  c = classifier_config.get_config()
  c.data.name = data_name
  c.data.data_dir = args.data_dir
  c.data.train_fraction = fraction
  c.data.add_samples = add_samples
  c.data.eval_name = eval_name
  c.train.steps = args.classifier_steps
  c.train.eval_every = args.classifier_steps
  c.train.checkpoint_every = args.classifier_steps
  c.train.progress = False
  _train(c, workdir)
  last = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text()
          .splitlines() if l.strip()][-1]
  return {"accuracy": last["eval/test_accuracy"],
          "balanced_accuracy": last["eval/test_balanced_accuracy"]}


def table_recipes(args, ext, full_data) -> list[dict]:
  rows = []
  for recipe in args.recipes.split(","):
    workdir = args.root / f"recipe-{recipe}-s{args.steps}"
    secs = _train(gan_config_for(args, recipe, 1.0, False), workdir)
    _, report = quality(workdir, ext, full_data, args.seed)
    row = {"recipe": recipe, "train_seconds": round(secs, 1)}
    row.update({k: report.scalars[k] for k in QUALITY_KEYS})
    mix = report.tables["Class mix"]
    row["normal_generated"] = mix[0]["generated (classifier)"]
    row["normal_real_val_classifier"] = mix[0]["real val (classifier)"]
    row["normal_real_val_labels"] = mix[0]["real val (labels)"]
    rows.append(row)
    print(json.dumps(row))
  return rows


def table_mix(args, ext, full_data) -> list[dict]:
  """Share of "normal" samples at every kept checkpoint of each recipe."""
  ext_run = load_run(ext)
  train = full_data.split("train")["label"]
  prior = np.bincount(train, minlength=full_data.num_classes)
  normal = list(full_data.class_names).index("normal")
  rows = []
  for recipe in args.recipes.split(","):
    workdir = args.root / f"recipe-{recipe}-s{args.steps}"
    _train(gan_config_for(args, recipe, 1.0, False), workdir)
    with Checkpointer(workdir / CHECKPOINT_DIR, create=False) as ckpt:
      steps = ckpt.all_steps()  # complete checkpoints only
    for step in steps:
      run = load_run(workdir, step)
      model = run.task.image_model(run.state)
      _, _, images = _image_report.generate(model, args.mix_samples,
                                            args.seed, prior)
      _, logits = ext_run.task.predict_arrays(ext_run.state, images)
      share = float(np.mean(np.argmax(logits, -1) == normal))
      rows.append({"recipe": recipe, "step": step,
                   "samples": args.mix_samples, "normal_generated": share})
      print(json.dumps(rows[-1]))
  return rows


def table_small(args, ext, full_data) -> list[dict]:
  rows = []
  train_n = len(full_data.split("train"))
  prior = np.bincount(full_data.split("train")["label"], minlength=2)
  for fraction in (float(f) for f in args.fractions.split(",")):
    trtr = classifier_run(args, args.root / f"cls-real-f{fraction}",
                          "pneumoniamnist", fraction)
    for augment in ("", args.augment):
      name = f"small-{args.recipe}-f{fraction}-{'aug' if augment else 'noaug'}"
      workdir = args.root / name
      secs = _train(gan_config_for(args, args.recipe, fraction, True,
                                   {"gan.augment": augment}), workdir)
      run, report = quality(workdir, ext, full_data, args.seed)
      samples = args.root / f"{name}-samples.npz"
      if not samples.is_file():
        model = run.task.image_model(run.state)
        _, labels, images = _image_report.generate(model, train_n,
                                                   args.seed + 7, prior)
        save_npz(samples, {"image": images, "label": labels,
                           "class_names": np.asarray(
                               full_data.class_names)})
      tstr = classifier_run(args, args.root / f"cls-tstr-{name}",
                            str(samples), eval_name="pneumoniamnist")
      row = {"train_fraction": fraction, "augment": augment or "none",
             "gan_seconds": round(secs, 1)}
      row.update({k: report.scalars[k] for k in QUALITY_KEYS})
      row["classifier_agrees"] = report.scalars.get(
          "class_mix/classifier_agrees")
      row["tstr_accuracy"] = tstr["accuracy"]
      row["tstr_balanced"] = tstr["balanced_accuracy"]
      row["trtr_accuracy"] = trtr["accuracy"]
      row["trtr_balanced"] = trtr["balanced_accuracy"]
      if fraction < 1.0:
        mixed = classifier_run(args, args.root / f"cls-mixed-{name}",
                               "pneumoniamnist", fraction, str(samples))
        row["real_plus_synthetic_accuracy"] = mixed["accuracy"]
        row["real_plus_synthetic_balanced"] = mixed["balanced_accuracy"]
      rows.append(row)
      print(json.dumps(row))
  return rows


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--table", choices=("recipes", "mix", "small"), required=True)
  p.add_argument("--data-dir", default="../shared/data/medmnist")
  p.add_argument("--root", default="runs/gan-quality", type=pathlib.Path)
  p.add_argument("--extractor", default="runs/gan-quality/extractor")
  p.add_argument("--extractor-steps", type=int, default=2000)
  p.add_argument("--steps", type=int, default=3000)
  p.add_argument("--checkpoint-every", type=int, default=0,
                 help="GAN checkpoints every N steps (default: --steps)")
  p.add_argument("--mix-samples", type=int, default=2000)
  p.add_argument("--recipes", default="dcgan-v0,default")
  p.add_argument("--recipe", default="default")
  p.add_argument("--fractions", default="1.0,0.25,0.1")
  p.add_argument("--augment", default="translation,cutout")
  p.add_argument("--classifier-steps", type=int, default=1000)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--out", default=None)
  args = p.parse_args()
  args.root.mkdir(parents=True, exist_ok=True)
  ext = extractor(args)
  full = gan_config.get_config()
  full.data.name, full.data.data_dir = "pneumoniamnist", args.data_dir
  full_data = load_dataset(full.data)
  t0 = time.perf_counter()
  table = {"recipes": table_recipes, "mix": table_mix,
           "small": table_small}[args.table]
  rows = table(args, ext, full_data)
  ext_run = load_run(ext)
  result = {"table": args.table, "steps": args.steps,
            "extractor": str(ext),
            "extractor_hash": ext_run.metadata.get("extractor_hash"),
            "classifier_steps": args.classifier_steps,
            "machine": platform.processor() or platform.machine(),
            "seconds": round(time.perf_counter() - t0, 1), "rows": rows}
  cols = list(rows[0])
  print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
  for r in rows:
    print("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v)
                            for v in r.values()) + " |")
  print(f"extractor {ext} (hash {result['extractor_hash']})")
  out = pathlib.Path(args.out or
                     f"benchmarks/results/gan_pneumonia_{args.table}.json")
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=2) + "\n")
  print(f"wrote {out}")


if __name__ == "__main__":
  main()
