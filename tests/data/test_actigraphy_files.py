"""Reading actigraphy: Actiwatch AWD files, CSV/TSV exports, sleep diaries,
Choi non-wear, the shared pyActigraphy recordings, and the one-line errors
of damaged files."""

import datetime

import numpy as np
import pytest

from medgen_jax.data.actigraphy_files import (AWD_EPOCH_CODES, Actigraphy,
                                              DiaryPeriod, diary_epochs,
                                              nonwear_mask, read_actigraphy,
                                              read_actigraphy_csv, read_awd,
                                              read_sleep_diary)
from medgen_jax.errors import DataError
from file_helpers import raises_one_line as _raises, write_file as _write

DT = datetime.datetime
HEADER = "example_x\n23-Jan-1918\n13:58\n 4 \n00\nV664055\nX\n"


# ---------------------------------------------------------------------------
# AWD.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_awd_counts_markers_and_header(tmp_path, newline):
  path = _write(tmp_path, "a.AWD", HEADER + "0\n149 M\n834M\n12\n\n\n",
                newline)
  acti = read_awd(path)
  assert isinstance(acti, Actigraphy)
  assert acti.subject == "example_x" and acti.source == str(path)
  assert acti.start == DT(1918, 1, 23, 13, 58)
  assert acti.epoch_seconds == 60.0
  np.testing.assert_array_equal(acti.counts, [0, 149, 834, 12])
  assert acti.counts.dtype == np.float32
  np.testing.assert_array_equal(acti.marker, [False, True, True, False])
  assert acti.light is None
  assert read_actigraphy(path).counts.size == 4


# pyActigraphy's RawAWD.frequency_code (io/awd/awd.py).
@pytest.mark.parametrize("code,seconds", [
    ("1", 15), ("2", 30), ("4", 60), ("8", 120), ("20", 300), ("81", 2),
    ("C1", 5), ("c2", 10)])
def test_awd_epoch_codes(tmp_path, code, seconds):
  path = _write(tmp_path, "a.awd", HEADER.replace(" 4 ", code) + "1\n2\n")
  assert read_actigraphy(path).epoch_seconds == seconds
  assert len(AWD_EPOCH_CODES) == 8


@pytest.mark.parametrize("time,expected", [
    ("09:38:00 AM ", (9, 38, 0)), ("18:11:00 ", (18, 11, 0)),
    ("12:05 PM", (12, 5, 0)), ("12:05 AM", (0, 5, 0)),
    ("07:30:15", (7, 30, 15))])
def test_awd_start_times(tmp_path, time, expected):
  path = _write(tmp_path, "a.awd", HEADER.replace("13:58", time) + "1\n")
  assert read_awd(path).start == DT(1918, 1, 23, *expected)


def test_awd_blank_subject_is_the_file_stem(tmp_path):
  path = _write(tmp_path, "night_07.awd", " \n" + HEADER[10:] + "1\n")
  assert read_awd(path).subject == "night_07"


@pytest.mark.parametrize("serial", ["D0309360327", "L11FFFF220", "P4012590327",
                                    "weird"])
@pytest.mark.parametrize("lines", [
    "0 , 0.00\n224 , 12.50 M\n99 , 3\n", "0,0\n224,12.5M\n99,3\n",
    "0\t0\n224\t12.5 M\n99\t3\n", "0 ; 0\n224 ; 12.5 M\n99 ; 3\n"])
def test_awd_light_column(tmp_path, serial, lines):
  path = _write(tmp_path, "a.awd", HEADER.replace("V664055", serial) + lines,
                "\r\n")
  acti = read_awd(path)
  np.testing.assert_array_equal(acti.counts, [0, 224, 99])
  np.testing.assert_array_equal(acti.light, [0, 12.5, 3])
  assert acti.light.dtype == np.float32
  np.testing.assert_array_equal(acti.marker, [False, True, False])


@pytest.mark.parametrize("serial", ["I72FFFF0327", "S6420020034",
                                    "T4460210140"])
