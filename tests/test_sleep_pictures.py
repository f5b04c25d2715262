"""sleep_pictures: days of an actogram and the stage rows of a hypnogram."""

import numpy as np

from medgen_jax import sleep_pictures as sp


def test_a_window_from_noon_spans_two_calendar_days():
  x = np.arange(1440, dtype=float)
  days = sp._days(x, np.ones(1440, bool), 12 * 3600.0, 60.0)
  assert len(days) == 2
  (v0, m0), (v1, m1) = days
  assert not m0[:720].any() and m0[720:].all()       # before noon: padding
  np.testing.assert_array_equal(v0[720:], x[:720])
  np.testing.assert_array_equal(v1[:720], x[720:])
  assert not m1[720:].any()
  # a clock time of 23:59:59.9 rounds to the next midnight, not a lost day
  assert len(sp._days(x, np.ones(1440, bool), 86399.9, 60.0)) == 1


def test_actogram_and_hypnogram_draw_their_groups():
  rng = np.random.default_rng(0)
  counts = rng.poisson(50, (2, 2880)).astype(float)
  mask = np.ones((2, 2880), bool)
  mask[0, :100] = False
  img = sp.actogram([counts, counts[:1]], [mask, mask[:1]],
                    [np.zeros(2), np.zeros(1)], ["real", "generated"], 60.0)
  # 6 day rows (4 + 2) and two titles
  assert img.shape == (1, 2 * (sp.TITLE_HEIGHT + 2) + 6 * 29, 720, 3)
  assert img.min() >= -1 and img.max() <= 1
  grey = (np.asarray(sp.MASKED) / 127.5 - 1)
  first_row = img[0, sp.TITLE_HEIGHT + 3:sp.TITLE_HEIGHT + 3 + 27, :20]
  assert np.isclose(first_row, grey).all(-1).any()    # non-wear is shaded
  stages = rng.integers(0, 5, (3, 100))
  hyp = sp.hypnogram_panel([stages], [np.ones((3, 100), bool)], ["nights"])
  assert hyp.shape == (1, sp.TITLE_HEIGHT + 2 + 3 * 61, 720, 3)
