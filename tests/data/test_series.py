"""Series datasets: options, resampling, windows, beat segments, derived
series, splits, normalisation, the "series" modality and the sources
(WFDB files and folders, CSV files, sines)."""

import collections

import numpy as np
import pytest

from medgen_jax.configs.base import get_base_config
from medgen_jax.configs.series import (SERIES_FLAGS, add_series_data_options,
                                       flag_text,
                                       validate_series_data_options)
from medgen_jax.data import series
from medgen_jax.data.base import Dataset, Split, check_dataset
from medgen_jax.data.registry import dataset_names, load_dataset
from medgen_jax.data.series_sources import generate_sines
from medgen_jax.data.signals import Recording
from medgen_jax.errors import ConfigError, DataError


def _data(name="test", **fields):
  """The data section of a config with the series options."""
  c = get_base_config()
  add_series_data_options(c.data)
  c.data.name = str(name)
  for key, value in fields.items():
    c.data[key] = value
  return c.data


def _raises(cls, fn, *args, **kwargs):
  with pytest.raises(cls) as info:
    fn(*args, **kwargs)
  message = str(info.value)
  assert "\n" not in message
  return message


def _rec(x, rate=100.0, name="r", channels=None, units=None, beats=None,
         symbols=None):
  x = np.asarray(x, np.float64)
  x = x[:, None] if x.ndim == 1 else x
  c = x.shape[1]
  return Recording(name, x, channels or tuple(f"c{i}" for i in range(c)),
                   units or ("mV",) * c, rate,
                   beats=None if beats is None else np.asarray(beats),
                   beat_symbols=None if symbols is None else tuple(symbols),
                   source=f"{name}.hea")


def _build(recs, **fields):
  ds = series.series_dataset(recs, _data(**fields), "test", "test-source")
  return check_dataset(ds)


def _ramp(n, **kw):
  """A recording whose value is its sample index (normalize none: x = t)."""
  return _rec(np.arange(n, dtype=np.float64), **kw)


# --- options -----------------------------------------------------------------


def test_flags_name_existing_fields():
  data = _data()
  validate_series_data_options(data)
  flags = [f for f, _, _ in SERIES_FLAGS]
  assert len(set(flags)) == len(flags)
  for _, path, _ in SERIES_FLAGS:
    assert path.split(".", 1)[1] in data
  assert flag_text("window", "250") == "--window 250"
  assert flag_text("sines_channels", "3") == "--set data.sines_channels=3"


@pytest.mark.parametrize("fields, flag", [
    ({"segment": "beats"}, "--segment"),
    ({"normalize": "robust"}, "--normalize"),
    ({"derive": "spo2"}, "--derive"),
    ({"window": 1}, "--window"),
    ({"stride": -1}, "--stride"),
    ({"rate": -5.0}, "--rate"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, "--val-fraction"),
    ({"min_valid": 0.0}, "--min-valid"),
    ({"derive": "heart_rate", "segment": "beat"}, "--derive"),
    ({"beat_before": 0.0, "beat_after": 0.0}, "--beat-before"),
    ({"annotation": "a/b"}, "--annotation"),
    ({"channels": "MLII,,V5"}, "--channels"),
])
def test_bad_options_name_their_flag(fields, flag):
  assert flag in _raises(ConfigError, validate_series_data_options,
                         _data(**fields))


# --- resampling --------------------------------------------------------------


def test_resampling_a_sine_keeps_its_frequency():
  t = np.arange(3600) / 360.0
  x = np.sin(2 * np.pi * 5.0 * t)[:, None]  # 5 Hz at 360 Hz, 10 s
  y = series.resample_signals(x, 360.0, 125.0)
  assert y.shape == (1250, 1)
  spectrum = np.abs(np.fft.rfft(y[:, 0]))
  assert np.fft.rfftfreq(1250, 1 / 125.0)[np.argmax(spectrum)] == 5.0
  expected = np.sin(2 * np.pi * 5.0 * np.arange(1250) / 125.0)
  np.testing.assert_allclose(y[20:-20, 0], expected[20:-20], atol=5e-3)
  assert series._ratio(360.0, 125.0) == (25, 72)