def test_awd_pressure_sound_temperature_are_not_light(tmp_path, serial):
  path = _write(tmp_path, "a.awd", HEADER.replace("V664055", serial)
                + "57 , 0.00\n11 , 32.71 M\n")
  acti = read_awd(path)
  np.testing.assert_array_equal(acti.counts, [57, 11])
  assert acti.light is None and acti.marker.tolist() == [False, True]


@pytest.mark.parametrize("body,line,text", [
    ("1\n2\nabc\n", 10, "abc"),
    ("1\n-3\n", 9, "-3"),
    ("1\ninf\n", 9, "inf"),
    ("1\n\n2\n", 9, ""),
    ("1\n2 , 5\n", 9, "2 , 5"),       # a light value on line 9 only
    ("1 , 5\n2\n", 9, "2"),            # no light value on line 9
    ("1 , 5 , 6\n", 8, "1 , 5 , 6"),
    ("3 X\n", 8, "3 X"),
])
def test_awd_bad_line_names_file_line_and_text(tmp_path, body, line, text):
  path = _write(tmp_path, "a.awd", HEADER + body)
  message = _raises(read_awd, path)
  assert str(path) in message and f"line {line}:" in message
  assert f"'{text}'" in message and "a count, optionally followed by" in message


@pytest.mark.parametrize("old,new,words", [
    ("23-Jan-1918", "1918-01-23", ["line 2", "'1918-01-23'", "DD-Mon-YYYY"]),
    ("23-Jan-1918", "31-Feb-1918", ["line 2", "DD-Mon-YYYY"]),
    ("23-Jan-1918", "23-Foo-1918", ["line 2", "DD-Mon-YYYY"]),
    ("13:58", "25:99", ["line 3", "'25:99'", "HH:MM"]),
    (" 4 ", "7", ["line 4", "'7'", "4 (60 s)", "C2 (10 s)", "1 (15 s)"]),
])
def test_awd_bad_header_is_refused(tmp_path, old, new, words):
  path = _write(tmp_path, "a.awd", HEADER.replace(old, new) + "1\n")
  message = _raises(read_awd, path)
  assert str(path) in message
  for word in words:
    assert word in message


def test_awd_short_or_missing_files_are_refused(tmp_path):
  short = _write(tmp_path, "a.awd", "x\n23-Jan-1918\n13:58\n")
  assert "7 header lines" in _raises(read_awd, short)
  empty = _write(tmp_path, "b.awd", HEADER + "\n\n")
  message = _raises(read_awd, empty)
  assert str(empty) in message and "no epochs" in message
  assert "no such file" in _raises(read_awd, tmp_path / "absent.awd")
  message = _raises(read_actigraphy, _write(tmp_path, "a.gt3x", "x"))
  assert "'.gt3x'" in message and ".awd" in message


def test_shared_awd_recordings(shared_data_dir):
  folder = shared_data_dir / "sleep" / "actigraphy"
  lengths = {"example_01": 18401, "example_02": 18413, "example_03": 21456,
             "example_04": 31299, "example_05": 21703}
  markers = {"example_01": 22, "example_02": 21, "example_03": 22,
             "example_04": 23, "example_05": 27}   # grep -c ' M'
  for name, length in lengths.items():
    acti = read_actigraphy(folder / f"{name}.AWD")
    assert acti.subject == name and acti.counts.size == length
    assert acti.epoch_seconds == 60.0 and acti.light is None
    assert int(acti.marker.sum()) == markers[name]
    assert acti.counts.min() == 0 and 1000 < acti.counts.max() < 10000
  first = read_awd(folder / "example_01.AWD")
  assert first.start == DT(1918, 1, 23, 13, 58)
  assert first.counts[:5].tolist() == [0, 0, 0, 149, 144]
  # The _mask file: example_01 with a block of counts zeroed by hand
  # (epochs 5492-5990, 1918-01-27 09:30 to 17:48), the "spurious inactivity"
  # that Choi's rule must find as non-wear.
  masked = read_awd(folder / "example_01_mask.AWD")
  changed = np.flatnonzero(masked.counts != first.counts)
  assert changed[0] == 5492 and changed[-1] == 5991
  assert (masked.counts[5492:5991] == 0).all()
  worn, worn_masked = (nonwear_mask(a.counts, 60.0) for a in (first, masked))
  assert worn[5492:5991].mean() > 0.9 and not worn_masked[5492:5991].any()
  assert not (worn_masked & ~worn).any()


