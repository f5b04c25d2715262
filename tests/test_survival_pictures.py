"""survival_pictures: step vertices, pixel mapping, drawn curves, errors."""

import numpy as np
import pytest

from medgen_jax import survival_pictures as sp
from medgen_jax.errors import DataError
from medgen_jax.traces import COLORS

MAX_T = 10.0
WHITE = np.ones(3, np.float32)


def _color(i):
  return np.asarray(COLORS[i], np.float32) / 127.5 - 1.0


def _groups():
  return [
      dict(name="low risk (n=2)", km_times=np.array([2.0, 5.0]),
           km_surv=np.array([0.8, 0.4]), times=np.array([0.0, 10.0]),
           surv=np.array([0.1, 0.1])),
      dict(name="high risk (n=2)", km_times=np.array([1.0, 8.0]),
           km_surv=np.array([0.9, 0.6]), times=np.array([0.0, 10.0]),
           surv=np.array([0.3, 0.3])),
  ]


@pytest.fixture(scope="module")
def panel():
  return sp.survival_panel(_groups(), title="test", max_time=MAX_T)


def _pixel(img, t, s):
  x, y = sp.plot_to_pixel(t, s, MAX_T)
  return img[0, y, x]


def test_step_points_by_hand():
  got = sp.step_points([2.0, 5.0], [0.8, 0.4], 10.0)
  np.testing.assert_allclose(
      got, [[0, 1], [2, 1], [2, 0.8], [5, 0.8], [5, 0.4]])
  # cut at max_time: the last level runs to the right edge
  np.testing.assert_allclose(sp.step_points([2.0, 5.0], [0.8, 0.4], 4.0),
                             [[0, 1], [2, 1], [2, 0.8], [4, 0.8]])
  # an event at time 0 drops at once; no duplicate vertex
  np.testing.assert_allclose(sp.step_points([0.0, 3.0], [0.9, 0.5], 10.0),
                             [[0, 1], [0, 0.9], [3, 0.9], [3, 0.5]])
  np.testing.assert_allclose(sp.step_points([], [], 1.0), [[0, 1]])


def test_plot_to_pixel_maps_the_axes_box():
  assert sp.plot_to_pixel(0.0, 1.0, MAX_T) == (sp.LEFT, sp.TOP)
  assert sp.plot_to_pixel(MAX_T, 0.0, MAX_T) == (sp.RIGHT, sp.BOTTOM)
  x, y = sp.plot_to_pixel(np.array([0.0, 5.0]), np.array([0.5, 0.5]), MAX_T)
  assert x.tolist() == [sp.LEFT, round((sp.LEFT + sp.RIGHT) / 2)]
  assert y.tolist() == [round((sp.TOP + sp.BOTTOM) / 2)] * 2


def test_nice_ticks():
  np.testing.assert_allclose(sp.nice_ticks(10.0), [0, 2.5, 5, 7.5, 10])
  np.testing.assert_allclose(sp.nice_ticks(730.0), [0, 200, 400, 600])
  np.testing.assert_allclose(sp.nice_ticks(4.1), [0, 1, 2, 3, 4])
  np.testing.assert_allclose(sp.nice_ticks(1.0), [0, 0.25, 0.5, 0.75, 1])


def test_panel_shape_dtype_range(panel):
  assert panel.shape == (1, sp.HEIGHT, sp.WIDTH, 3)
  assert panel.dtype == np.float32
  assert panel.min() >= -1.0 and panel.max() <= 1.0
  assert np.allclose(panel[0, 0, 0], WHITE)


def test_kaplan_meier_steps_have_their_group_colour(panel):
  np.testing.assert_allclose(_pixel(panel, 3.5, 0.8), _color(0))  # level
  np.testing.assert_allclose(_pixel(panel, 5.0, 0.6), _color(0))  # drop
  np.testing.assert_allclose(_pixel(panel, 1.5, 1.0), _color(0))  # before 2
  np.testing.assert_allclose(_pixel(panel, 4.0, 0.9), _color(1))
  np.testing.assert_allclose(_pixel(panel, 8.0, 0.7), _color(1))  # drop
  np.testing.assert_allclose(_pixel(panel, 7.0, 0.7), WHITE)      # off-curve
  # the KM line stops at its last time (5): nothing of group 0 at S=0.4 later
  assert not np.allclose(_pixel(panel, 7.0, 0.4), _color(0))


def test_predicted_curve_is_dashed(panel):
  x, y = sp.plot_to_pixel(np.linspace(0.5, 9.5, 200), 0.1, MAX_T)
  row = panel[0, y, x]                                     # [200, 3]
  coloured = np.isclose(row, _color(0), atol=1e-3).all(-1)
  blank = np.isclose(row, WHITE).all(-1)
  assert coloured.sum() > 50 and blank.sum() > 30
  assert coloured.sum() + blank.sum() == len(row)


def test_legend_names_each_group(panel):
  legend = panel[0, sp.TOP:sp.TOP + 90, sp.LEGEND_LEFT:]
  assert not np.allclose(legend, 1.0)
  for i in range(2):
    assert np.isclose(legend, _color(i), atol=1e-3).all(-1).any()


def test_group_without_kaplan_meier_and_default_max_time():
  groups = _groups()
  groups[0]["km_times"] = groups[0]["km_surv"] = None
  del groups[1]["km_times"], groups[1]["km_surv"]
  img = sp.survival_panel(groups)                  # max_time from the times
  assert img.shape == (1, sp.HEIGHT, sp.WIDTH, 3)
  np.testing.assert_allclose(_pixel(img, 3.5, 0.8), WHITE)


def _with(i, **changes):
  groups = _groups()
  groups[i].update(changes)
  return groups


@pytest.mark.parametrize("groups, match", [
    ([], "no groups"),
    (["not a dict"], "lacks"),
    ([{"name": "a", "times": [1.0]}], "lacks"),
    (_with(0, surv=np.array([1.0, 0.5, 0.2])), "does not match"),
    (_with(1, km_surv=np.array([0.9])), "does not match"),
    (_with(0, times=np.array([0.0, np.nan])), "NaN"),
    (_with(0, km_surv=np.array([0.8, np.inf])), "NaN"),
    (_with(0, surv=np.array([1.1, 0.5])), r"\[0, 1\]"),
    (_with(1, km_surv=np.array([0.5, -0.01])), r"\[0, 1\]"),
    (_with(0, times=np.array([-1.0, 10.0])), "non-decreasing"),
    (_with(1, km_times=np.array([8.0, 1.0])), "non-decreasing"),
    (_with(0, km_times=None), "only one"),
    (_with(0, times=np.zeros((2, 2)), surv=np.zeros((2, 2))), "1-D"),
])
def test_bad_input_raises_one_line_data_error(groups, match):
  with pytest.raises(DataError, match=match) as info:
    sp.survival_panel(groups, max_time=MAX_T)
  assert "\n" not in str(info.value)


def test_bad_max_time_and_survival_tolerance():
  with pytest.raises(DataError, match="max_time"):
    sp.survival_panel(_groups(), max_time=0.0)
  zero = [dict(name="a", times=np.zeros(2), surv=np.ones(2))]
  with pytest.raises(DataError, match="max_time"):
    sp.survival_panel(zero)
  # rounding just outside [0, 1] is accepted (clipped)
  ok = _with(0, surv=np.array([1 + 1e-7, -1e-7]))
  assert sp.survival_panel(ok, max_time=MAX_T).shape[0] == 1
