"""Robust VAE objectives on noisy PneumoniaMNIST: held-out NLL of CLEAN images.

The training images are corrupted (seeded): Gaussian noise with a standard
deviation of 10% of the pixel range (25.5 levels) plus 5% salt-and-pepper
pixels, clipped to uint8; val and test stay clean. Each row trains the conv
VAE on that noisy train split (the reference row on the clean one) for the
same budget and scores the clean TEST split (624 images) with the
importance-weighted bound (Burda et al. 2016), K samples, in bits/dim. All
likelihoods are normalised over the 256 levels, so the numbers compare.

Rows: the discretised logistic (baseline), Laplace and Student-t
likelihoods, the logistic with the denoising criterion (Im et al. 2017;
the encoder sees an extra gaussian corruption of its input, --denoise), and
the logistic trained on clean images.

    python benchmarks/vae_noisy.py [--data-dir ../shared/data/medmnist] \
        [--steps 150] [--iwae-samples 10]

Prints a table and writes benchmarks/results/vae_noisy.json.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import tempfile
import time

import jax
import numpy as np

from medgen_jax.configs import vae as vae_config
from medgen_jax.data.base import Dataset, Split
from medgen_jax.data.registry import DATASETS, load_dataset
from medgen_jax.train.loop import load_run, train_and_evaluate

NOISY_NAME = "pneumoniamnist_noisy_train"


def corrupt_uint8(images: np.ndarray, sigma: float, salt_pepper: float,
                  seed: int) -> np.ndarray:
  """Gaussian noise (sigma in levels) + salt-and-pepper, clipped to uint8."""
  rng = np.random.default_rng(seed)
  noisy = images.astype(np.float32) + sigma * rng.standard_normal(images.shape)
  u = rng.random(images.shape)
  noisy = np.where(u < 0.5 * salt_pepper, 0.0,
                   np.where(u < salt_pepper, 255.0, noisy))
  return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def register_noisy(clean: Dataset, sigma: float, salt_pepper: float,
                   seed: int) -> None:
  """Registers NOISY_NAME: `clean` with its train images corrupted."""
  train = clean.split("train")
  noisy = corrupt_uint8(train["image"], sigma, salt_pepper, seed)
  splits = {"train": Split({"image": noisy, "label": train["label"]})}
  splits.update({s: clean.split(s) for s in ("val", "test")})

  @DATASETS.register(NOISY_NAME)
  def _load(data_config):
    del data_config
    return Dataset(NOISY_NAME, splits, source=f"{clean.source} (noisy train)",
                   modality="image", metadata=dict(clean.metadata))


def run_row(args, data_name: str, likelihood: str, denoise: str,
            tmp: pathlib.Path, tag: str) -> dict:
  c = vae_config.get_config()
  c.data.name = data_name
  c.data.data_dir = args.data_dir
  c.seed = c.data.seed = args.seed
  c.vae.likelihood, c.vae.denoise = likelihood, denoise
  c.vae.student_t_df = args.df
  c.vae.latent_dim, c.vae.width = args.latent_dim, args.width
  c.vae.iwae_samples, c.vae.eval_examples = args.iwae_samples, 64
  c.optimizer.learning_rate = args.lr
  c.train.steps, c.train.batch_size = args.steps, args.batch_size
  c.train.log_every = max(1, args.steps // 5)
  c.train.eval_every = c.train.checkpoint_every = args.steps
  c.train.num_devices, c.train.progress = 1, False
  t0 = time.perf_counter()
  workdir = tmp / tag
  train_and_evaluate(c, workdir)
  train_s = time.perf_counter() - t0
  run = load_run(workdir)
  test = load_dataset(run.config.data).split("test")
  t0 = time.perf_counter()
  scores = run.task.held_out_scores(
      run.state, run.task.to_batch(test.arrays), jax.random.key(args.seed + 1))
  return {"bits_per_dim": scores["bits_per_dim"],
          "nll_nats": scores["iwae_nll"], "elbo_nats": scores["elbo"],
          "train_seconds": train_s,
          "score_seconds": time.perf_counter() - t0}


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data-dir", default="../shared/data/medmnist")
  p.add_argument("--steps", type=int, default=150)
  p.add_argument("--batch-size", type=int, default=64)
  p.add_argument("--latent-dim", type=int, default=32)
  p.add_argument("--width", type=int, default=32)
  p.add_argument("--lr", type=float, default=1e-3)
  p.add_argument("--iwae-samples", type=int, default=10)
  p.add_argument("--df", type=float, default=3.0,
                 help="Student-t degrees of freedom")
  p.add_argument("--noise-sigma", type=float, default=25.5,
                 help="Gaussian noise std in levels (25.5 = 10%% of range)")
  p.add_argument("--salt-pepper", type=float, default=0.05)
  p.add_argument("--denoise", default="gaussian:0.2",
                 help="--denoise of the denoising row (0.2 in [-1, 1] units "
                 "= 10%% of the range)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--out", default="benchmarks/results")
  args = p.parse_args()

  c = vae_config.get_config()
  c.data.name, c.data.data_dir = "pneumoniamnist", args.data_dir
  clean = load_dataset(c.data)
  register_noisy(clean, args.noise_sigma, args.salt_pepper, args.seed + 99)
  specs = [
      ("logistic (baseline)", NOISY_NAME, "discretized_logistic", ""),
      ("laplace", NOISY_NAME, "discretized_laplace", ""),
      (f"student-t (df={args.df:g})", NOISY_NAME, "discretized_student_t", ""),
      (f"logistic + denoise {args.denoise}", NOISY_NAME,
       "discretized_logistic", args.denoise),
      ("logistic, CLEAN train (ref.)", "pneumoniamnist",
       "discretized_logistic", ""),
  ]
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for i, (label, data, likelihood, denoise) in enumerate(specs):
      r = run_row(args, data, likelihood, denoise, pathlib.Path(tmp), str(i))
      rows.append({"model": label, "train_data": "clean" if data ==
                   "pneumoniamnist" else "noisy", "likelihood": likelihood,
                   "denoise": denoise, **r})
      print(f"  {label}: {r['bits_per_dim']:.3f} bits/dim "
            f"({r['train_seconds']:.0f} s train, {r['score_seconds']:.0f} s "
            "score)", flush=True)
  test = clean.split("test")
  dims = int(np.prod(test["image"].shape[1:]))
  print(f"\nPneumoniaMNIST CLEAN test split ({len(test)} images, {dims} dims); "
        f"train images noisy (Gaussian std {args.noise_sigma:g} levels + "
        f"{args.salt_pepper:.0%} salt-and-pepper); {args.steps} steps x batch "
        f"{args.batch_size}; IWAE K={args.iwae_samples}; backend "
        f"{jax.default_backend()}")
  print(f"{'model':<36} {'train':>6} {'NLL nats/image':>15} {'bits/dim':>9}")
  for r in rows:
    print(f"{r['model']:<36} {r['train_data']:>6} {r['nll_nats']:>15.1f} "
          f"{r['bits_per_dim']:>9.3f}")
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  path = out / "vae_noisy.json"
  path.write_text(json.dumps({
      "benchmark": "vae_noisy", "args": vars(args), "rows": rows,
      "test_images": len(test), "dims": dims, "machine": platform.platform(),
      "jax": jax.__version__}, indent=2) + "\n")
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