# ---------------------------------------------------------------------------
# CSV/TSV exports.
# ---------------------------------------------------------------------------


def test_csv_iso_timestamps_gaps_and_light(tmp_path):
  path = _write(tmp_path, "dev.csv",
                "timestamp,Activity,White Light (lux)\n"
                "2020-01-23 13:58:00,10,5.5\n"
                "2020-01-23 13:58:30,0,\n"
                "2020-01-23 13:59:30,NaN,7\n"     # one epoch missing
                "2020-01-23T14:00:00,,8\n")
  acti = read_actigraphy(path)
  assert acti.subject == "dev" and acti.epoch_seconds == 30.0
  assert acti.start == DT(2020, 1, 23, 13, 58)
  np.testing.assert_array_equal(acti.counts, [10, 0, np.nan, np.nan, np.nan])
  np.testing.assert_array_equal(acti.light, [5.5, np.nan, np.nan, 7, 8])
  assert acti.marker.shape == (5,) and not acti.marker.any()


def test_csv_date_and_time_columns_prefer_axis1(tmp_path):
  path = _write(tmp_path, "agd.csv",
                "Date, Time,Vector Magnitude,Axis1,Axis2\n"
                "1/25/2020,11:59:00 PM,50,40,3\n"
                "1/26/2020,12:00:00 AM,60,0,1\n")
  acti = read_actigraphy_csv(path)
  assert acti.start == DT(2020, 1, 25, 23, 59) and acti.epoch_seconds == 60
  np.testing.assert_array_equal(acti.counts, [40, 0])
  assert acti.light is None and not acti.marker.any()


def test_csv_prefers_an_explicit_activity_column(tmp_path):
  path = _write(tmp_path, "a.csv", "time,axis1,vector_magnitude,Activity_Counts"
                "\n2020-01-01 00:00,1,2,3\n2020-01-01 00:01,4,5,6\n")
  np.testing.assert_array_equal(read_actigraphy_csv(path).counts, [3, 6])


@pytest.mark.parametrize("cells,start", [
    (["25/01/2020 23:59", "26/01/2020 00:00"], DT(2020, 1, 25, 23, 59)),
    (["01/25/2020 23:59:00", "01/26/2020 00:00:00"], DT(2020, 1, 25, 23, 59)),
    # both orders read these; only day/month gives one-minute steps
    (["01/02/2020 23:59", "02/02/2020 00:00"], DT(2020, 2, 1, 23, 59)),
    (["02/01/2020 23:59", "02/02/2020 00:00"], DT(2020, 2, 1, 23, 59)),
    (["23.01.2020 10:00", "23.01.2020 10:01"], DT(2020, 1, 23, 10)),
    (["2020/01/23 10:00:00", "2020/01/23 10:01:00"], DT(2020, 1, 23, 10)),
])
def test_csv_date_orders(tmp_path, cells, start):
  path = _write(tmp_path, "a.csv", "datetime,counts\n"
                + "".join(f"{c},1\n" for c in cells))
  acti = read_actigraphy_csv(path)
  assert acti.start == start and acti.epoch_seconds == 60.0


def test_csv_truly_ambiguous_dates_are_refused(tmp_path):
  path = _write(tmp_path, "a.csv", "time,counts\n05/03/2020 10:00,1\n"
                "05/03/2020 10:01,2\n")
  message = _raises(read_actigraphy_csv, path)
  assert str(path) in message and "day/month" in message
  assert "YYYY-MM-DD" in message


