"""Tests of medgen_jax/metrics/sleep.py: hand-computed values, YASA and
pyActigraphy (both optional, imported once per module), known properties."""

import math
import warnings

import numpy as np
import pytest

from medgen_jax.data.sleep_stages import UNKNOWN, stage_code
from medgen_jax.errors import DataError
from medgen_jax.metrics import sleep

NAN = float("nan")
HYPNO_DIR = "sleep/hypnograms"
AWD = "sleep/actigraphy/example_01.AWD"


def _assert_stats(got, want):
  assert set(want) <= set(got)
  for key, value in want.items():
    if math.isnan(value):
      assert math.isnan(got[key]), key
    else:
      assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


# ---------------------------------------------------------------- hypnograms


def test_hand_computed_night():
  # epochs: 0  1  2  3  4  5  6  7  8  9   (30 s each, 0.5 min)
  #         W  W  N1 N2 N2 W  N2 R  R  W
  stats = sleep.hypnogram_statistics([0, 0, 1, 2, 2, 0, 2, 4, 4, 0], 30.0)
  assert list(stats) == list(sleep.STAT_KEYS)
  _assert_stats(stats, {
      "TIB": 5.0,           # 10 epochs
      "SPT": 3.5,           # epochs 2..8: 7 epochs
      "TST": 3.0,           # N1 1 + N2 3 + REM 2 = 6 epochs
      "WASO": 0.5,          # epoch 5
      "SE": 60.0,           # 3 / 5
      "SME": 3.0 / 3.5 * 100,
      "SOL": 1.0,           # first sleep at epoch 2
      "REM_latency": 2.5,   # first REM at epoch 7: 5 epochs after onset
      "W": 2.0, "N1": 0.5, "N2": 1.5, "N3": 0.0, "REM": 1.0,
      "%N1": 100 / 6, "%N2": 50.0, "%N3": 0.0, "%REM": 100 / 3,
      "awakenings": 1.0,    # the W at epoch 5
      "unknown": 0.0})


def test_unknown_epochs_count_in_tib_only():
  # epochs: 0  1  2  3  4  5  6  7  8
  #         ?  W  N2 ?  W  W  N2 R  ?
  stats = sleep.hypnogram_statistics([-1, 0, 2, -1, 0, 0, 2, 4, -2], 30.0)
  _assert_stats(stats, {
      "TIB": 4.5,            # all 9 epochs
      "SPT": 3.0,            # epochs 2..7, the ? at 3 included
      "TST": 1.5,            # epochs 2, 6, 7
      "WASO": 1.0,           # epochs 4, 5
      "SE": 1.5 / 4.5 * 100,
      "SME": 50.0,           # 1.5 / 3.0
      "SOL": 1.0,            # from epoch 0 (a ?) to epoch 2
      "REM_latency": 2.5,    # epoch 7 - epoch 2
      "W": 1.5, "N2": 1.0, "REM": 0.5, "%N2": 200 / 3, "%REM": 100 / 3,
      "awakenings": 1.0,     # N2 ? W W: one sleep -> wake change
      "unknown": 1.5})       # epochs 0, 3, 8 (-2 is unknown too)
  # W ? W inside SPT is one awakening; the ? splits the bout.
  stats = sleep.hypnogram_statistics([2, 0, UNKNOWN, 0, 2], 60.0)
  assert stats["awakenings"] == 1.0 and stats["WASO"] == 2.0
  assert list(sleep.bout_lengths([2, 0, UNKNOWN, 0, 2])["W"]) == [1, 1]


def test_nights_without_sleep_give_nan_quietly():
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    wake = sleep.hypnogram_statistics([0, 0, UNKNOWN, 0])
    empty = sleep.hypnogram_statistics(np.zeros(0, int))
    table = sleep.night_statistics_table([[0, 0], [UNKNOWN] * 3])
  _assert_stats(wake, {"TIB": 2.0, "SPT": 0.0, "TST": 0.0, "SE": 0.0,
                       "WASO": NAN, "SME": NAN, "SOL": NAN,
                       "REM_latency": NAN, "W": 1.5, "%N2": NAN,
                       "awakenings": NAN, "unknown": 0.5})
  assert empty["TIB"] == 0.0 and math.isnan(empty["SE"])
  np.testing.assert_array_equal(table["TIB"], [1.0, 1.5])
  # Sleep without REM: REM_latency alone is NaN.
  no_rem = sleep.hypnogram_statistics([0, 2, 2, 0])
  assert math.isnan(no_rem["REM_latency"]) and no_rem["%REM"] == 0.0


