"""The sleep datasets of data/sleep.py: `hypnogram:PATH` and `actigraphy:PATH`.

Every expected window below is worked out by hand from the file written in
the test: which epochs it covers, which are masked, and its t0.
"""

import shutil

import numpy as np
import pytest

from medgen_jax.configs import rnn
from medgen_jax.data.registry import load_dataset
from medgen_jax.errors import ConfigError, DataError

AWD_HEADER = "{name}\n{date}\n{time}\n 4 \n00\nV664055\nX\n"   # 4: 60-s epochs


def _load(name, **fields):
  """load_dataset of the rnn family's data section with `fields` set."""
  c = rnn.get_config().data
  c.name = name
  for key, value in fields.items():
    c[key] = value
  return load_dataset(c)


def _hypnogram(path, tokens):
  path.write_text("".join(f"{t}\n" for t in tokens))
  return path


def _awd(path, counts, time="13:58", date="23-Jan-1918"):
  """An Actiwatch AWD file (CRLF) of 60-s counts from `date` `time`."""
  text = AWD_HEADER.format(name=path.stem, date=date, time=time)
  text += "".join(f"{int(c)}\n" for c in counts)
  path.write_bytes(text.replace("\n", "\r\n").encode())
  return path


def _split(ds, name):
  s = ds.split(name)
  return s["x"], s["mask"], s["t0"]


def _no_blocks():
  return {"val_fraction": 0.0, "test_fraction": 0.0}


# ---------------------------------------------------------------------------
# Hypnograms.
# ---------------------------------------------------------------------------

# 12 epochs: W, N1, MT (movement), N2, ? (unscored), N3, REM, -1 (YASA
# artefact), S2 (R&K, = N2), R, Wake, N1.
TOKENS = ["W", "1", "MT", "N2", "?", "3", "REM", "-1", "S2", "R", "Wake",
          "N1"]
CODES = [0, 1, -1, 2, -1, 3, 4, -1, 2, 4, 0, 1]


def test_hypnogram_windows_contents_mask_and_t0(tmp_path):
  path = _hypnogram(tmp_path / "night.txt", TOKENS)
  ds = _load(f"hypnogram:{path}", window=4, stride=2, min_valid=0.1,
             **_no_blocks())
  assert ds.splits.keys() == {"train"}
  x, m, t0 = _split(ds, "train")
  # Starts 0, 2, 4, 6, 8 (the window at 8 reaches the end, epoch 11).
  assert x.shape == (5, 4, 1) and x.dtype == np.float32
  assert m.dtype == bool and t0.dtype == np.float32
  np.testing.assert_array_equal(t0, [0.0, 60.0, 120.0, 180.0, 240.0])
  want_x = [[0, 1, 0, 2], [0, 2, 0, 3], [0, 3, 4, 0], [4, 0, 2, 4],
            [2, 4, 0, 1]]
  want_m = [[1, 1, 0, 1], [0, 1, 0, 1], [0, 1, 1, 0], [1, 0, 1, 1],
            [1, 1, 1, 1]]
  np.testing.assert_array_equal(x[..., 0], want_x)
  np.testing.assert_array_equal(m, np.array(want_m, bool))


def test_hypnogram_min_valid_drops_half_scored_windows(tmp_path):
  path = _hypnogram(tmp_path / "night.txt", TOKENS)
  ds = _load(f"hypnogram:{path}", window=4, stride=2, min_valid=0.6,
             **_no_blocks())
  # The windows at 2 and 4 have 2 of 4 scored epochs (0.5 < 0.6).
  np.testing.assert_array_equal(ds.split("train")["t0"], [0.0, 180.0, 240.0])


def test_hypnogram_t0_is_start_epoch_times_epoch_seconds(tmp_path):
  path = _hypnogram(tmp_path / "night.txt", ["2"] * 30)
  ds = _load(f"hypnogram:{path}", window=10, stride=5, epoch_seconds=20.0,
             **_no_blocks())
  # Starts 0, 5, 10, 15, 20 epochs of 20 s.
  np.testing.assert_array_equal(ds.split("train")["t0"],
                                [0.0, 100.0, 200.0, 300.0, 400.0])
  assert ds.metadata["rate"] == pytest.approx(1 / 20)


