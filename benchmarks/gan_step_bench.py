"""Speed of the GAN train step: sub-pixel vs transposed-convolution generator.

The baseline is the classic DCGAN generator (stride-2 4x4 transposed
convolutions); the candidate is the default sub-pixel generator (3x3
convolution to 4x the channels + depth-to-space). These are two different
models, not two implementations of one: the sub-pixel layer has 2.25x the
weights of the transposed one, so the ratio says what choosing the default
costs or saves per step, not that one layer computes the same function
faster. Both are timed in the same process, alternating, as the median over
many steps after warm-up, and compared as a ratio (these machines drift
10-20% between runs).

    python benchmarks/gan_step_bench.py                 # 28x28 and 64x64
    python benchmarks/gan_step_bench.py --sizes 28 --steps 30 --batch-size 64

Prints a table and writes benchmarks/results/gan_step_<backend>.json.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import jax
import numpy as np

from medgen_jax.configs import gan
from medgen_jax.data.pipeline import IndexSampler
from medgen_jax.data.registry import load_dataset
from medgen_jax.families.gan import GanTask


def build(size: int, upsample: str, batch_size: int, loss: str):
  c = gan.get_config()
  c.data.image_size = size
  c.data.phantoms.num_train = max(1024, 4 * batch_size)
  c.data.phantoms.num_val = c.data.phantoms.num_test = 0
  c.gan.upsample = upsample
  c.gan.loss = loss
  c.train.batch_size = batch_size
  ds = load_dataset(c.data)
  task = GanTask(c, ds)
  state = jax.jit(task.init_state)(jax.random.key(0))
  step = jax.jit(task.train_step, donate_argnums=0)
  train = ds.split("train")
  sampler = IndexSampler(len(train), batch_size, seed=0)
  batches = [jax.device_put(task.make_batch(train, sampler, i))
             for i in range(4)]
  return [state], step, batches


def time_steps(holder, step, batches, n: int) -> list[float]:
  key = jax.random.key(1)
  out = []
  for i in range(n):
    t = time.perf_counter()
    holder[0], metrics = step(holder[0], batches[i % len(batches)], key)
    jax.block_until_ready((holder[0], metrics))
    out.append(time.perf_counter() - t)
  return out


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--sizes", type=int, nargs="+", default=[28, 64])
  p.add_argument("--batch-size", type=int, default=64)
  p.add_argument("--steps", type=int, default=20, help="timed steps per round")
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--loss", default="nonsaturating")
  p.add_argument("--out", default="benchmarks/results")
  args = p.parse_args()

  rows = []
  for size in args.sizes:
    runs = {u: build(size, u, args.batch_size, args.loss)
            for u in ("transpose", "subpixel")}
    times = {u: [] for u in runs}
    for u, (holder, step, batches) in runs.items():  # compile + warm up
      time_steps(holder, step, batches, 3)
    for _ in range(args.rounds):  # alternate so drift hits both alike
      for u, (holder, step, batches) in runs.items():
        times[u] += time_steps(holder, step, batches, args.steps)
    med = {u: float(np.median(t)) for u, t in times.items()}
    rows.append({
        "image_size": size, "batch_size": args.batch_size, "loss": args.loss,
        "transpose_ms": 1e3 * med["transpose"],
        "subpixel_ms": 1e3 * med["subpixel"],
        "speedup": med["transpose"] / med["subpixel"],
        "subpixel_images_per_s": args.batch_size / med["subpixel"],
        "timed_steps": len(times["subpixel"]),
    })

  print(f"\nGAN train step (1 D + 1 G update), median over "
        f"{args.rounds}x{args.steps} steps, backend {jax.default_backend()}, "
        f"{jax.device_count()} device(s)")
  print(f"{'size':>5} {'batch':>6} {'transpose ms':>13} {'subpixel ms':>12} "
        f"{'speedup':>8} {'img/s':>8}")
  for r in rows:
    print(f"{r['image_size']:>5} {r['batch_size']:>6} {r['transpose_ms']:>13.1f} "
          f"{r['subpixel_ms']:>12.1f} {r['speedup']:>7.2f}x "
          f"{r['subpixel_images_per_s']:>8.0f}")
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  path = out / f"gan_step_{jax.default_backend()}.json"
  path.write_text(json.dumps({
      "benchmark": "gan_step", "backend": jax.default_backend(),
      "devices": [str(d) for d in jax.devices()],
      "machine": platform.platform(), "jax": jax.__version__,
      "rows": rows}, indent=2) + "\n")
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