def test_transition_matrix_by_hand():
  s = [0, 0, 1, 2, 2, 0, 2, 4, 4, 0]
  # pairs: W-W W-N1 N1-N2 N2-N2 N2-W W-N2 N2-R R-R R-W
  want = np.zeros((5, 5))
  want[0, [0, 1, 2]] = 1
  want[1, 2] = 1
  want[2, [0, 2, 4]] = 1
  want[4, [0, 4]] = 1
  np.testing.assert_array_equal(sleep.transition_matrix(s, normalize=False),
                                want)
  p = sleep.transition_matrix(s)
  np.testing.assert_allclose(p[[0, 2]], want[[0, 2]] / 3)
  np.testing.assert_allclose(p[1], want[1])         # N1 -> N2 only
  np.testing.assert_allclose(p[4], want[4] / 2)     # R -> W, R -> R
  assert np.isnan(p[3]).all()     # N3 never occurs
  # Pairs touching an unknown epoch are left out: W -> N2, N2 -> W remain.
  counts = sleep.transition_matrix([0, UNKNOWN, 0, 2, 0], normalize=False)
  assert counts.sum() == 2 and counts[0, 2] == 1 and counts[2, 0] == 1


def test_bout_lengths_by_hand():
  bouts = sleep.bout_lengths([0, 0, 1, 2, 2, 0, 2, 4, 4, 0, UNKNOWN, 4])
  want = {"W": [2, 1, 1], "N1": [1], "N2": [2, 1], "N3": [], "REM": [2, 1]}
  assert list(bouts) == list(want)
  for name, lengths in want.items():
    assert bouts[name].tolist() == lengths


def test_table_and_errors():
  rng = np.random.default_rng(0)
  nights = rng.integers(-1, 5, (4, 30))
  table = sleep.night_statistics_table(nights, 20.0)
  ragged = sleep.night_statistics_table([n[: 10 + i] for i, n in
                                         enumerate(nights)], 20.0)
  for i, night in enumerate(nights):
    one = sleep.hypnogram_statistics(night, 20.0)
    np.testing.assert_array_equal([table[k][i] for k in one],
                                  list(one.values()))
    assert ragged["TIB"][i] == pytest.approx((10 + i) / 3)
  for bad in ([[0, 1]], [0, 5], ["W"]):
    with pytest.raises(ValueError):
      sleep.hypnogram_statistics(bad)
  with pytest.raises(DataError, match="stages"):
    sleep.transition_matrix([0, 5])


# --------------------------------------------------------------------- YASA


@pytest.fixture(scope="module")
def yasa():
  return pytest.importorskip("yasa")


def _yasa_stats(yasa, hypno):
  with warnings.catch_warnings():   # sleep_statistics is deprecated in 0.8
    warnings.simplefilter("ignore", FutureWarning)
    return yasa.sleep_statistics(np.asarray(hypno), sf_hyp=1 / 30)


def _compare_with_yasa(yasa, hypno):
  ours, theirs = sleep.hypnogram_statistics(hypno, 30.0), _yasa_stats(yasa,
                                                                      hypno)
  shared = ("TIB", "SPT", "TST", "WASO", "SE", "SME", "SOL", "N1", "N2", "N3",
            "REM", "%N1", "%N2", "%N3", "%REM")
  _assert_stats(ours, {k: theirs[k] for k in shared})
  # YASA's Lat_REM counts from the first epoch, ours from sleep onset.
  rem_lat = theirs["Lat_REM"] - theirs["SOL"]
  assert ours["REM_latency"] == pytest.approx(rem_lat, nan_ok=True)


@pytest.mark.parametrize("name,size", [
    ("data_full_6hrs_100Hz_hypno_30s.txt", 720), ("sub-02_hypno_30s.txt", 98)])
def test_against_yasa_on_real_hypnograms(yasa, shared_data_dir, name, size):
  tokens = [t for line in (shared_data_dir / HYPNO_DIR / name).read_text()
            .splitlines() if not line.startswith("#") for t in line.split()]
  hypno = np.array([stage_code(t) for t in tokens])
  assert hypno.size == size and UNKNOWN not in hypno
  _compare_with_yasa(yasa, hypno)
  assert sleep.hypnogram_statistics(hypno)["TIB"] == hypno.size / 2