def test_resampling_keeps_gaps_masked_near_where_they_were():
  x = np.sin(np.arange(3600) / 30.0)[:, None]
  x[1000:1010] = np.nan  # 2.778-2.806 s
  for new_rate in (125.0, 1000.0):
    y = series.resample_signals(x, 360.0, new_rate)
    gap = np.flatnonzero(np.isnan(y[:, 0])) / new_rate  # seconds
    assert gap.size and gap.min() > 2.77 - 2.0 / 360 - 1.0 / new_rate
    assert gap.max() < 2.81 + 2.0 / 360 + 1.0 / new_rate
    # every output step inside the gap is masked
    inside = np.arange(y.shape[0]) / new_rate
    assert np.isnan(y[(inside > 2.78) & (inside < 2.80), 0]).all()


def test_resampled_dataset_moves_beats_and_rate():
  rec = _ramp(1000, rate=200.0, beats=[100, 500], symbols=["N", "V"])
  ds = _build([rec], resample=100.0, segment="beat", normalize="none",
              val_fraction=0.0, test_fraction=0.0)
  assert ds.metadata["rate"] == 100.0 and ds.metadata["window"] == 70
  x = ds.split("train")["x"]
  # the beat sits at step round(0.25 * 100) = 25 of its segment; the value
  # there is the original sample index of the beat (a ramp resamples to a ramp)
  np.testing.assert_allclose(x[:, 25, 0], [100, 500], atol=0.5)


# --- windows -----------------------------------------------------------------


def test_window_starts_by_hand():
  assert series.window_starts(100, 24, 24).tolist() == [0, 24, 48, 72, 96]
  assert series.window_starts(96, 24, 24).tolist() == [0, 24, 48, 72]
  assert series.window_starts(100, 24, 10).tolist() == list(range(0, 81, 10))
  assert series.window_starts(10, 24, 24).tolist() == [0]
  assert series.window_starts(100, 10, 30).tolist() == [0, 30, 60, 90]


def test_window_counts_and_partial_tail():
  rec = _ramp(100)
  one = dict(val_fraction=0.0, test_fraction=0.0, normalize="none")
  ds = _build([rec], window=24, **one)  # tail of 4 steps: 4/24 < 0.5
  x, m = ds.split("train")["x"], ds.split("train")["mask"]
  assert x.shape == (4, 24, 1) and m.all()
  np.testing.assert_array_equal(x[:, 0, 0], [0, 24, 48, 72])
  ds = _build([rec], window=24, min_valid=0.1, **one)
  m = ds.split("train")["mask"]
  assert m.shape == (5, 24) and m[4].sum() == 4 and not m[4, 4:].any()
  assert (ds.split("train")["x"][4, 4:] == 0.0).all()
  ds = _build([rec], window=24, stride=12, **one)
  # starts 0, 12, ..., 84: the window at 72 ends at 96, so one more
  np.testing.assert_array_equal(ds.split("train")["x"][:, 0, 0],
                                np.arange(0, 85, 12))
  assert ds.metadata["stride"] == 12 and ds.metadata["window"] == 24
  ds = _build([rec], window=10, max_windows=3, **one)
  np.testing.assert_array_equal(ds.split("train")["x"][:, 0, 0], [0, 40, 90])


def test_min_valid_drops_gappy_windows_and_gaps_are_zero_masked():
  x = np.arange(40, dtype=np.float64)
  x[10:16] = np.nan  # 6 of the 10 steps of window 1
  rec = _rec(x)
  one = dict(window=10, val_fraction=0.0, test_fraction=0.0, normalize="none")
  assert len(_build([rec], **one).split("train")) == 3
  ds = _build([rec], min_valid=0.4, **one)
  x, m = ds.split("train")["x"], ds.split("train")["mask"]
  assert len(m) == 4 and m[1].tolist() == [False] * 6 + [True] * 4
  assert (x[1, :6] == 0.0).all() and np.isfinite(x).all()


def test_a_nan_in_one_channel_masks_the_step():
  x = np.ones((20, 2))
  x[3, 1] = np.nan
  ds = _build([_rec(x)], window=10, val_fraction=0.0, test_fraction=0.0)
  m = ds.split("train")["mask"]
  assert m.sum() == 19 and not m[0, 3]
  assert (ds.split("train")["x"][0, 3] == 0.0).all()


# --- splits ------------------------------------------------------------------


