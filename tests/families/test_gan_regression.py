"""The GAN's results do not drift: the tiny 6-step run's final state matches
a fingerprint recorded when the GAN moved onto the generic foundation (and
checked then to be bit-identical to the GAN before it).

Each state array is summarised by its sum and its projection on a fixed
random vector. Changing the data order (another data.seed) moves the
projections by ~500% of their size; the tolerance (0.1%) only absorbs
floating-point differences between CPUs.
"""

import json
import pathlib

import jax
import numpy as np

FINGERPRINT = pathlib.Path(__file__).with_name("gan_tiny_fingerprint.json")


def fingerprint(state):
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
    a = np.asarray(leaf, np.float64).ravel()
    r = np.random.default_rng(0).standard_normal(a.size)
    out[jax.tree_util.keystr(path)] = [float(a.sum()), float(a @ r)]
  return out


def test_tiny_gan_matches_recorded_fingerprint(tiny_gan_run):
  want = json.loads(FINGERPRINT.read_text())
  got = fingerprint(tiny_gan_run["out"]["state"])
  assert sorted(got) == sorted(want)
  for key in want:
    np.testing.assert_allclose(got[key], want[key], rtol=1e-3, atol=1e-5,
                               err_msg=key)