def test_tsv(tmp_path):
  path = _write(tmp_path, "a.tsv", "Date Time\tCount\tLux\n"
                "2020-01-01 00:00:00\t3\t1\n2020-01-01 00:00:15\t4\t2\n")
  acti = read_actigraphy(path)
  assert acti.epoch_seconds == 15.0
  np.testing.assert_array_equal(acti.counts, [3, 4])
  np.testing.assert_array_equal(acti.light, [1, 2])
  bad = _write(tmp_path, "b.tsv", "time\tcount\n2020-01-01 00:00\t1\t2\n")
  assert "line 2" in _raises(read_actigraphy, bad)


@pytest.mark.parametrize("text,words", [
    ("time,counts\n2020-01-01 00:00,1\n2020-01-01 00:01,abc\n",
     ["line 3", "counts 'abc'", "empty or NaN"]),
    ("time,counts\n2020-01-01 00:00,-1\n2020-01-01 00:01,1\n",
     ["line 2", "'-1'"]),
    ("time,counts,light\n2020-01-01 00:00,1,x\n2020-01-01 00:01,1,2\n",
     ["line 2", "light 'x'"]),
    ("time,counts\n2020-01-01 00:01,1\n2020-01-01 00:00,1\n",
     ["line 3", "is not after", "increasing"]),
    ("time,counts\n2020-01-01 00:00,1\n2020-01-01 00:01,1\n"
     "2020-01-01 00:02,1\n2020-01-01 00:03:30,1\n",
     ["line 5", "90 s", "whole number of 60-s epochs"]),
    ("time,counts\n2020-01-01 00:00,1\n\n2020-13-45 00:01,1\n",
     ["line 4", "'2020-13-45 00:01'", "ISO 8601"]),
    ("time,counts\n2020-01-01 00:00,1\n", ["one row", "epoch length"]),
    ("when,counts\n2020-01-01 00:00,1\n",
     ["no timestamp column among ['when', 'counts']", "datetime"]),
    ("time,steps,x\n2020-01-01 00:00,1,2\n",
     ["no activity column among ['time', 'steps', 'x']", "activity_counts",
      "axis1", "vector magnitude"]),
    ("time,counts\n", ["no rows"]),
    ("time,counts\n2020-01-01 00:00,1\n2020-01-01 00:01+01:00,1\n",
     ["UTC offset"]),
])
def test_bad_csv_is_refused(tmp_path, text, words):
  path = _write(tmp_path, "a.csv", text)
  message = _raises(read_actigraphy_csv, path)
  assert str(path) in message
  for word in words:
    assert word in message


# ---------------------------------------------------------------------------
# Non-wear (Choi et al. 2011).
# ---------------------------------------------------------------------------


def _activity(*runs):
  """Counts from (value, minutes) runs at 1-minute epochs."""
  return np.concatenate([np.full(m, v, np.float32) for v, m in runs])


def test_nonwear_needs_90_minutes_of_zeros():
  x = _activity((5, 20), (0, 90), (5, 20), (0, 89), (5, 20))
  worn = nonwear_mask(x, 60.0)
  assert worn.dtype == bool and worn.shape == x.shape
  assert not worn[20:110].any() and worn[110:].all() and worn[:20].all()


def test_nonwear_allows_short_interruptions_inside_zeros():
  spike = _activity((5, 10), (0, 45), (9, 2), (0, 45), (5, 10))
  assert not nonwear_mask(spike, 60.0)[10:102].any()
  long_spike = _activity((5, 10), (0, 45), (9, 3), (0, 45), (5, 10))
  assert nonwear_mask(long_spike, 60.0).all()
  # Choi: the 30 minutes around an interruption must be zero.
  near = _activity((5, 10), (0, 20), (9, 1), (0, 69), (7, 1), (0, 20), (5, 5))
  assert nonwear_mask(near, 60.0).all()
  assert not nonwear_mask(near, 60.0, context_minutes=0)[10:121].any()


