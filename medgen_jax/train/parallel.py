"""Data parallelism: a device mesh, replicated state, batch sharded on 'data'.

One jitted step runs on every device of the mesh; XLA partitions the batch
and inserts the gradient all-reduce (and the cross-device BatchNorm
statistics), so the sharded step computes the same function as the
single-device one. `jax.pmap` is not used: the sharded-jit form is current
JAX's data-parallel idiom and extends to multi-host meshes after
`jax.distributed.initialize()`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from medgen_jax.errors import ConfigError

DATA_AXIS = "data"


def make_mesh(num_devices: int = 0) -> Mesh:
  """A 1-D mesh over the first `num_devices` devices (0 = all)."""
  devices = jax.devices()
  if num_devices < 0 or num_devices > len(devices):
    raise ConfigError(
        f"--num-devices {num_devices} but {len(devices)} devices are "
        "visible; use 0 for all of them")
  n = num_devices or len(devices)
  return Mesh(np.asarray(devices[:n]), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_shardings(mesh: Mesh, axes: Mapping[str, int | None]
                    ) -> dict[str, NamedSharding]:
  """One sharding per batch array: its example axis split over 'data'.

  Args:
    mesh: the device mesh.
    axes: batch key -> the axis that indexes examples, or None to replicate
      the array on every device (e.g. a per-batch constant).
  """
  return {k: NamedSharding(mesh, P() if a is None else
                           P(*([None] * a), DATA_AXIS))
          for k, a in axes.items()}


def check_batch(batch: Mapping[str, Any], axes: Mapping[str, int | None],
                mesh: Mesh) -> None:
  """The batch's keys match `axes`, and every sharded axis divides evenly."""
  if set(batch) != set(axes):
    raise ValueError(f"the task's batch has keys {sorted(batch)} but its "
                     f"batch_axes name {sorted(axes)}")
  n = mesh.devices.size
  for k, a in axes.items():
    if a is None:
      continue
    size = np.shape(batch[k])[a]
    if size % n:
      raise ConfigError(
          f"--batch-size: batch array {k!r} has {size} examples on axis {a}, "
          f"not divisible by the {n} devices of the mesh; use a multiple of "
          f"{n} or set --num-devices")


def jit_sharded_step(step: Callable, mesh: Mesh,
                     shardings: Mapping[str, NamedSharding],
                     donate_state: bool = True) -> Callable:
  """jit(step) with the state replicated and the batch sharded.

  Args:
    step: `step(state, batch, key) -> (state, metrics)`.
    mesh: the device mesh.
    shardings: per batch key, from `batch_shardings`.
    donate_state: donate the input state's buffers to the output.
  """
  rep = replicated(mesh)
  return jax.jit(
      step,
      in_shardings=(rep, dict(shardings), rep),
      out_shardings=(rep, rep),
      donate_argnums=(0,) if donate_state else (),
  )


def put_batch(batch: Mapping[str, Any], shardings: Mapping[str, NamedSharding]):
  """Copies a numpy batch to the devices, each array with its sharding."""
  return {k: jax.device_put(v, shardings[k]) for k, v in batch.items()}