def test_against_yasa_on_random_hypnograms(yasa):
  rng = np.random.default_rng(1)
  for i in range(40):
    # runs of random stages, unknown (-1, -2) and all-wake nights included
    codes = rng.integers(-2, 5, rng.integers(2, 40))
    hypno = np.repeat(codes, rng.integers(1, 8, codes.size))
    if i % 10 == 0:
      hypno = np.where(hypno > 0, 0, hypno)
    _compare_with_yasa(yasa, hypno)


# ------------------------------------------------------------- Cole-Kripke


def test_cole_kripke_hand_computed_and_borders():
  d = sleep.cole_kripke_index(np.arange(1.0, 11.0))   # A = 1, 2, ..., 10
  # t = 4 (A_t = 5): 106*1 + 54*2 + 58*3 + 76*4 + 230*5 + 74*6 + 67*7
  #   = 106 + 108 + 174 + 304 + 1150 + 444 + 469 = 2755
  assert d[4] == pytest.approx(2.755)
  # t = 0: nothing before the start; 230*1 + 74*2 + 67*3 = 579
  assert d[0] == pytest.approx(0.579)
  # t = 9 (last): 106*6 + 54*7 + 58*8 + 76*9 + 230*10 = 4462, nothing after
  assert d[9] == pytest.approx(4.462)
  # D exactly 1 is wake, just under 1 is sleep: A_{t-3} = 10, A_t = 2 at
  # t = 3 gives 0.001 * (54*10 + 230*2) = 1.
  counts = np.zeros(8)
  counts[[0, 3]] = [10, 2]
  assert sleep.cole_kripke_index(counts)[3] == 1.0
  assert not sleep.cole_kripke(counts)[3]
  counts[0] = 9.99
  assert sleep.cole_kripke(counts)[3]


def test_cole_kripke_mask_and_errors():
  rng = np.random.default_rng(2)
  counts = rng.integers(0, 400, 60).astype(float)
  mask = np.ones(60, bool)
  mask[[10, 11, 40]] = False
  junk = np.where(mask, counts, 1e6)
  zeroed = np.where(mask, counts, 0.0)
  np.testing.assert_array_equal(sleep.cole_kripke_index(junk, mask=mask),
                                sleep.cole_kripke_index(zeroed))
  scored = sleep.cole_kripke(junk, mask=mask)
  assert not scored[~mask].any()
  np.testing.assert_array_equal(scored[mask], sleep.cole_kripke(zeroed)[mask])
  nan_counts = np.where(mask, counts, np.nan)
  np.testing.assert_array_equal(sleep.cole_kripke(nan_counts), scored)
  with pytest.raises(ValueError, match="1-minute"):
    sleep.cole_kripke(counts, epoch_seconds=30.0)
  with pytest.raises(ValueError, match="mask"):
    sleep.cole_kripke(counts, mask=mask.astype(int))


# --------------------------------------------------- IS, IV, L5, M10, RA


def test_is_iv_hand_computed_two_days():
  # 2 days hourly: day 1 = 12 x 0 then 12 x 2; day 2 = 12 x 0 then 12 x 4.
  x = np.r_[[0] * 12, [2] * 12, [0] * 12, [4] * 12].astype(float)
  # N = 48, mean 72/48 = 1.5;
  # sum (x - 1.5)^2 = 24 * 2.25 + 12 * 0.25 + 12 * 6.25 = 54 + 3 + 75 = 132
  # hourly profile: 0 for hours 0-11, 3 for 12-23:
  #   sum_h (x_h - 1.5)^2 = 24 * 2.25 = 54, p = 24
  # IS = N * 54 / (p * 132) = 48 * 54 / (24 * 132) = 9 / 11
  # squared differences: 0->2, 2->0 (midnight), 0->4: 4 + 4 + 16 = 24
  # IV = N * 24 / ((N - 1) * 132) = 1152 / 6204 = 96 / 517
  out = sleep.nonparametric_circadian(x, 3600.0)
  assert out["IS"] == pytest.approx(9 / 11)
  assert out["IV"] == pytest.approx(96 / 517)
  # The same recording in 1-minute epochs gives the same hourly means.
  minutes = sleep.nonparametric_circadian(np.repeat(x, 60), 60.0)
  assert minutes["IS"] == pytest.approx(9 / 11)
  assert minutes["IV"] == pytest.approx(96 / 517)


