"""Families are found by name; the protocol's defaults; config per family."""

import pytest

from medgen_jax.errors import ConfigError, UnknownNameError
from medgen_jax.train import task as task_mod
from medgen_jax.train.task import (TASKS, BaseTask, Task, family_names,
                                   get_config, get_task)


def test_builtin_family_found_by_module_name():
  from medgen_jax.families.gan import GanTask
  assert get_task("gan") is GanTask
  config = get_config("gan")
  config.gan.channels, config.gan.num_classes = 1, 0  # as a run resolves them
  assert isinstance(GanTask(config), Task)  # satisfies the typed protocol
  assert "gan" in family_names()
  c = get_config("gan")
  assert c.family == "gan" and "gan" in c and "privacy" in c


def test_unknown_family_lists_the_known_ones():
  with pytest.raises(UnknownNameError, match="unknown model family 'gna'.*gan"):
    get_task("gna")


def test_plugins_from_the_environment(tmp_path, monkeypatch):
  (tmp_path / "my_family_plugin.py").write_text(
      "from medgen_jax.train.task import TASKS, BaseTask\n"
      "@TASKS.register('plugged')\n"
      "class Plugged(BaseTask):\n"
      "  get_config = init_state = generate = staticmethod(print)\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  monkeypatch.setenv(task_mod.PLUGINS_ENV, "my_family_plugin")
  try:
    assert get_task("plugged").name == "plugged"
    assert "plugged" in family_names()
  finally:
    TASKS._entries.pop("plugged", None)
  monkeypatch.setenv(task_mod.PLUGINS_ENV, "no_such_module_xyz")
  with pytest.raises(ConfigError, match="no module 'no_such_module_xyz'"):
    task_mod.import_plugins()


def test_incomplete_family_is_refused_by_name():
  @TASKS.register("half")
  class Half(BaseTask):
    pass

  try:
    with pytest.raises(TypeError, match="'half'.*get_config, init_state, generate"):
      get_task("half")
  finally:
    TASKS._entries.pop("half")


def test_base_task_defaults():
  import numpy as np
  from medgen_jax.data.base import Split
  from medgen_jax.data.pipeline import IndexSampler
  t = BaseTask()
  split = Split({"x": np.arange(10.0)[:, None], "y": np.arange(10)})
  sampler = IndexSampler(10, 4, seed=0)
  batch = t.make_batch(split, sampler, 1)
  np.testing.assert_array_equal(batch["y"], sampler.indices(1))
  assert t.batch_axes(batch) == {"x": 0, "y": 0}
  assert t.checkpoint_metadata(None) == {}