def test_nonwear_for_other_epochs_and_missing_counts():
  x = _activity((5, 10), (0, 180), (5, 10))     # 30-s epochs: 90 minutes
  assert not nonwear_mask(x, 30.0)[10:190].any()
  assert nonwear_mask(_activity((5, 10), (0, 179), (5, 10)), 30.0).all()
  assert nonwear_mask(x, 10.0).all()             # 10-s epochs: 30 minutes
  assert not nonwear_mask(x, 60.0, min_minutes=180)[10:190].any()
  y = _activity((5, 10), (0, 10), (5, 10))
  y[3] = np.nan
  worn = nonwear_mask(y, 60.0)
  assert not worn[3] and worn.sum() == 29
  assert nonwear_mask(_activity((0, 20)), 60.0, min_minutes=15).sum() == 0


# ---------------------------------------------------------------------------
# Sleep diaries.
# ---------------------------------------------------------------------------


def test_diary_and_its_epochs(tmp_path):
  path = _write(tmp_path, "d.csv", "Type,Start,End,Note\n"
                "night,2020-01-01 22:00:30,2020-01-02 06:00:00,x\n"
                "NAP,2020-01-02 13:00:00,2020-01-02 13:45:00,\n")
  diary = read_sleep_diary(path)
  assert diary == (DiaryPeriod("NIGHT", DT(2020, 1, 1, 22, 0, 30),
                               DT(2020, 1, 2, 6)),
                   DiaryPeriod("NAP", DT(2020, 1, 2, 13),
                               DT(2020, 1, 2, 13, 45)))
  night = diary_epochs(diary, DT(2020, 1, 1, 21), 60.0, 24 * 60, "Night")
  assert night.sum() == 480 and night[60] and not night[59]
  assert night[539] and not night[540]
  nap = diary_epochs(diary, DT(2020, 1, 2, 12, 30), 900.0, 4, "NAP")
  np.testing.assert_array_equal(nap, [False, False, True, True])
  assert not diary_epochs(diary, DT(2020, 1, 1), 60.0, 10, "NOWEAR").any()


@pytest.mark.parametrize("text,words", [
    ("TYPE,START,END\nNAP,2020-01-02 13:00:00,2020-01-02 12:00:00\n",
     ["line 2", "END after the START"]),
    ("TYPE,START,END\nNAP,2020-01-02 13:00:00,2020-01-02 14:00:00\n"
     ",2020-01-02 13:00:00,2020-01-02 14:00:00\n", ["line 3", "a TYPE"]),
    ("TYPE,START,END\nNAP,2020-01-02 13:00:00,tomorrow\n",
     ["line 2", "END 'tomorrow'", "YYYY-MM-DD HH:MM:SS"]),
    ("KIND,FROM,TO\nNAP,2020-01-02 13:00:00,2020-01-02 14:00:00\n",
     ["TYPE, START or END"]),
])
def test_bad_diary_is_refused(tmp_path, text, words):
  path = _write(tmp_path, "d.csv", text)
  message = _raises(read_sleep_diary, path)
  assert str(path) in message
  for word in words:
    assert word in message


def test_shared_sleep_diary(shared_data_dir):
  folder = shared_data_dir / "sleep" / "actigraphy"
  diary = read_sleep_diary(folder / "example_01_sleepdiary.csv")
  assert len(diary) >= 9 and len(diary) == 22
  assert {p.kind for p in diary} == {"NIGHT", "NAP", "NOWEAR"}
  assert all(p.end > p.start for p in diary)
  nowear = [p for p in diary if p.kind == "NOWEAR"]
  assert nowear[0] == DiaryPeriod("NOWEAR", DT(1918, 1, 28, 12),
                                  DT(1918, 1, 28, 12, 30))
  acti = read_awd(folder / "example_01.AWD")
  mask = diary_epochs(diary, acti.start, acti.epoch_seconds, acti.counts.size,
                      "nowear")
  assert mask.sum() == 30 + 53
  first = int((nowear[0].start - acti.start).total_seconds() // 60)
  assert mask[first:first + 30].all() and not mask[first - 1]