def test_is_iv_known_limits():
  rng = np.random.default_rng(3)
  day = rng.gamma(2.0, 50.0, 24)
  periodic = sleep.nonparametric_circadian(np.tile(day, 10), 3600.0)
  assert periodic["IS"] == pytest.approx(1.0)
  noise = sleep.nonparametric_circadian(rng.normal(100, 10, 24 * 200), 3600.0)
  assert noise["IS"] < 0.02                 # ~ 1 / days
  assert noise["IV"] == pytest.approx(2.0, abs=0.1)
  hours = np.arange(24 * 20)
  sine = sleep.nonparametric_circadian(100 + 50 * np.sin(2 * np.pi * hours
                                                         / 24), 3600.0)
  # a 24-h sinusoid: IV -> 4 sin^2(pi / 24) = 0.068
  assert sine["IV"] == pytest.approx(4 * np.sin(np.pi / 24) ** 2, rel=0.01)
  assert sine["IS"] == pytest.approx(1.0)
  flat = sleep.nonparametric_circadian(np.full(24 * 3, 5.0), 3600.0)
  assert math.isnan(flat["IS"]) and math.isnan(flat["IV"])
  assert flat["L5"] == flat["M10"] == 5.0 and flat["RA"] == 0.0


@pytest.mark.parametrize("l5_start", [23.0, 2.0])
def test_l5_m10_ra_on_constructed_profile(l5_start):
  epoch = 600.0                                 # 10-minute epochs, 144 a day
  tod = np.arange(144) * epoch / 3600           # hour of day of each epoch
  day = np.full(144, 100.0)
  day[(tod - l5_start) % 24 < 5] = 10.0         # wraps midnight for 23.0
  day[(tod >= 8) & (tod < 18)] = 500.0
  out = sleep.nonparametric_circadian(np.tile(day, 3), epoch)
  assert out["L5"] == pytest.approx(10.0) and out["L5_start"] == l5_start
  assert out["M10"] == pytest.approx(500.0) and out["M10_start"] == 8.0
  assert out["RA"] == pytest.approx(490 / 510)
  # Starting the recording at 06:00 is a clock shift, not a profile shift.
  shifted = sleep.nonparametric_circadian(np.tile(np.roll(day, -36), 3),
                                          epoch, start_seconds_of_day=6 * 3600)
  assert shifted["L5_start"] == l5_start and shifted["M10_start"] == 8.0


def test_masked_epochs_are_excluded():
  rng = np.random.default_rng(4)
  counts = rng.gamma(1.5, 80.0, 3 * 1440)
  mask = rng.random(counts.size) > 0.1
  mask[2000:2600] = False
  out = sleep.nonparametric_circadian(counts, 60.0, 37 * 60, mask)
  for junk in (np.zeros_like(counts), np.full_like(counts, 1e5)):
    again = sleep.nonparametric_circadian(np.where(mask, counts, junk), 60.0,
                                          37 * 60, mask)
    assert again == out
  nan_counts = np.where(mask, counts, np.nan)
  assert sleep.nonparametric_circadian(nan_counts, 60.0, 37 * 60) == out
  zeros = sleep.nonparametric_circadian(np.where(mask, counts, 0.0), 60.0,
                                        37 * 60)
  assert zeros["L5"] != out["L5"]               # zeros would not be excluded
  # A start time is the same as masked epochs since midnight.
  start = int(13.5 * 60)
  late = sleep.nonparametric_circadian(counts, 60.0, start * 60.0, mask)
  padded = sleep.nonparametric_circadian(np.r_[np.zeros(start), counts],
                                         60.0, 0.0, np.r_[np.zeros(start, bool),
                                                          mask])
  assert late == padded
  with pytest.raises(ValueError, match="whole"):
    sleep.nonparametric_circadian(counts, 7.0)


# ------------------------------------------------------------ pyActigraphy


@pytest.fixture(scope="module")
def pyact():
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    return pytest.importorskip("pyActigraphy")


def _read_awd(path):
  """Counts and start (seconds of day) of an Actiwatch AWD file."""
  lines = path.read_text().splitlines()
  hours, minutes = map(int, lines[2].split(":"))
  counts = np.array([float(v.split()[0]) for v in lines[7:] if v.strip()])
  return counts, hours * 3600.0 + minutes * 60.0