def test_one_hypnogram_is_cut_into_contiguous_time_blocks(tmp_path):
  codes = [i % 5 for i in range(100)]
  path = _hypnogram(tmp_path / "night.txt", codes)
  ds = _load(f"hypnogram:{path}", window=10, stride=10, val_fraction=0.1,
             test_fraction=0.2)
  # train epochs 0..69, val 70..79, test 80..99.
  for split, starts in (("train", range(0, 70, 10)), ("val", [70]),
                        ("test", [80, 90])):
    x, m, t0 = _split(ds, split)
    np.testing.assert_array_equal(t0, [30.0 * s for s in starts])
    np.testing.assert_array_equal(
        x[..., 0], [codes[s:s + 10] for s in starts])
    assert m.all()
  assert "contiguous time blocks" in ds.metadata["split_rule"]


def test_a_window_never_reads_past_its_time_block(tmp_path):
  codes = [i % 5 for i in range(100)]
  path = _hypnogram(tmp_path / "night.txt", codes)
  ds = _load(f"hypnogram:{path}", window=10, stride=10, val_fraction=0.15,
             test_fraction=0.15, min_valid=0.1)
  # val is epochs 70..84: its window at 80 holds 80..84, then 5 masked
  # steps (not the test block's epochs 85..89).
  x, m, t0 = _split(ds, "val")
  np.testing.assert_array_equal(t0, [2100.0, 2400.0])
  np.testing.assert_array_equal(m[1], [True] * 5 + [False] * 5)
  np.testing.assert_array_equal(x[1, :, 0], codes[80:85] + [0] * 5)
  x, m, t0 = _split(ds, "test")
  np.testing.assert_array_equal(t0, [2550.0, 2850.0])   # epochs 85, 95
  np.testing.assert_array_equal(x[0, :, 0], codes[85:95])


def _five_nights(tmp_path):
  """Records r0..r4, each 20 epochs of stage r (so a window names its
  record by its values)."""
  paths = [_hypnogram(tmp_path / f"r{r}.txt", [str(r)] * 20)
           for r in range(5)]
  return ",".join(str(p) for p in paths)


def _records_per_split(ds):
  """{split: {record: windows}} read from the windows' constant values."""
  out = {}
  for split in ds.splits:
    x = ds.split(split)["x"][..., 0]
    assert (x == x[:, :1]).all()
    ids, n = np.unique(x[:, 0].astype(int), return_counts=True)
    out[split] = dict(zip(ids.tolist(), n.tolist()))
  return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_several_records_are_split_whole(tmp_path, seed):
  ds = _load(f"hypnogram:{_five_nights(tmp_path)}", window=5, stride=5,
             val_fraction=0.2, test_fraction=0.2, seed=seed)
  got = _records_per_split(ds)
  assert {s: len(r) for s, r in got.items()} == {"train": 3, "val": 1,
                                                  "test": 1}
  seen = [r for recs in got.values() for r in recs]
  assert sorted(seen) == [0, 1, 2, 3, 4]        # each record in one split
  assert all(n == 4 for recs in got.values() for n in recs.values())
  assert ds.metadata["records"] == ("r0", "r1", "r2", "r3", "r4")
  assert "no record is in two splits" in ds.metadata["split_rule"]


@pytest.mark.parametrize("name", ["r3", "R3", " r3 "])
def test_test_records_holds_out_the_named_record(tmp_path, name):
  ds = _load(f"hypnogram:{_five_nights(tmp_path)}", window=5,
             test_records=name, val_fraction=0.2)
  got = _records_per_split(ds)
  assert got["test"] == {3: 4}
  assert 3 not in got["train"] and 3 not in got.get("val", {})
  assert sorted(r for s in got.values() for r in s) == [0, 1, 2, 3, 4]


