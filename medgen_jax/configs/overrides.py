"""Reading configs from files and overriding fields, with strict types.

Every way a user changes a config (a `.py` file with `get_config()`, a
`.json` file such as a run's `config.json`, `--set a.b=value`, a family's
flags) ends in `apply_overrides`, which checks each value against the type
the family's default config declares for that field before ml_collections
assigns it: a boolean is not a number, `null` only fits a field declared as
a placeholder, and a section is set field by field. Mistakes raise one-line
`ConfigError`s naming the file or flag and the field.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import pathlib
from typing import Any, Mapping

import ml_collections
from ml_collections import config_dict
from flax import traverse_util

from medgen_jax.errors import ConfigError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def flatten(config: ml_collections.ConfigDict | Mapping) -> dict[str, Any]:
  """{"a": {"b": 1}} -> {"a.b": 1}: fields by dotted path."""
  d = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else config
  return traverse_util.flatten_dict(dict(d), sep=".")


def _describe(value) -> str:
  text = repr(value)
  return text if len(text) <= 60 else text[:57] + "..."


def _field(config: ml_collections.ConfigDict, path: str, source: str):
  """(parent section, leaf name, declared type) of dotted `path`."""
  *parents, leaf = path.split(".")
  node = config
  for i, p in enumerate(parents):
    if p not in node or not isinstance(node[p], ml_collections.ConfigDict):
      where = ".".join(parents[:i + 1])
      raise ConfigError(f"{source}: config has no section {where!r} (in "
                        f"{path!r}); see a run's config.json for the fields")
    node = node[p]
  if not leaf or leaf not in node:
    raise ConfigError(f"{source}: config has no field {path!r}; see a run's "
                      "config.json (or the family's config module) for the "
                      "fields")
  return node, leaf, node.get_type(leaf)


def _coerce(value, kind: type, nullable: bool, path: str, source: str,
            from_text: bool, current=None):
  """`value` as a `kind` (text is parsed), or ConfigError. `current` is the
  field's value now: a list of numbers does not take bare names."""
  wrong = lambda why="": ConfigError(
      f"{source}: {path} expects {_type_name(kind)}"
      f"{' or null' if nullable else ''}, got {_describe(value)}{why}")
  if from_text and isinstance(value, str) and kind is not str:
    text = value.strip()
    if nullable and text.lower() in ("none", "null"):
      return None
    try:
      if kind is bool:
        if text.lower() in _TRUE:
          return True
        if text.lower() in _FALSE:
          return False
        raise ValueError
      if kind is int:
        return int(text)
      if kind is float:
        return float(text)
      if kind in (list, tuple):
        try:
          value = ast.literal_eval(text)
        except (ValueError, SyntaxError):  # names: "bmi,age" -> ("bmi", "age")
          if current and not all(isinstance(v, str) for v in current):
            raise
          value = tuple(t.strip() for t in text.split(",") if t.strip())
        if not isinstance(value, (list, tuple)):  # "32" -> (32,)
          value = (value,)
      else:
        raise ValueError
    except (ValueError, SyntaxError):
      raise wrong() from None
  if value is None:
    if nullable:
      return None
    raise wrong(" (null is not allowed here)")
  if kind is bool:
    if isinstance(value, bool):
      return value
    raise wrong()
  if kind is int:
    if isinstance(value, bool):
      raise wrong()
    if isinstance(value, int):
      return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
      return int(value)
    raise wrong()
  if kind is float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      raise wrong()
    return float(value)
  if kind is str:
    if isinstance(value, str):
      return value
    raise wrong()
  if kind in (list, tuple):
    if isinstance(value, (list, tuple)):
      return kind(value)
    raise wrong()
  if isinstance(value, kind):
    return value
  raise wrong()


def _type_name(kind: type) -> str:
  return {bool: "true or false", int: "an integer", float: "a number",
          str: "a string", list: "a list", tuple: "a list"}.get(
              kind, kind.__name__)


def apply_overrides(config: ml_collections.ConfigDict,
                    values: Mapping[str, Any], source: str, *,
                    from_text: bool = False) -> None:
  """Sets fields of `config` by dotted path, checking each declared type.

  Args:
    config: the config to change in place (a family's full config).
    values: dotted path -> value; a mapping value sets a section field by
      field.
    source: the file or flag the values come from, for error messages.
    from_text: values are command-line text to parse into each field's type.
  """
  checked = {}
  for path, value in values.items():
    if not isinstance(path, str):
      raise ConfigError(f"{source}: field names must be strings, got "
                        f"{_describe(path)}")
    node, leaf, kind = _field(config, path, source)
    if isinstance(node[leaf], ml_collections.ConfigDict):
      if isinstance(value, Mapping) and not from_text:
        apply_overrides(config, {f"{path}.{k}": v for k, v in value.items()},
                        source)
        continue
      raise ConfigError(
          f"{source}: {path} is a section, not a value; set its fields "
          f"one by one (e.g. {path}.FIELD=VALUE)")
    nullable = _is_placeholder(node, leaf)
    checked[path] = _coerce(value, kind, nullable, path, source, from_text,
                            node[leaf])
  if checked:
    config.update_from_flattened_dict(checked)


