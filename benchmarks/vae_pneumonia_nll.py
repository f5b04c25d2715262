"""Held-out likelihood of the conv VAE on PneumoniaMNIST (28x28 chest X-rays).

Trains `medgen train vae` (discretised-logistic likelihood, the embedded
default) on the train split for a stated budget, then scores the TEST split
(624 images, never seen in training or model selection) with the
importance-weighted bound (Burda et al. 2016) with K samples: negative
log-likelihood in nats per image and bits per dimension. For scale, two
references scored the same way on the same images: 8 bits/dim (uniform
over 256 levels) and an independent per-pixel histogram fitted on the train
split (256 bins per pixel, add-one smoothing), the best model that ignores
how pixels co-vary.

    python benchmarks/vae_pneumonia_nll.py [--data-dir ../shared/data/medmnist] [--steps 3000]

Prints a table and writes benchmarks/results/vae_pneumonia_nll.json.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import platform
import tempfile
import time

import jax
import numpy as np

from medgen_jax.configs import vae as vae_config
from medgen_jax.data.registry import load_dataset
from medgen_jax.train.loop import load_run, train_and_evaluate


def histogram_bits_per_dim(train: np.ndarray, test: np.ndarray) -> float:
  """NLL of independent per-pixel 256-bin histograms (add-one), bits/dim."""
  train = train.reshape(len(train), -1).astype(np.int64)
  test = test.reshape(len(test), -1).astype(np.int64)
  d = train.shape[1]
  counts = np.ones((d, 256))
  np.add.at(counts, (np.broadcast_to(np.arange(d), train.shape), train), 1)
  log_p = np.log(counts / counts.sum(1, keepdims=True))
  nll = -log_p[np.arange(d), test].sum(1).mean()
  return float(nll / (d * math.log(2)))


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data-dir", default="../shared/data/medmnist")
  p.add_argument("--steps", type=int, default=3000)
  p.add_argument("--batch-size", type=int, default=64)
  p.add_argument("--latent-dim", type=int, default=32)
  p.add_argument("--width", type=int, default=32)
  p.add_argument("--lr", type=float, default=1e-3)
  p.add_argument("--iwae-samples", type=int, default=100)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--out", default="benchmarks/results")
  p.add_argument("--workdir", default="",
                 help="keep the run here (samples, reconstructions, traversal "
                 "PNGs); default: a temporary folder")
  args = p.parse_args()

  c = vae_config.get_config()
  c.data.name = "pneumoniamnist"
  c.data.data_dir = args.data_dir
  c.seed = c.data.seed = args.seed
  c.vae.latent_dim, c.vae.width = args.latent_dim, args.width
  c.vae.iwae_samples = args.iwae_samples
  c.optimizer.learning_rate = args.lr
  c.train.steps, c.train.batch_size = args.steps, args.batch_size
  c.train.log_every = max(1, args.steps // 10)
  c.train.eval_every = c.train.checkpoint_every = args.steps
  c.train.num_devices, c.train.progress = 1, False

  t0 = time.perf_counter()
  with tempfile.TemporaryDirectory() as tmp:
    workdir = pathlib.Path(args.workdir or pathlib.Path(tmp) / "run")
    train_and_evaluate(c, workdir)
    run = load_run(workdir)
  train_s = time.perf_counter() - t0
  ds = load_dataset(run.config.data)
  test = ds.split("test")
  t0 = time.perf_counter()
  scores = run.task.held_out_scores(
      run.state, run.task.to_batch(test.arrays), jax.random.key(args.seed + 1))
  score_s = time.perf_counter() - t0
  hist = histogram_bits_per_dim(ds.split("train")["image"], test["image"])
  dims = int(np.prod(test["image"].shape[1:]))
  rows = [
      {"model": "uniform over 256 levels", "bits_per_dim": 8.0,
       "nll_nats": 8.0 * dims * math.log(2)},
      {"model": "per-pixel histogram (train)", "bits_per_dim": hist,
       "nll_nats": hist * dims * math.log(2)},
      {"model": f"conv VAE, IWAE K={args.iwae_samples}",
       "bits_per_dim": scores["bits_per_dim"],
       "nll_nats": scores["iwae_nll"], "elbo_nats": scores["elbo"]},
  ]
  print(f"\nPneumoniaMNIST test split ({len(test)} images, {dims} dims), VAE "
        f"trained {args.steps} steps x batch {args.batch_size} "
        f"({train_s:.0f} s training, {score_s:.0f} s scoring), "
        f"backend {jax.default_backend()}")
  print(f"{'model':<30} {'NLL nats/image':>15} {'bits/dim':>9}")
  for r in rows:
    print(f"{r['model']:<30} {r['nll_nats']:>15.1f} {r['bits_per_dim']:>9.3f}")
  print(f"(conv VAE ELBO on the same images: {scores['elbo']:.1f} nats; the "
        "IWAE bound is tighter)")
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  path = out / "vae_pneumonia_nll.json"
  path.write_text(json.dumps({
      "benchmark": "vae_pneumonia_nll", "args": vars(args), "rows": rows,
      "train_seconds": train_s, "machine": platform.platform(),
      "jax": jax.__version__}, indent=2) + "\n")
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