def test_unknown_test_record_is_a_config_error_naming_it(tmp_path):
  with pytest.raises(ConfigError, match="'r9'.*r0, r1, r2, r3, r4"):
    _load(f"hypnogram:{_five_nights(tmp_path)}", window=5, test_records="r9")


def test_hypnogram_metadata(tmp_path):
  path = _hypnogram(tmp_path / "night.txt", TOKENS)
  ds = _load(f"hypnogram:{path}", window=4, normalize="zscore",
             **_no_blocks())
  md = ds.metadata
  assert ds.name == "night"
  assert md["values"] == "categorical"
  assert md["category_names"] == ("W", "N1", "N2", "N3", "REM")
  assert md["time_kind"] == "elapsed" and md["domain"] == "hypnogram"
  assert md["rate"] == pytest.approx(1 / 30)
  assert md["normalization"]["kind"] == "none"   # classes are not scaled
  assert md["channels"] == ("stage",)


# ---------------------------------------------------------------------------
# Actigraphy.
# ---------------------------------------------------------------------------


def test_day_windows_start_at_midnight(tmp_path):
  # 13:58 is 13 * 60 + 58 = 838 min after midnight: the first calendar day
  # holds 1440 - 838 = 602 epochs of the record, the second 1440, the third
  # the last 2342 - 602 - 1440 = 300.
  counts = 1 + np.arange(2342) % 97
  path = _awd(tmp_path / "a.AWD", counts)
  ds = _load(f"actigraphy:{path}", window=1440, stride=1440, min_valid=0.1,
             **_no_blocks())
  x, m, t0 = _split(ds, "train")
  assert x.shape == (3, 1440, 1)
  np.testing.assert_array_equal(t0, [0.0, 0.0, 0.0])
  assert not m[0, :838].any() and (x[0, :838] == 0).all()
  assert m[0, 838:].all()
  np.testing.assert_array_equal(x[0, 838:, 0], counts[:602])
  assert m[1].all()
  np.testing.assert_array_equal(x[1, :, 0], counts[602:2042])
  assert m[2, :300].all() and not m[2, 300:].any()
  np.testing.assert_array_equal(x[2, :300, 0], counts[2042:])
  assert (x[2, 300:] == 0).all()
  # By default (--min-valid 0.5) the part days (602 and 300 of 1440) go.
  ds = _load(f"actigraphy:{path}", window=1440, stride=1440, **_no_blocks())
  np.testing.assert_array_equal(ds.split("train")["x"][:, :, 0],
                                [counts[602:2042]])


def test_hour_windows_start_on_the_hour(tmp_path):
  counts = 1 + np.arange(200) % 7
  path = _awd(tmp_path / "a.AWD", counts)
  ds = _load(f"actigraphy:{path}", window=60, stride=60, min_valid=0.01,
             **_no_blocks())
  x, m, t0 = _split(ds, "train")
  # 13:00, 14:00, ..., 17:00; 13:00-13:58 is padding; 200 epochs end at
  # 17:18 (epoch 199 is 17:17).
  np.testing.assert_array_equal(t0, 3600.0 * np.arange(13, 18))
  np.testing.assert_array_equal(m.sum(1), [2, 60, 60, 60, 18])
  np.testing.assert_array_equal(x[0, 58:, 0], counts[:2])
  np.testing.assert_array_equal(x[1, :, 0], counts[2:62])


def _wear_counts():
  # 100 active, 89 zero min (kept), 100 active, 90 zero min (non-wear),
  # 100 active: 479 epochs.
  act = np.full(100, 5)
  return np.concatenate([act, np.zeros(89), act, np.zeros(90), act])


@pytest.mark.parametrize("minutes,masked", [
    (90.0, range(289, 379)), (91.0, ()), (0.0, ())])
def test_long_zero_runs_are_masked_as_nonwear(tmp_path, minutes, masked):
  counts = _wear_counts()
  path = _awd(tmp_path / "a.AWD", counts, time="00:00")
  ds = _load(f"actigraphy:{path}", window=479, nonwear_minutes=minutes,
             **_no_blocks())
  x, m, t0 = _split(ds, "train")
  want = np.ones(479, bool)
  want[list(masked)] = False
  np.testing.assert_array_equal(m[0], want)
  np.testing.assert_array_equal(x[0, :, 0], np.where(want, counts, 0))
  assert x[0, 100:189].sum() == 0 and m[0, 100:189].all()  # real zeros
  assert t0[0] == 0.0