def test_time_blocks_never_overlap():
  rec = _ramp(1000)
  ds = _build([rec], window=24, stride=5, normalize="none", min_valid=0.1)
  spans = {}
  for name, split in ds.splits.items():
    x, m = split["x"][..., 0], split["mask"]
    spans[name] = (x[m].min(), x[m].max())
    # inside a window the real steps are consecutive samples
    for row, keep in zip(x, m):
      assert np.all(np.diff(row[keep]) == 1)
  assert spans["train"] == (0, 799)  # the first 80 % of the time
  assert spans["val"] == (800, 899) and spans["test"] == (900, 999)
  assert "time blocks" in ds.metadata["split_rule"]


def test_zscore_statistics_come_from_train_only():
  x = np.concatenate([np.tile([-1.0, 1.0], 400),  # train: mean 0, std 1
                      np.full(200, 10.0)])        # val, test: 10
  ds = _build([_rec(x)], window=20)
  norm = ds.metadata["normalization"]
  assert norm["kind"] == "zscore"
  np.testing.assert_allclose(norm["offset"], [0.0], atol=1e-12)
  np.testing.assert_allclose(norm["scale"], [1.0])
  np.testing.assert_allclose(ds.split("val")["x"], 10.0)
  np.testing.assert_allclose(series.denormalize(ds.split("test")["x"], norm),
                             10.0)


def test_minmax_and_constant_channels():
  x = np.stack([np.linspace(2.0, 4.0, 100), np.full(100, 7.0)], axis=1)
  ds = _build([_rec(x)], window=10, normalize="minmax", val_fraction=0.0,
              test_fraction=0.0)
  train = ds.split("train")["x"]
  assert train[..., 0].min() == 0.0 and train[..., 0].max() == 1.0
  norm = ds.metadata["normalization"]
  assert norm["scale"][1] == 1.0 and norm["offset"][1] == 7.0
  assert (train[..., 1] == 0.0).all()


