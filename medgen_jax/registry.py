"""A small name -> object registry shared by datasets, losses and model families.

Later model families (VAE, recurrent, survival) add themselves to the same
registries with the `register` decorator; the CLI and the loop look names up
with `get`, which turns a typo into a `UnknownNameError` listing the choices.
"""

from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from medgen_jax.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
  """Maps names to objects (usually factories).

  Args:
    kind: what the entries are, used in error messages ("dataset", "loss").
    hint: how the user chooses an entry, e.g. "--data".
  """

  def __init__(self, kind: str, hint: str = ""):
    self.kind = kind
    self.hint = hint
    self._entries: dict[str, T] = {}

  def register(self, name: str, obj: T | None = None):
    """Registers `obj` under `name`; usable as a decorator when obj is None."""
    if obj is not None:
      self._add(name, obj)
      return obj

    def decorator(o: T) -> T:
      self._add(name, o)
      return o

    return decorator

  def _add(self, name: str, obj: T) -> None:
    if name in self._entries:
      raise ValueError(f"{self.kind} {name!r} is already registered")
    self._entries[name] = obj

  def get(self, name: str) -> T:
    """Returns the entry called `name` or raises UnknownNameError."""
    try:
      return self._entries[name]
    except KeyError:
      close = difflib.get_close_matches(name, self._entries, n=1)
      maybe = f" Did you mean {close[0]!r}?" if close else ""
      where = f" ({self.hint})" if self.hint else ""
      raise UnknownNameError(
          f"unknown {self.kind}{where} {name!r}; expected one of: "
          f"{', '.join(sorted(self._entries))}.{maybe}") from None

  def names(self) -> list[str]:
    return sorted(self._entries)

  def __contains__(self, name: object) -> bool:
    return name in self._entries

  def __iter__(self) -> Iterator[str]:
    return iter(self.names())