def _is_placeholder(node: ml_collections.ConfigDict, leaf: str) -> bool:
  """Whether the field was declared with `config_dict.placeholder(type)`
  (None allowed), which ConfigDict keeps as a typed FieldReference."""
  if node[leaf] is None:
    return True
  return isinstance(node._fields.get(leaf), config_dict.FieldReference)  # pylint: disable=protected-access


def read_config_file(path: str) -> Mapping[str, Any]:
  """The fields a `.py` (get_config()) or `.json` config file sets.

  Returns:
    A nested mapping (a ConfigDict for .py files), not yet checked against
    a family; `merge_config_file` does that.
  """
  p = pathlib.Path(path)
  where = f"--config {path}"
  if not p.is_file():
    raise ConfigError(f"{where}: file not found" if not p.exists()
                      else f"{where}: not a file")
  if p.suffix == ".json":
    try:
      text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
      raise ConfigError(f"{where}: not UTF-8 text ({e.reason} at byte "
                        f"{e.start}); save it as UTF-8 JSON") from None
    except OSError as e:
      raise ConfigError(f"{where}: cannot read ({e.strerror})") from None
    try:
      data = json.loads(text)
    except json.JSONDecodeError as e:
      raise ConfigError(f"{where}: invalid JSON ({e})") from None
    except RecursionError:
      raise ConfigError(f"{where}: JSON nested too deeply") from None
    if not isinstance(data, dict):
      raise ConfigError(f"{where}: expected a JSON object of config "
                        f"sections, got {type(data).__name__}")
    return data
  if p.suffix == ".py":
    spec = importlib.util.spec_from_file_location("medgen_user_config", p)
    module = importlib.util.module_from_spec(spec)
    try:
      spec.loader.exec_module(module)
    except KeyboardInterrupt:
      raise
    except BaseException as e:  # noqa: BLE001 (the user's code, any failure)
      raise ConfigError(f"{where}: failed to run ({_one_line(e)})") from None
    get = getattr(module, "get_config", None)
    if not callable(get):
      raise ConfigError(f"{where}: defines no get_config() function")
    try:
      config = get()
    except KeyboardInterrupt:
      raise
    except BaseException as e:  # noqa: BLE001
      raise ConfigError(f"{where}: get_config() failed ({_one_line(e)})") from None
    if not isinstance(config, (ml_collections.ConfigDict, Mapping)):
      raise ConfigError(f"{where}: get_config() returned "
                        f"{type(config).__name__}; expected an "
                        "ml_collections.ConfigDict (or a dict)")
    return config
  raise ConfigError(f"{where}: expected a .py file with get_config() or a "
                    ".json file")


def merge_config_file(config: ml_collections.ConfigDict, path: str,
                      upgrade=None) -> None:
  """Overlays the fields of config file `path` onto `config` (in place).

  The file may set any subset of the family's fields; the rest keep their
  defaults. A file written for another family is refused.

  Args:
    config: the family's config.
    path: a .py or .json config file.
    upgrade: the family's `upgrade_config` (flattened fields of an older
      layout -> today's), applied before the fields are checked.
  """
  data = read_config_file(path)
  if isinstance(data, ml_collections.ConfigDict):
    data = data.to_dict()
  family = data.get("family", config.family)
  if family != config.family:
    raise ConfigError(
        f"--config {path} is a config of family {family!r}, not "
        f"{config.family!r}; run `medgen train {family} --config {path}`")
  try:
    flat = traverse_util.flatten_dict(data, sep=".")
  except (TypeError, AttributeError) as e:
    raise ConfigError(f"--config {path}: unreadable structure ({e})") from None
  if upgrade is not None:
    flat = upgrade(flat)
  apply_overrides(config, flat, f"--config {path}")


def _one_line(e: BaseException) -> str:
  if isinstance(e, SystemExit):
    return f"it called sys.exit({e.code!r})"
  text = " ".join(str(e).split())
  return f"{type(e).__name__}: {text}"[:300] if text else type(e).__name__