def test_against_pyactigraphy(pyact, shared_data_dir):
  import pandas as pd
  path = shared_data_dir / AWD
  counts, start = _read_awd(path)
  assert start == 13 * 3600 + 58 * 60 and counts.size == 18401
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    full = pyact.io.read_raw_awd(str(path))
    # 12 complete days (.loc slicing includes its end, hence 23:59).
    days = pyact.io.read_raw_awd(str(path), period="11 days 23:59:00")
    n = days.data.size
    keep = np.ones(n, bool)
    keep[[*range(3000, 3500), *range(9000, 9100)]] = False
    masked = pyact.io.read_raw_awd(str(path), period="11 days 23:59:00")
    masked.mask = pd.Series(keep.astype(int), index=masked.raw_data.index)
    masked.mask_inactivity = True
    ref = {name: {"IS": r.IS(binarize=False), "IV": r.IV(binarize=False),
                  "L5": r.L5(binarize=False), "M10": r.M10(binarize=False),
                  "RA": r.RA(binarize=False)}
           for name, r in (("full", full), ("days", days), ("masked", masked))}
    ck = full.CK(settings="mean", threshold=1.0, rescoring=False).to_numpy()
  np.testing.assert_array_equal(full.data.to_numpy(), counts)
  ours = sleep.nonparametric_circadian(counts, 60.0, start)
  for key in ("L5", "M10", "RA"):                # clock-aligned 1-min profile
    assert ours[key] == pytest.approx(ref["full"][key], rel=1e-12), key
  assert ours["L5_start"] == pytest.approx(1.1)   # 01:06
  assert ours["M10_start"] == pytest.approx(8.45)  # 08:27
  # pyActigraphy's hourly bins start at the first epoch (13:58): align ours
  # the same way; its variances use ddof=1 (see nonparametric_circadian).
  n_hours, p = n // 60, 24
  days_ours = sleep.nonparametric_circadian(counts[:n], 60.0, 13 * 3600.0)
  assert days_ours["IS"] == pytest.approx(
      ref["days"]["IS"] * (p - 1) / p * n_hours / (n_hours - 1), rel=1e-12)
  assert days_ours["IV"] == pytest.approx(
      ref["days"]["IV"] * n_hours / (n_hours - 1), rel=1e-12)
  # pyActigraphy drops an hour with any masked minute: min_bin_coverage=1.
  m_ours = sleep.nonparametric_circadian(counts[:n], 60.0, 13 * 3600.0, keep,
                                         min_bin_coverage=1.0)
  m_hours = int(keep.reshape(-1, 60).all(1).sum())
  assert m_ours["IV"] == pytest.approx(
      ref["masked"]["IV"] * m_hours / (m_hours - 1), rel=1e-12)
  # with missing hours, pyActigraphy centres the profile on its own mean
  assert m_ours["IS"] == pytest.approx(
      ref["masked"]["IS"] * (p - 1) / p * m_hours / (m_hours - 1), rel=1e-3)
  m_ours = sleep.nonparametric_circadian(counts[:n], 60.0, start, keep)
  for key in ("L5", "M10", "RA"):
    assert m_ours[key] == pytest.approx(ref["masked"][key], rel=1e-12), key
  # Cole-Kripke: pyActigraphy divides 1-min counts by 30 (mean per 2-s
  # epoch) before P = 0.001; its 9-epoch centred window leaves 4 epochs at
  # each end unscored.
  ours_ck = sleep.cole_kripke(counts, scale=0.001 / 30)
  np.testing.assert_array_equal(ours_ck[4:-4], ck[4:-4].astype(bool))


def test_sleep_wake_statistics_by_hand():
  # 1-min epochs: W W S S W ? W S S W  (? = masked)
  asleep = np.array([0, 0, 1, 1, 0, 0, 0, 1, 1, 0], bool)
  valid = np.ones(10, bool)
  valid[5] = False
  out = sleep.sleep_wake_statistics(asleep, valid, 60.0)
  assert out["TIB"] == 10 and out["TST"] == 4 and out["SE"] == 40
  assert out["SOL"] == 2            # two wake minutes before the first sleep
  assert out["WASO"] == 2           # epochs 4 and 6; the masked 5 is neither
  assert out["awakenings"] == 1     # one wake bout (4-6) between sleeps
  none = sleep.sleep_wake_statistics(np.zeros(5, bool), np.ones(5, bool), 30)
  assert none["TST"] == 0 and np.isnan(none["SOL"]) and none["TIB"] == 2.5
