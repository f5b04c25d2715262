"""Config files and overrides: strict types, sections, families."""

import json

import pytest

from medgen_jax.configs import gan
from medgen_jax.configs.base import validate_base
from medgen_jax.configs.overrides import (apply_overrides, flatten,
                                          merge_config_file)
from medgen_jax.errors import ConfigError


def test_text_values_are_parsed_into_the_declared_type():
  c = gan.get_config()
  apply_overrides(c, {"gan.width": "32", "gan.conditional": "yes",
                      "optimizer.learning_rate": "1e-3", "data.name": "x",
                      "gan.g_learning_rate": "5e-4"}, "--set", from_text=True)
  assert (c.gan.width, c.gan.conditional, c.optimizer.learning_rate,
          c.data.name, c.gan.g_learning_rate) == (32, True, 1e-3, "x", 5e-4)
  apply_overrides(c, {"gan.g_learning_rate": "none"}, "--set", from_text=True)
  assert c.gan.g_learning_rate is None  # a placeholder accepts null


@pytest.mark.parametrize("values,message", [
    ({"train.steps": True}, "train.steps expects an integer, got True"),
    ({"train.steps": 2.5}, "train.steps expects an integer"),
    ({"optimizer.b1": False}, "optimizer.b1 expects a number"),
    ({"gan.width": None}, "null is not allowed"),
    ({"gan.conditional": 1}, "gan.conditional expects true or false"),
    ({"data.name": 3}, "data.name expects a string"),
    ({"gan": 3}, "gan is a section"),
    ({"nope.x": 1}, "no section 'nope'"),
    ({"gan.nope": 1}, "no field 'gan.nope'"),
])
def test_wrong_types_are_refused(values, message):
  with pytest.raises(ConfigError, match=message):
    apply_overrides(gan.get_config(), values, "test")


def test_json_integers_may_be_written_as_floats():
  c = gan.get_config()
  apply_overrides(c, {"train.steps": 30.0, "optimizer.learning_rate": 1},
                  "test")
  assert c.train.steps == 30 and isinstance(c.train.steps, int)
  assert c.optimizer.learning_rate == 1.0


def test_a_resolved_config_round_trips(tmp_path):
  c = gan.get_config()
  c.gan.channels, c.gan.num_classes, c.gan.width = 3, 0, 16
  path = tmp_path / "config.json"
  path.write_text(json.dumps(c.to_dict()))
  again = gan.get_config()
  merge_config_file(again, str(path))
  assert flatten(again) == flatten(c)


@pytest.mark.parametrize("field,value,message", [
    ("seed", -1, "seed must be >= 0"),
    ("seed", 2**32, "seed must be < 4294967296"),
    ("data.seed", -5, "data.seed must be >= 0"),
    ("train.num_samples", 0, "train.num_samples must be >= 1"),
    ("train.keep_checkpoints", 0, "train.keep_checkpoints must be >= 1"),
    ("train.num_devices", -1, "train.num_devices must be >= 0"),
    ("optimizer.b1", 1.0, "optimizer.b1"),
    ("optimizer.b2", 1.5, "optimizer.b2"),
    ("optimizer.momentum", -0.1, "optimizer.momentum"),
    ("optimizer.learning_rate", float("inf"), "optimizer.learning_rate"),
    ("data.name", "", "data.name is empty"),
])
def test_base_validation(field, value, message):
  c = gan.get_config()
  apply_overrides(c, {field: value}, "test")
  with pytest.raises(ConfigError, match=message):
    validate_base(c)


def test_defaults_are_valid():
  validate_base(gan.get_config())


def test_tuple_fields_take_one_or_several_values():
  from medgen_jax.configs import vae
  c = vae.get_config()
  apply_overrides(c, {"vae.hidden": "256,128"}, "--hidden", from_text=True)
  assert c.vae.hidden == (256, 128)
  apply_overrides(c, {"vae.hidden": "32"}, "--hidden", from_text=True)
  assert c.vae.hidden == (32,)
  with pytest.raises(ConfigError, match="vae.hidden expects a list"):
    apply_overrides(c, {"vae.hidden": "wide"}, "--hidden", from_text=True)
  # A list of names takes bare comma-separated words.
  from medgen_jax.configs import survival
  c = survival.get_config()
  apply_overrides(c, {"data.drop_columns": "bmi, age"}, "--drop",
                  from_text=True)
  assert c.data.drop_columns == ("bmi", "age")
  apply_overrides(c, {"data.drop_columns": ""}, "--drop", from_text=True)
  assert c.data.drop_columns == ()
