"""Speed of the 3-D discriminator: strided convolutions vs Downsample2x.

Both sides compute the same function with the same parameters: the
baseline is `nn.Conv(f, (4, 4, 4), strides=2, padding="SAME")`, the
candidate `models.layers.Downsample2x` (space-to-depth, then a 2x2x2
stride-1 convolution), the form the 3-D discriminator and VAE encoder use.
Timed is the gradient of a sum over the discriminator's stride-2 stack
(32^3 -> 4^3, widths w, 2w, 4w) with respect to its parameters and input,
as the median over repeats after warm-up, alternating the two in one
process, compared as a ratio (machines drift 10-20% between runs). The
outputs are checked equal first.

    python benchmarks/volume_conv_bench.py [--size 32] [--width 16] [--batch-size 8]

Prints a table and writes benchmarks/results/volume_conv_<backend>.json.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from medgen_jax.models.layers import Downsample2x, num_resolution_stages


class Stack(nn.Module):
  width: int
  stages: int
  fast: bool

  @nn.compact
  def __call__(self, x):
    for i in range(self.stages):
      f = self.width * 2 ** i
      if self.fast:
        x = Downsample2x(f, name=f"down{i}")(x)
      else:
        x = nn.Conv(f, (4, 4, 4), strides=(2, 2, 2), padding="SAME",
                    name=f"down{i}")(x)
      x = nn.leaky_relu(x, 0.2)
    return x


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--size", type=int, default=32)
  p.add_argument("--width", type=int, default=16)
  p.add_argument("--batch-size", type=int, default=8)
  p.add_argument("--repeats", type=int, default=7)
  p.add_argument("--out", default="benchmarks/results")
  args = p.parse_args()
  _, stages = num_resolution_stages(args.size)
  x = jax.random.normal(jax.random.key(0),
                        (args.batch_size,) + (args.size,) * 3 + (1,))
  models = {"nn.Conv stride 2": Stack(args.width, stages, False),
            "Downsample2x": Stack(args.width, stages, True)}
  params = models["Downsample2x"].init(jax.random.key(1), x)
  grads, outs = {}, {}
  for name, m in models.items():
    outs[name] = np.asarray(m.apply(params, x))
    grads[name] = jax.jit(jax.grad(
        lambda p, x, m=m: jnp.sum(jnp.tanh(m.apply(p, x))), argnums=(0, 1)))
    jax.block_until_ready(grads[name](params, x))  # compile
  a, b = outs.values()
  rel = float(np.abs(a - b).max() / np.abs(a).max())
  times = {name: [] for name in models}
  for _ in range(args.repeats):
    for name, g in grads.items():
      t = time.perf_counter()
      jax.block_until_ready(g(params, x))
      times[name].append(time.perf_counter() - t)
  med = {k: float(np.median(v)) for k, v in times.items()}
  ratio = med["nn.Conv stride 2"] / med["Downsample2x"]
  backend = jax.default_backend()
  print(f"3-D discriminator stack {args.size}^3, width {args.width}, batch "
        f"{args.batch_size}, {backend} ({platform.processor() or 'cpu'}); "
        f"outputs agree to {rel:.1e} (relative)")
  print("| form | median grad time (s) |")
  print("|---|---|")
  for k, v in med.items():
    print(f"| {k} | {v:.4f} |")
  print(f"speed-up (same function, same parameters): {ratio:.1f}x")
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / f"volume_conv_{backend}.json").write_text(json.dumps({
      "size": args.size, "width": args.width, "batch_size": args.batch_size,
      "backend": backend, "median_seconds": med, "times": times,
      "speedup": ratio, "max_relative_difference": rel}, indent=2) + "\n")


if __name__ == "__main__":
  main()