def test_diary_nowear_periods_are_masked(tmp_path):
  path = _awd(tmp_path / "a.AWD", np.full(120, 7), time="14:00")
  diary = tmp_path / "diary.csv"
  diary.write_text("TYPE,START,END\n"
                   "NOWEAR,1918-01-23 14:10:00,1918-01-23 14:20:00\n"
                   "NAP,1918-01-23 14:30:00,1918-01-23 14:40:00\n"
                   "NOWEAR,1918-01-24 14:10:00,1918-01-24 14:20:00\n")
  ds = _load(f"actigraphy:{path}", window=60, diary=str(diary),
             **_no_blocks())
  x, m, t0 = _split(ds, "train")
  np.testing.assert_array_equal(t0, [50400.0, 54000.0])   # 14:00, 15:00
  want = np.ones((2, 60), bool)
  want[0, 10:20] = False       # 14:10 to 14:20; the NAP stays
  np.testing.assert_array_equal(m, want)
  np.testing.assert_array_equal(x[..., 0], np.where(want, 7, 0))
  other = _awd(tmp_path / "b.AWD", np.full(120, 3), time="14:00")
  with pytest.raises(ConfigError, match="one recording"):
    _load(f"actigraphy:{path},{other}", window=60, diary=str(diary))


def test_a_folder_skips_its_sleep_diary(tmp_path):
  _awd(tmp_path / "a.AWD", np.full(120, 7), time="14:00")
  (tmp_path / "b.csv").write_text(
      "timestamp,activity\n" + "".join(
          f"2020-01-02 00:{i:02d}:00,{i + 1}\n" for i in range(60)))
  (tmp_path / "a_diary.csv").write_text(
      "TYPE,START,END\nNOWEAR,1918-01-23 14:10:00,1918-01-23 14:20:00\n")
  ds = _load(f"actigraphy:{tmp_path}", window=60, test_records="b",
             val_fraction=0.0)
  assert ds.metadata["records"] == ("a", "b")   # a_diary.csv is no record
  np.testing.assert_array_equal(ds.split("test")["x"][0, :, 0],
                                np.arange(1, 61))
  with pytest.raises(DataError, match="only sleep diaries"):
    _load(f"actigraphy:{tmp_path / 'a_diary.csv'}", window=60)


def test_epoch_seconds_sums_counts_and_a_gap_makes_a_group_missing(tmp_path):
  # Minutes 0..21 from midnight with counts i + 1; minute 7 is absent (a
  # missing epoch). 5-min groups: 1+..+5 = 15, [6..10] has the gap, 11+..+15
  # = 65, 16+..+20 = 90; the partial group (21, 22) is dropped.
  rows = [f"2020-01-02 00:{i:02d}:00,{i + 1}\n" for i in range(22) if i != 7]
  path = tmp_path / "r.csv"
  path.write_text("timestamp,activity\n" + "".join(rows))
  ds = _load(f"actigraphy:{path}", window=4, epoch_seconds=300.0,
             **_no_blocks())
  x, m, t0 = _split(ds, "train")
  np.testing.assert_array_equal(x[..., 0], [[15, 0, 65, 90]])
  np.testing.assert_array_equal(m, [[True, False, True, True]])
  np.testing.assert_array_equal(t0, [0.0])
  assert ds.metadata["rate"] == pytest.approx(1 / 300)
  with pytest.raises(ConfigError, match="--epoch-seconds 90"):
    _load(f"actigraphy:{path}", window=4, epoch_seconds=90.0)


