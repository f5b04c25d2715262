"""Nearest-neighbour memorisation checks: exact neighbours (against brute
force, across blocks), and the copy statistics on hand-built distances."""

import numpy as np
import pytest

from medgen_jax.errors import ConfigError
from medgen_jax.metrics import memorisation


def test_nearest_neighbours_match_brute_force_across_blocks(monkeypatch):
  rng = np.random.default_rng(0)
  queries = rng.normal(size=(37, 3, 4))
  reference = rng.normal(size=(50, 12))
  monkeypatch.setattr(memorisation, "_BLOCK", 100)  # 2 query rows per block
  idx, dist = memorisation.nearest_neighbours(queries, reference)
  full = np.linalg.norm(queries.reshape(37, 1, 12) - reference[None], axis=-1)
  np.testing.assert_array_equal(idx, full.argmin(1))
  np.testing.assert_allclose(dist, full.min(1), rtol=1e-9, atol=1e-9)


def test_a_copy_is_at_distance_zero():
  reference = np.random.default_rng(1).normal(size=(20, 5))
  idx, dist = memorisation.nearest_neighbours(reference[[3, 7]], reference)
  np.testing.assert_array_equal(idx, [3, 7])
  np.testing.assert_allclose(dist, 0.0, atol=1e-6)


def test_copy_report_by_hand():
  # fake 1 vs held-out {1, 3}: one tie (0.5), one larger (1) -> 0.75;
  # fake 2: one smaller, one larger -> 0.5; mean 0.625.
  r = memorisation.copy_report([1.0, 2.0], [1.0, 3.0])
  assert r["p_fake_closer"] == pytest.approx(0.625)
  assert r["fake_q50"] == pytest.approx(1.5)
  assert r["held_out_q50"] == pytest.approx(2.0)


def test_copy_report_separates_copies_from_new_data():
  rng = np.random.default_rng(2)
  held_out = rng.gamma(5.0, 1.0, size=4000)
  same = memorisation.copy_report(rng.gamma(5.0, 1.0, size=4000), held_out)
  assert same["p_fake_closer"] == pytest.approx(0.5, abs=0.02)
  assert same["fake_below_held_out_q05"] == pytest.approx(0.05, abs=0.015)
  copies = memorisation.copy_report(np.zeros(100), held_out)
  assert copies["p_fake_closer"] == 1.0
  assert copies["fake_below_held_out_q01"] == 1.0


def test_bad_input_is_refused():
  with pytest.raises(ConfigError, match="values per row"):
    memorisation.nearest_neighbours(np.zeros((2, 3)), np.zeros((2, 4)))
  with pytest.raises(ConfigError, match="NaN"):
    memorisation.nearest_neighbours(np.full((2, 3), np.nan), np.zeros((2, 3)))
  with pytest.raises(ConfigError, match="at least one"):
    memorisation.copy_report([], [1.0])