def test_record_splits_put_each_record_in_one_split():
  recs = [_rec(1000.0 * k + np.arange(200), name=f"rec{k}") for k in range(5)]
  ds = _build(recs, window=20, normalize="none", seed=3)
  where = collections.defaultdict(set)
  for name, split in ds.splits.items():
    for k in np.unique(split["x"][..., 0][split["mask"]] // 1000):
      where[int(k)].add(name)
  assert all(len(v) == 1 for v in where.values()) and len(where) == 5
  assert sorted(len(v) for v in ds.splits.values()) == [10, 10, 30]
  assert ds.metadata["records"] == tuple(f"rec{k}" for k in range(5))
  assert "whole records" in ds.metadata["split_rule"]
  two = _build(recs[:2], window=20)
  assert sorted(two.splits) == ["test", "train"]


def test_record_split_counts():
  parts = series.record_splits(10, 0.1, 0.1, seed=0)
  assert [len(parts[s]) for s in ("train", "val", "test")] == [8, 1, 1]
  assert sorted(sum(parts.values(), [])) == list(range(10))
  assert [len(series.record_splits(2, 0.1, 0.1, 0)[s])
          for s in ("train", "val", "test")] == [1, 0, 1]
  assert len(series.record_splits(1, 0.1, 0.1, 0)["train"]) == 1


def test_records_must_share_rate_and_channels():
  a, b = _ramp(100, name="a"), _ramp(100, rate=50.0, name="b")
  assert "--resample" in _raises(ConfigError, _build, [a, b])
  ds = _build([a, b], resample=100.0, window=10)
  assert ds.metadata["rate"] == 100.0
  c = _rec(np.ones((100, 2)), name="c", channels=("c0", "x"))
  message = _raises(DataError, _build, [a, c])
  assert "c.hea" in message and "--channels c0" in message
  d = _rec(np.ones(100), name="d", units=("uV",))
  assert "units" in _raises(DataError, _build, [a, d])


def test_an_empty_channel_or_a_too_short_record_is_refused():
  x = np.ones((100, 2))
  x[:, 1] = np.nan
  message = _raises(DataError, _build, [_rec(x)])
  assert "'c1'" in message and "--channels" in message
  assert "--window" in _raises(DataError, _build, [_ramp(10)], window=100)


# --- beat segments -----------------------------------------------------------


def test_beat_segments_are_centred_and_labelled():
  beats = [10, 100, 200, 300, 400, 500, 995]
  symbols = ["N", "V", "N", "A", "V", "N", "N"]
  rec = _ramp(1000, beats=beats, symbols=symbols)
  ds = _build([rec], segment="beat", beat_before=0.25, beat_after=0.45,
              normalize="none", val_fraction=0.0, test_fraction=0.0)
  md = ds.metadata
  assert md["window"] == 70 and md["stride"] == 0
  assert md["class_names"] == ("N", "V", "A") and md["num_classes"] == 3
  x, m = ds.split("train")["x"][..., 0], ds.split("train")["mask"]
  lab = ds.split("train")["label"]
  kept = beats[:6]  # the last beat has 30 of 70 steps in the record: dropped
  np.testing.assert_array_equal(x[:, 25], kept)
  names = [md["class_names"][i] for i in lab]
  assert names == symbols[:6]
  # the first beat's segment starts 15 steps before the record: masked
  assert not m[0, :15].any() and m[0, 15:].all() and (x[0, :15] == 0).all()


def test_beat_segments_stop_at_the_split_boundary():
  beats = list(range(50, 1000, 100))  # 50, 150, ..., 950
  rec = _ramp(1000, beats=beats, symbols=["N"] * 10)
  ds = _build([rec], segment="beat", normalize="none", beat_before=0.5,
              beat_after=0.5, min_valid=0.1)
  train, val = ds.split("train"), ds.split("val")
  assert train["x"][train["mask"]].max() < 800  # block: [0, 800)
  assert val["x"][val["mask"]].min() >= 800
  assert val["x"][0, 50, 0] == 850 and len(val) == 1


def test_unseen_val_classes_are_dropped():
  beats = list(range(50, 1000, 100))
  symbols = ["N"] * 8 + ["V", "N"]  # V only in the val block [800, 900)
  rec = _ramp(1000, beats=beats, symbols=symbols)
  ds = _build([rec], segment="beat", beat_before=0.2, beat_after=0.2)
  assert ds.metadata["class_names"] == ("N",)
  assert "val" not in ds.splits and len(ds.split("test")) == 1


def test_beats_need_annotations():
  message = _raises(DataError, _build, [_ramp(100)], segment="beat")
  assert "r.hea" in message and "no beat annotations" in message


# --- derived series ----------------------------------------------------------


def test_heart_rate_of_beats_every_0_8_s_is_75():
  beats = np.arange(50, 60 * 250, 200)  # 250 Hz, one beat every 0.8 s
  rec = _rec(np.zeros(60 * 250), rate=250.0, beats=beats,
             symbols=["N"] * len(beats))
  hr = series.heart_rate(rec)
  assert hr.rate == 4.0 and hr.channels == ("heart_rate",)
  assert hr.units == ("bpm",) and hr.length == 240
  values = hr.signals[:, 0]
  np.testing.assert_allclose(values[np.isfinite(values)], 75.0)
  assert np.isnan(values[0]) and np.isfinite(values[1:236]).all()
  # a missing beat (RR 1.6 s) halves the rate; a 4 s pause is masked
  skip = np.delete(beats, [10, 30, 31, 32, 33])
  rec = _rec(np.zeros(60 * 250), rate=250.0, beats=skip,
             symbols=["N"] * len(skip))
  values = series.heart_rate(rec).signals[:, 0]
  t = np.arange(240) / 4.0
  assert values[(t > 7.4) & (t <= 9.0)].tolist() == [37.5] * 7
  assert values[(t > 6.6) & (t <= 7.4)].tolist() == [75.0] * 3
  assert np.isnan(values[(t > 23.4) & (t <= 27.4)]).all()
  assert values[(t > 27.4) & (t <= 28.2)].tolist() == [75.0] * 3


def test_heart_rate_dataset():
  beats = np.arange(0, 100 * 250, 200)
  rec = _rec(np.zeros(100 * 250), rate=250.0, beats=beats,
             symbols=["N"] * len(beats))
  ds = _build([rec], derive="heart_rate", normalize="none", window=40)
  assert ds.metadata["channels"] == ("heart_rate",)
  assert ds.metadata["rate"] == 4.0
  train = ds.split("train")
  np.testing.assert_allclose(train["x"][train["mask"]], 75.0)


def test_systolic_and_diastolic_of_a_pressure_wave():
  n = np.arange(30 * 1000)  # 1000 Hz, a 1 s pulse peaking 0.3 s after a beat
  abp = 100 + 20 * np.cos(2 * np.pi * (n - 300) / 1000.0)
  ecg = np.zeros_like(abp)
  beats = np.arange(0, 30 * 1000, 1000)
  rec = _rec(np.stack([ecg, abp], 1), rate=1000.0, channels=("ECG", "ART"),
             units=("mV", "mmHg"), beats=beats, symbols=["N"] * len(beats))
  bp = series.pressure(rec, 2.0)
  assert bp.channels == ("systolic", "diastolic")
  assert bp.units == ("mmHg", "mmHg") and bp.rate == 2.0
  ok = np.isfinite(bp.signals).all(axis=1)
  assert ok.sum() == 58  # (0, 29] s of the 30 s grid at 2 Hz
  np.testing.assert_allclose(bp.signals[ok], [[120.0, 80.0]] * 58)
  ds = _build([rec], derive="pressure", resample=2.0, window=8,
              normalize="none")
  train = ds.split("train")
  np.testing.assert_allclose(train["x"][train["mask"]][:, 0], 120.0)


def test_pressure_channel_by_name_or_unit():
  r = _rec(np.ones((10, 3)), channels=("II", "ABP", "CVP"),
           units=("mV", "mmHg", "mmHg"))
  assert series.pressure_channel(r) == 1
  r = _rec(np.ones((10, 2)), channels=("II", "line2"), units=("mV", "mmHg"))
  assert series.pressure_channel(r) == 1
  r = _rec(np.ones((10, 3)), channels=("II", "PAP", "CVP"),
           units=("mV", "mmHg", "mmHg"))
  assert "--channels" in _raises(DataError, series.pressure_channel, r)
  r = _rec(np.ones((10, 2)), channels=("II", "V"))
  assert "II (mV), V (mV)" in _raises(DataError, series.pressure_channel, r)


# --- the modality check ------------------------------------------------------


def _series_ds(x, mask, **metadata):
  md = {"channels": ("a",), "units": ("mV",), "rate": 10.0}
  md.update(metadata)
  return Dataset("s", {"train": Split({"x": x, "mask": mask})}, source="src",
                 modality="series", metadata=md)


def test_modality_check():
  x, m = np.zeros((2, 5, 1), np.float32), np.ones((2, 5), bool)
  check_dataset(_series_ds(x, m))
  bad = x.copy()
  bad[0, 0, 0] = 1.0
  m2 = m.copy()
  m2[0, 0] = False
  assert "masked" in _raises(DataError, check_dataset, _series_ds(bad, m2))
  assert "'mask'" in _raises(DataError, check_dataset,
                             _series_ds(x, m.astype(np.int32)))
  assert "channels" in _raises(DataError, check_dataset,
                               _series_ds(x, m, channels=("a", "b")))
  assert "rate" in _raises(DataError, check_dataset, _series_ds(x, m, rate=0))
  assert "'x'" in _raises(DataError, check_dataset,
                          _series_ds(np.zeros((2, 5)), m))


# --- sources: files, folders, sines ------------------------------------------


def test_sines_follow_timegan():
  ds = load_dataset(_data("sines", sines_examples=100, sines_channels=3,
                          seed=7))
  assert {s: len(v) for s, v in ds.splits.items()} == {
      "train": 80, "val": 10, "test": 10}
  x = ds.split("train")["x"]
  assert x.shape == (80, 24, 3) and x.min() >= 0.0 and x.max() <= 1.0
  assert ds.split("train")["mask"].all()
  assert ds.metadata["normalization"]["kind"] == "none"
  # recover freq and phase from the first two steps and check the rest
  phase = np.arcsin(2 * x[:, 0].astype(np.float64) - 1)
  freq = np.arcsin(2 * x[:, 1].astype(np.float64) - 1) - phase
  assert (phase >= -1e-6).all() and (phase <= 0.1 + 1e-6).all()
  assert (freq >= -1e-5).all() and (freq <= 0.1 + 1e-5).all()
  t = np.arange(24)[None, :, None]
  np.testing.assert_allclose(x, (np.sin(freq[:, None] * t + phase[:, None])
                                 + 1) / 2, atol=1e-5)
  again = generate_sines(100, 3, 24, 7)
  np.testing.assert_array_equal(again[:80], x)
  assert not np.array_equal(generate_sines(100, 3, 24, 8), again)
  assert "sines" in dataset_names() and "wfdb:NAME" in dataset_names()


def test_csv_file_through_the_registry(tmp_path):
  path = tmp_path / "vitals.csv"
  rows = [f"{i / 10:.1f},{np.sin(i / 5):.4f},{80 + i % 7}" for i in range(300)]
  rows[50] = "5.0,,85"
  path.write_text("time,ECG (mV),ABP (mmHg)\n" + "\n".join(rows) + "\n")
  ds = load_dataset(_data(str(path), window=20))
  assert ds.modality == "series" and ds.metadata["rate"] == pytest.approx(10)
  assert ds.metadata["channels"] == ("ECG", "ABP")
  assert ds.metadata["units"] == ("mV", "mmHg")
  assert ds.split("train")["mask"].sum() == 239  # 240 steps, one gap
  bad = tmp_path / "bad.csv"
  bad.write_text("")
  assert "bad.csv" in _raises(DataError, load_dataset, _data(str(bad)))


def test_wfdb_folder_splits_by_record(tmp_path):
  wfdb = pytest.importorskip("wfdb")
  for k in range(4):
    x = np.stack([np.full(500, float(k)), np.sin(np.arange(500) / 9)], 1)
    wfdb.wrsamp(f"r{k}", fs=100, units=["mV", "mV"], sig_name=["I", "II"],
                p_signal=x, fmt=["16", "16"], write_dir=str(tmp_path))
  ds = load_dataset(_data(f"wfdb:{tmp_path}", window=50, channels="ii,i",
                          normalize="none"))
  assert ds.metadata["records"] == ("r0", "r1", "r2", "r3")
  assert ds.metadata["channels"] == ("II", "I")
  where = collections.defaultdict(set)
  for name, split in ds.splits.items():
    for k in np.unique(np.round(split["x"][..., 1])):
      where[int(k)].add(name)
  assert sorted(where) == [0, 1, 2, 3]
  assert all(len(v) == 1 for v in where.values())
  listed = load_dataset(_data(f"wfdb:{tmp_path}/r0,{tmp_path}/r1.hea"))
  assert listed.metadata["records"] == ("r0", "r1")
  assert "none.hea: no such WFDB header" in _raises(
      DataError, load_dataset, _data(f"wfdb:{tmp_path / 'none'}"))
  (tmp_path / "empty").mkdir()
  assert "no WFDB header (.hea) in this folder" in _raises(
      DataError, load_dataset, _data(f"wfdb:{tmp_path / 'empty'}"))


def test_shared_record_100_through_the_registry(shared_data_dir):
  ds = load_dataset(_data(str(shared_data_dir / "mitbih_100" / "100")))
  sizes = {s: len(v) for s, v in ds.splits.items()}
  # 650000 samples: train block 520000 = 21666 windows + a tail of 16 steps
  assert sizes == {"train": 21667, "val": 2708, "test": 2708}
  assert ds.metadata["rate"] == 360.0 and ds.metadata["window"] == 24
  assert ds.metadata["channels"] == ("MLII", "V5")
  x = ds.split("train")["x"]
  norm = ds.metadata["normalization"]
  # train statistics: mean 0, std 1 over the train windows' real steps
  np.testing.assert_allclose(x[ds.split("train")["mask"]].mean(0), 0,
                             atol=1e-4)
  np.testing.assert_allclose(norm["offset"], [-0.306, -0.200], atol=2e-3)


def test_shared_record_100_beats(shared_data_dir):
  ds = load_dataset(_data(str(shared_data_dir / "mitbih_100" / "100.hea"),
                          segment="beat"))
  md = ds.metadata
  assert md["class_names"] == ("N", "A") and md["window"] == 252
  counts = {s: collections.Counter(v["label"].tolist())
            for s, v in ds.splits.items()}
  assert counts["train"] == {0: 1790, 1: 25}
  # the single V beat falls in the val block, where train has no V: dropped
  assert sum(sum(c.values()) for c in counts.values()) == 2271


def test_shared_vitals_gaps_are_masked(shared_data_dir):
  path = shared_data_dir / "physionet_vitals" / "03700181"
  ds = load_dataset(_data(str(path), window=250))
  test = ds.split("test")
  assert ds.metadata["units"] == ("mV", "mmHg", "mV")
  # the record's 4 NaN samples (RESP) are its last 4: masked, 0.0 in x
  assert test["mask"].sum() == 30 * 250 - 4
  assert not test["mask"][-1, -4:].any()
  assert (test["x"][-1, -4:] == 0.0).all() and np.isfinite(test["x"]).all()
  message = _raises(DataError, load_dataset,
                    _data(str(path), derive="heart_rate"))
  assert "--annotation" in message and "gqrsh, sqrs" in message
  hr = load_dataset(_data(str(path), derive="heart_rate",
                          annotation="gqrsh"))
  assert hr.metadata["rate"] == 4.0 and hr.metadata["units"] == ("bpm",)
  bp = load_dataset(_data(str(path), derive="pressure", annotation="gqrsh"))
  values = series.denormalize(bp.split("train")["x"],
                              bp.metadata["normalization"])
  real = values[bp.split("train")["mask"]]
  assert (real[:, 0] >= real[:, 1]).all()  # systolic >= diastolic
  assert 15 < real.min() and real.max() < 66  # within the ABP range


def test_wfdb_folder_reads_a_multi_segment_record_once(tmp_path):
  wfdb = pytest.importorskip("wfdb")
  for name, value in (("seg1", 1.0), ("seg2", 2.0), ("solo", 3.0)):
    x = np.stack([np.full(400, value), np.cos(np.arange(400) / 7)], 1)
    wfdb.wrsamp(name, fs=100, units=["mV", "mV"], sig_name=["I", "II"],
                p_signal=x, fmt=["16", "16"], write_dir=str(tmp_path))
  (tmp_path / "multi.hea").write_text("multi/2 2 100 800\nseg1 400\n"
                                      "seg2 400\n")
  ds = load_dataset(_data(f"wfdb:{tmp_path}", window=40, normalize="none"))
  assert ds.metadata["records"] == ("multi", "solo")
  values = np.concatenate([s["x"][..., 0][s["mask"]]
                           for s in ds.splits.values()])
  assert sorted(np.unique(np.round(values, 3))) == [1.0, 2.0, 3.0]


# --- static covariates per record ----------------------------------------------


def _covariates_csv(path, rows):
  path.write_text("record,age,female\n" + "".join(
      f"{name},{age},{f}\n" for name, age, f in rows))
  return str(path)


def test_each_example_carries_its_records_standardised_covariates(tmp_path):
  recs = [_rec(1000.0 * k + np.arange(200), name=f"rec{k}") for k in range(5)]
  rows = [(f"rec{k}", 40 + 10 * k, k % 2) for k in range(5)]
  ds = _build(recs, window=20, normalize="none", seed=3,
              covariates=_covariates_csv(tmp_path / "cov.csv", rows))
  stats = ds.metadata["covariate_normalization"]
  assert ds.metadata["covariate_names"] == ("age", "female")
  train = ds.split("train")
  # the train split's standardised covariates have mean 0 and std 1
  np.testing.assert_allclose(train["covariates"].mean(0), 0.0, atol=1e-6)
  np.testing.assert_allclose(train["covariates"].std(0), 1.0, atol=1e-5)
  for split in ds.splits.values():
    record = (split["x"][:, 0, 0] // 1000).astype(int)   # x = 1000 k + t
    raw = split["covariates"] * np.asarray(stats["scale"]) + stats["offset"]
    np.testing.assert_allclose(raw[:, 0], 40 + 10 * record, rtol=1e-5)
    np.testing.assert_allclose(raw[:, 1], record % 2, atol=1e-5)


def test_bad_covariate_files_are_refused_in_one_line(tmp_path):
  recs = [_rec(np.arange(200.0), name="a"), _rec(np.arange(200.0), name="b")]
  missing = _covariates_csv(tmp_path / "m.csv", [("a", 50, 1)])
  msg = _raises(DataError, _build, recs, window=20, covariates=missing)
  assert "m.csv" in msg and "record(s) b" in msg
  bad = tmp_path / "bad.csv"
  bad.write_text("record,age\na,50\nb,old\n")
  msg = _raises(DataError, _build, recs, window=20, covariates=str(bad))
  assert "bad.csv: line 3" in msg and "'age'" in msg
  none = tmp_path / "none.csv"
  none.write_text("record\na\nb\n")
  assert "no covariate columns" in _raises(DataError, _build, recs, window=20,
                                           covariates=str(none))