def test_epoch_seconds_groups_start_on_the_clock(tmp_path):
  # Counts i + 1 at epoch i, epoch 0 at 13:58. 5-min groups start on the
  # clock: 13:55 (3 epochs before the record: missing), 14:00 = epochs 2..6
  # = 3+4+5+6+7 = 25, 14:05 = epochs 7..11 = 8+..+12 = 50, ..., 14:55 =
  # epochs 57..61 (the last).
  counts = 1 + np.arange(62)
  path = _awd(tmp_path / "a.AWD", counts)
  ds = _load(f"actigraphy:{path}", window=12, stride=12, epoch_seconds=300.0,
             min_valid=0.01, **_no_blocks())
  x, m, t0 = _split(ds, "train")
  # Hour windows: 13:00 has no valid step (dropped), 14:00 is full.
  np.testing.assert_array_equal(t0, [14 * 3600.0])
  want = [sum(counts[2 + 5 * g:7 + 5 * g]) for g in range(12)]
  assert want[:2] == [25, 50]
  np.testing.assert_array_equal(x[0, :, 0], want)
  assert m[0].all()


def test_the_same_recording_twice_is_refused(tmp_path):
  counts = 1 + np.arange(300) % 50
  a = _awd(tmp_path / "a.AWD", counts)
  b = tmp_path / "a_copy.AWD"
  shutil.copy(a, b)
  with pytest.raises(DataError) as info:
    _load(f"actigraphy:{a},{b}", window=60)
  assert str(a) in str(info.value) and str(b) in str(info.value)
  assert "same recording" in str(info.value)
  masked = counts.copy()
  masked[:20] = 0          # a masked copy: 280 of 300 counts agree
  c = _awd(tmp_path / "a_masked.AWD", masked)
  with pytest.raises(DataError) as info:
    _load(f"actigraphy:{a},{c}", window=60)
  assert str(a) in str(info.value) and str(c) in str(info.value)
  # Another subject started in the same minute is another recording.
  other = _awd(tmp_path / "b.AWD", 1 + np.arange(300) % 31)
  ds = _load(f"actigraphy:{a},{other}", window=60, min_valid=0.01)
  assert ds.metadata["records"] == ("a", "b")
  # ... also when both are mostly zeros (unworn): shared zeros prove nothing
  quiet_a, quiet_b = np.zeros(300), np.zeros(300)
  quiet_a[::25], quiet_b[5::25] = 40, 60
  qa = _awd(tmp_path / "qa.AWD", quiet_a)
  qb = _awd(tmp_path / "qb.AWD", quiet_b)
  ds = _load(f"actigraphy:{qa},{qb}", window=60, min_valid=0.01,
             nonwear_minutes=0.0)
  assert ds.metadata["records"] == ("qa", "qb")


def test_actigraphy_metadata(tmp_path):
  path = _awd(tmp_path / "a.AWD", np.full(120, 7), time="14:00")
  ds = _load(f"actigraphy:{path}", window=60, normalize="zscore",
             **_no_blocks())
  md = ds.metadata
  assert ds.name == "a"
  assert md["values"] == "counts" and "category_names" not in md
  assert md["time_kind"] == "clock" and md["domain"] == "actigraphy"
  assert md["rate"] == pytest.approx(1 / 60)
  assert md["normalization"]["kind"] == "none"
  assert md["units"] == ("counts",)
  # Counts are kept as counts (7), not z-scored.
  assert (ds.split("train")["x"] == 7).all()


# ---------------------------------------------------------------------------
# The shared recordings.
# ---------------------------------------------------------------------------

LETTERS = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "R": 4, "REM": 4}


