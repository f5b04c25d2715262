"""Data parallelism: a device mesh, replicated state, batch sharded on 'data'.

One jitted step runs on every device of the mesh; XLA partitions the batch
and inserts the gradient all-reduce (and the cross-device BatchNorm
statistics), so the sharded step computes the same function as the
single-device one. `jax.pmap` is not used: the sharded-jit form is current
JAX's data-parallel idiom and extends to multi-host meshes after
`jax.distributed.initialize()`.
"""

from __future__ import annotations

from typing import Any, Callable

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


def batch_sharding(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
  """Shards axis `batch_axis` of every batch array over the 'data' axis."""
  return NamedSharding(mesh, P(*([None] * batch_axis), DATA_AXIS))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
  n = mesh.devices.size
  if batch_size % n:
    raise ConfigError(
        f"--batch-size {batch_size} is not divisible by the {n} devices of "
        f"the mesh; use a multiple of {n} or set --num-devices")


def jit_sharded_step(step: Callable, mesh: Mesh, batch_axis: int = 0,
                     donate_state: bool = True) -> Callable:
  """jit(step) with the state replicated and the batch sharded.

  Args:
    step: `step(state, batch, key) -> (state, metrics)`.
    mesh: the device mesh.
    batch_axis: the axis of each batch array that indexes examples.
    donate_state: donate the input state's buffers to the output.
  """
  rep = replicated(mesh)
  return jax.jit(
      step,
      in_shardings=(rep, batch_sharding(mesh, batch_axis), rep),
      out_shardings=(rep, rep),
      donate_argnums=(0,) if donate_state else (),
  )


def put_batch(batch: dict[str, Any], mesh: Mesh, batch_axis: int = 0):
  """Copies a numpy batch to the devices, sharded along `batch_axis`."""
  return jax.device_put(batch, batch_sharding(mesh, batch_axis))