def test_shared_hypnograms_hold_out_sub02(shared_data_dir):
  folder = shared_data_dir / "sleep" / "hypnograms"
  if not folder.is_dir():
    pytest.skip(f"{folder} is absent")
  full = [int(s) for s in (folder / "data_full_6hrs_100Hz_hypno_30s.txt")
          .read_text().split("\n") if s.strip() and not s.startswith("#")]
  sub = [LETTERS[s.strip()] for s in (folder / "sub-02_hypno_30s.txt")
         .read_text().split("\n") if s.strip()]
  assert (len(full), len(sub)) == (720, 98)
  ds = _load(f"hypnogram:{folder}", window=60, stride=20,
             test_records="sub-02_hypno_30s")
  assert set(ds.splits) == {"train", "test"}   # one record left: no val
  x, m, t0 = _split(ds, "train")
  # (720 - 60) / 20 + 1 = 34 windows of the full night.
  np.testing.assert_array_equal(t0, 600.0 * np.arange(34))
  np.testing.assert_array_equal(
      x[..., 0], [full[s:s + 60] for s in range(0, 661, 20)])
  assert m.all()
  x, m, t0 = _split(ds, "test")
  # sub-02: starts 0, 20, 40; the last holds epochs 40..97 and 2 padding.
  np.testing.assert_array_equal(t0, [0.0, 600.0, 1200.0])
  np.testing.assert_array_equal(x[:2, :, 0], [sub[:60], sub[20:80]])
  np.testing.assert_array_equal(x[2, :58, 0], sub[40:])
  np.testing.assert_array_equal(m[2], [True] * 58 + [False] * 2)


def _days(counts, start_minute):
  """Calendar days [D, 1440] of 1-min counts from `start_minute` after
  midnight, NaN outside the record."""
  padded = np.concatenate([np.full(start_minute, np.nan), counts])
  padded = np.concatenate([padded, np.full(-padded.size % 1440, np.nan)])
  return padded.reshape(-1, 1440)


def test_shared_actigraphy_days_and_test_subject(shared_data_dir):
  from medgen_jax.data.actigraphy_files import nonwear_mask, read_awd
  folder = shared_data_dir / "sleep" / "actigraphy"
  files = [folder / f"example_0{i}.AWD" for i in range(1, 6)]
  if not all(f.is_file() for f in files):
    pytest.skip(f"{folder} lacks example_01..05.AWD")
  days, kept = {}, {}
  for f in files:
    rec = read_awd(f)
    counts = rec.counts.astype(np.float64)
    worn = np.where(nonwear_mask(counts, 60.0), counts, np.nan)
    days[f.stem] = _days(worn, rec.start.hour * 60 + rec.start.minute)
    # A day is a window when at least half of its minutes are worn.
    kept[f.stem] = int((np.isfinite(days[f.stem]).mean(1) >= 0.5).sum())
  # example_05 starts at 11:15 (675 min) with 21703 epochs: 675 + 21703 =
  # 22378 min = 15 days + 778 min, so 16 calendar days.
  assert days["example_05"].shape == (16, 1440)
  ds = _load("actigraphy:" + ",".join(str(f) for f in files), window=1440,
             stride=1440, test_records="example_05")

  def source(x, m):
    """The one record whose day the window holds, unmasked steps alike."""
    found = [name for name, dd in days.items() for day in dd
             if (np.isfinite(day) == m).all() and (day[m] == x[m]).all()]
    assert len(found) == 1, found
    return found[0]

  per_split = {}
  for split in ds.splits:
    x, m, t0 = _split(ds, split)
    assert x.shape[1:] == (1440, 1)
    np.testing.assert_array_equal(t0, 0.0)      # every window is a day
    names = [source(xi[:, 0], mi) for xi, mi in zip(x, m)]
    per_split[split] = set(names)
    for name in per_split[split]:               # all its days, here only
      assert names.count(name) == kept[name], (split, name)
  assert per_split["test"] == {"example_05"}
  assert sorted(set().union(*per_split.values())) == sorted(days)
  assert sum(len(v) for v in per_split.values()) == 5   # no record twice


def test_shared_actigraphy_folder_refuses_the_masked_copy(shared_data_dir):
  folder = shared_data_dir / "sleep" / "actigraphy"
  if not (folder / "example_01_mask.AWD").is_file():
    pytest.skip(f"{folder} lacks example_01_mask.AWD")
  with pytest.raises(DataError) as info:
    _load(f"actigraphy:{folder}", window=1440, stride=1440)
  message = str(info.value)
  assert "example_01_mask.AWD" in message and "example_01.AWD" in message
  assert "same recording" in message and "\n" not in message
