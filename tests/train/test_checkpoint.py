"""Checkpointer: round trips, keep-last-k, resharding, and every failure mode
(damaged, deleted and stray files, full disk, bad folders) as one-line
CheckpointErrors that leave the previous checkpoints usable."""

import errno
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import threading
import time

import flax
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from medgen_jax.errors import CheckpointError
from medgen_jax.train import checkpoint as ckpt_lib
from medgen_jax.train import checkpoint_failures as failures_lib
from medgen_jax.train.checkpoint import Checkpointer, Restored

REPO = pathlib.Path(__file__).resolve().parents[2]


def _state(seed: int = 0, step: int = 3) -> dict:
  """A tiny training-state-like pytree: arrays and a Python int step."""
  return {
      "params": {"w": jnp.arange(6.0).reshape(2, 3) + seed,
                 "b": jnp.full((8, 2), seed, jnp.int32)},
      "opt": [jnp.ones(4) * seed, jnp.zeros((), jnp.float32) + seed],
      "step": step,
  }


def _abstract(state, sharding=None):
  """Shapes and dtypes of `state`, on `sharding` (None: no sharding given)."""
  def leaf(x):
    if isinstance(x, int):
      return 0
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)
  return jax.tree.map(leaf, state)


def _assert_same(restored, expected):
  assert jax.tree.structure(restored) == jax.tree.structure(expected)
  for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert np.asarray(got).dtype == np.asarray(want).dtype


def _one_line(e: pytest.ExceptionInfo, *parts: str) -> str:
  """The error's message, checked to be one line containing `parts`."""
  message = str(e.value)
  assert "\n" not in message, message
  for part in parts:
    assert str(part) in message, (part, message)
  return message


def _tmp_folders(folder):
  return [p.name for p in pathlib.Path(folder).iterdir()
          if ".orbax-checkpoint-tmp" in p.name]


def _data_files(step_dir):
  """The array data files orbax wrote for a step (OCDBT `d/` folders)."""
  files = [p for p in (step_dir / "state").rglob("*")
           if p.is_file() and p.parent.name == "d"]
  assert files, f"no data files under {step_dir}"
  return files


@pytest.fixture
def warnings_seen():
  """Warning messages logged through the "medgen_jax" logger."""
  records = []

  class Handler(logging.Handler):
    def emit(self, record):
      records.append(record.getMessage())

  handler = Handler(logging.WARNING)
  logger = logging.getLogger("medgen_jax")
  logger.addHandler(handler)
  yield records
  logger.removeHandler(handler)


@pytest.fixture
def ckpt_dir(tmp_path):
  return tmp_path / "checkpoints"


def _write(folder, steps, keep=3, **kw):
  with Checkpointer(folder, keep=keep) as c:
    for s in steps:
      c.save(s, _state(seed=s, step=s), {"step_saved": s, **kw})


# Round trips.


def test_round_trip_state_metadata_and_step(ckpt_dir):
  state = _state(seed=2, step=7)
  meta = {"eps_spent": np.float32(1.5), "fold": 2, "delta": 1e-5,
          "history": [0.1, 0.2], "note": "dp run",
          "moments": jnp.array([1, 2])}
  with Checkpointer(ckpt_dir) as c:
    assert c.latest_step() is None and c.all_steps() == []
    c.save(7, state, meta)
    assert c.latest_step() == 7 and c.all_steps() == [7]
  with Checkpointer(ckpt_dir, create=False) as c:
    out = c.restore(_abstract(state))
  assert isinstance(out, Restored) and out.step == 7
  _assert_same(out.state, state)
  assert out.state["step"] == 7 and isinstance(out.state["step"], int)
  assert out.metadata == {"eps_spent": 1.5, "fold": 2, "delta": 1e-5,
                          "history": [0.1, 0.2], "note": "dp run",
                          "moments": [1, 2]}


def test_metadata_defaults_to_empty_and_must_be_json(ckpt_dir):
  with Checkpointer(ckpt_dir) as c:
    c.save(1, _state())
    assert c.restore(_abstract(_state())).metadata == {}
    with pytest.raises(CheckpointError) as e:
      c.save(2, _state(), {"accountant": object()})
    _one_line(e, "metadata of checkpoint 2", "JSON")
    assert c.all_steps() == [1] and not _tmp_folders(ckpt_dir)


def test_restores_a_flax_struct(ckpt_dir):
  @flax.struct.dataclass
  class State:
    params: dict
    step: jax.Array
    apply_fn: object = flax.struct.field(pytree_node=False, default=None)

  state = State(params={"w": jnp.ones((3, 2))}, step=jnp.int32(5))
  with Checkpointer(ckpt_dir) as c:
    c.save(5, state)
    out = c.restore(jax.eval_shape(lambda: state)).state
  assert isinstance(out, State)
  _assert_same(out, state)


def test_keeps_the_last_k(ckpt_dir):
  with Checkpointer(ckpt_dir, keep=2) as c:
    for s in (1, 2, 3, 4):
      c.save(s, _state(seed=s), {"s": s})
    assert c.all_steps() == [3, 4]
    assert sorted(os.listdir(ckpt_dir)) == ["3", "4"]
    out = c.restore(_abstract(_state()), step=3)
  _assert_same(out.state, _state(seed=3))
  assert out.metadata == {"s": 3}


def test_restores_onto_other_shardings(ckpt_dir):
  devices = jax.devices()
  if len(devices) < 8:
    pytest.skip("needs 8 devices (XLA_FLAGS=--xla_force_host_platform_"
                "device_count=8, set by tests/conftest.py)")
  mesh8 = Mesh(np.array(devices[:8]), ("data",))
  state = _state(seed=1)
  on8 = jax.tree.map(
      lambda x: x if isinstance(x, int) else jax.device_put(
          x, NamedSharding(mesh8, P())), state)
  # One array really split over the 8 devices, as a sharded batch would be.
  on8["params"]["b"] = jax.device_put(state["params"]["b"],
                                      NamedSharding(mesh8, P("data")))
  with Checkpointer(ckpt_dir) as c:
    c.save(1, on8)

  one = jax.sharding.SingleDeviceSharding(devices[3])
  mesh2 = Mesh(np.array(devices[:2]), ("data",))
  two = NamedSharding(mesh2, P())
  with Checkpointer(ckpt_dir, create=False) as c:
    for target_sharding in (one, two):
      out = c.restore(_abstract(state, target_sharding)).state
      _assert_same(out, state)
      for x in jax.tree.leaves(out):
        if not isinstance(x, int):
          assert x.sharding == target_sharding
    # Split over the 2-device mesh.
    target = _abstract(state, two)
    target["params"]["b"] = jax.ShapeDtypeStruct(
        (8, 2), jnp.int32, sharding=NamedSharding(mesh2, P("data")))
    out = c.restore(target).state
    _assert_same(out, state)
    assert out["params"]["b"].sharding == NamedSharding(mesh2, P("data"))
    # No sharding given (jax.eval_shape): the first device, not the 8-device
    # topology that wrote it ("Topology mismatch" before).
    out = c.restore(_abstract(state, None)).state
    _assert_same(out, state)
    assert out["params"]["w"].sharding == jax.sharding.SingleDeviceSharding(
        jax.local_devices()[0])


def test_old_format_checkpoints_restore_with_empty_metadata(ckpt_dir):
  # What the previous version of this module wrote: the state alone, as
  # orbax's single `default` item.
  manager = ocp.CheckpointManager(
      ckpt_dir, options=ocp.CheckpointManagerOptions(
          create=True, enable_async_checkpointing=False))
  manager.save(4, args=ocp.args.StandardSave(_state(seed=4)), force=True)
  manager.wait_until_finished()
  manager.close()
  assert (ckpt_dir / "4" / "default").is_dir()
  with Checkpointer(ckpt_dir) as c:
    assert c.all_steps() == [4]
    out = c.restore_latest(_abstract(_state()))
    _assert_same(out.state, _state(seed=4))
    assert out.metadata == {} and out.step == 4
    c.save(6, _state(seed=6), {"new": True})  # resumed runs save the new way
    assert c.all_steps() == [4, 6]
    assert c.restore(_abstract(_state())).metadata == {"new": True}
    _assert_same(c.restore(_abstract(_state()), step=4).state, _state(seed=4))


# Damaged checkpoints.


def test_truncated_data_file_falls_back_to_older_step(ckpt_dir,
                                                      warnings_seen):
  _write(ckpt_dir, (2, 4))
  for f in _data_files(ckpt_dir / "4"):
    with open(f, "r+b") as fh:
      fh.truncate(max(1, f.stat().st_size // 2))
  with Checkpointer(ckpt_dir, create=False) as c:
    with pytest.raises(CheckpointError) as e:
      c.restore(_abstract(_state()))
    _one_line(e, "checkpoint 4", ckpt_dir, "damaged", "restore another step")
    assert not warnings_seen
    out = c.restore_latest(_abstract(_state()))
  assert out.step == 2 and out.metadata == {"step_saved": 2}
  _assert_same(out.state, _state(seed=2, step=2))
  assert len(warnings_seen) == 1, warnings_seen
  assert "checkpoint 4" in warnings_seen[0]
  assert "trying step 2" in warnings_seen[0]
  assert "\n" not in warnings_seen[0]


@pytest.mark.parametrize("victim", ["state/manifest.ocdbt", "state/d/*",
                                    "metadata/metadata", "state"])
def test_deleted_files(ckpt_dir, warnings_seen, victim):
  _write(ckpt_dir, (2, 4))
  for path in (ckpt_dir / "4").glob(victim):
    if path.is_dir():
      shutil.rmtree(path)
    else:
      path.unlink()
  with Checkpointer(ckpt_dir, create=False) as c:
    with pytest.raises(CheckpointError) as e:
      c.restore(_abstract(_state()), step=4)
    _one_line(e, "checkpoint 4", ckpt_dir)
    out = c.restore_latest(_abstract(_state()))
  assert out.step == 2
  _assert_same(out.state, _state(seed=2, step=2))
  if victim == "state":  # no longer a complete checkpoint: not even listed
    assert not warnings_seen
  else:
    assert len(warnings_seen) == 1 and "checkpoint 4" in warnings_seen[0]


def test_corrupt_metadata(ckpt_dir, warnings_seen):
  _write(ckpt_dir, (2, 4))
  (ckpt_dir / "4" / "metadata" / "metadata").write_text('{"eps": 1.')
  with Checkpointer(ckpt_dir, create=False) as c:
    with pytest.raises(CheckpointError) as e:
      c.restore(_abstract(_state()))
    _one_line(e, "checkpoint 4", ckpt_dir, "metadata")
    assert c.restore_latest(_abstract(_state())).step == 2
  assert len(warnings_seen) == 1 and "metadata" in warnings_seen[0]


def test_checkpoint_of_another_model(ckpt_dir, warnings_seen):
  _write(ckpt_dir, (1, 3))
  with Checkpointer(ckpt_dir, create=False) as c:
    wider = _abstract(_state())
    wider["params"]["w"] = jax.ShapeDtypeStruct((4, 3), jnp.float32)
    with pytest.raises(CheckpointError) as e:
      c.restore(wider)
    _one_line(e, "checkpoint 3", ckpt_dir, "does not match",
              "'params/w' is (2, 3) in the checkpoint but (4, 3)")
    extra = _abstract(_state())
    extra["params"]["gamma"] = jax.ShapeDtypeStruct((3,), jnp.float32)
    with pytest.raises(CheckpointError) as e:
      c.restore_latest(extra)  # no fallback: step 1 would not fit either
    _one_line(e, "checkpoint 3", "'params/gamma' is in the model but not in "
              "the checkpoint")
  assert not warnings_seen


def test_missing_step_and_empty_folder(ckpt_dir):
  with Checkpointer(ckpt_dir) as c:
    with pytest.raises(CheckpointError) as e:
      c.restore(_abstract(_state()))
    _one_line(e, f"no checkpoint in {ckpt_dir}")
    with pytest.raises(CheckpointError) as e:
      c.restore_latest(_abstract(_state()))
    _one_line(e, f"no checkpoint in {ckpt_dir}")
    c.save(2, _state())
    with pytest.raises(CheckpointError) as e:
      c.restore(_abstract(_state()), step=5)
    _one_line(e, "no checkpoint 5", ckpt_dir, "steps 2")


def test_no_readable_checkpoint(ckpt_dir, warnings_seen):
  _write(ckpt_dir, (1, 2))
  for step in ("1", "2"):
    (ckpt_dir / step / "state" / "manifest.ocdbt").unlink()
  with Checkpointer(ckpt_dir, create=False) as c:
    with pytest.raises(CheckpointError) as e:
      c.restore_latest(_abstract(_state()))
  _one_line(e, "no checkpoint in", ckpt_dir, "step 2:", "step 1:")
  assert len(warnings_seen) == 1


def test_stray_folders_never_block(ckpt_dir, warnings_seen):
  ckpt_dir.mkdir()
  (ckpt_dir / "junk").mkdir()
  (ckpt_dir / "9").mkdir()                        # empty, named like a step
  (ckpt_dir / "12" / "state").mkdir(parents=True)  # half a folder
  (ckpt_dir / "8").write_text("not a folder")
  leftover = ckpt_dir / "6.orbax-checkpoint-tmp-1234"
  leftover.mkdir()
  (leftover / "partial").write_text("x")
  (ckpt_dir / "5.orbax-checkpoint-tmp").mkdir()
  # Looks complete, but holds no checkpoint.
  fake = ckpt_dir / "15"
  (fake / "state").mkdir(parents=True)
  (fake / "metadata").mkdir()
  (fake / "_CHECKPOINT_METADATA").write_text("{}")

  with Checkpointer(ckpt_dir, create=False) as reader:
    assert reader.all_steps() == [15]  # readers never delete anything
  assert leftover.exists()
  with Checkpointer(ckpt_dir, keep=2) as c:
    for s in (1, 3, 4):
      c.save(s, _state(seed=s), {"s": s})
    assert c.all_steps() == [3, 4, 15]
    assert not _tmp_folders(ckpt_dir)  # a writer removes leftovers
    out = c.restore_latest(_abstract(_state()))
  assert out.step == 4 and out.metadata == {"s": 4}
  _assert_same(out.state, _state(seed=4))
  assert len(warnings_seen) == 1 and "checkpoint 15" in warnings_seen[0]
  for stray in ("junk", "9", "12", "8", "15"):  # strays are left alone
    assert (ckpt_dir / stray).exists()


def test_saving_over_a_damaged_step_replaces_it(ckpt_dir):
  _write(ckpt_dir, (2, 4))
  (ckpt_dir / "4" / "state" / "manifest.ocdbt").unlink()
  with Checkpointer(ckpt_dir) as c:
    assert c.restore_latest(_abstract(_state())).step == 2
    c.save(4, _state(seed=40), {"again": 1})  # the resumed run reaches 4
    out = c.restore(_abstract(_state()))
  assert out.step == 4 and out.metadata == {"again": 1}
  _assert_same(out.state, _state(seed=40))


# Failed saves.


def _fail_metadata_writes(monkeypatch, exc):
  """Makes orbax's JSON write fail mid-save (while arrays are written)."""
  async def failing(self, x, directory):
    raise exc
  monkeypatch.setattr(ocp.JsonCheckpointHandler, "_save_fn", failing)


def test_full_disk_during_save(ckpt_dir, monkeypatch, capfd):
  with Checkpointer(ckpt_dir) as c:
    c.save(4, _state(seed=4), {"eps": 0.5})
    _fail_metadata_writes(
        monkeypatch, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    with pytest.raises(CheckpointError) as e:
      c.save(6, _state(seed=6), {"eps": 0.7})
    _one_line(e, f"cannot write checkpoint 6 in {ckpt_dir}: No space left on "
              "device; free space", "--resume",
              "the last complete checkpoint is step 4")
    assert not _tmp_folders(ckpt_dir)
    assert c.all_steps() == [4]
    out = c.restore_latest(_abstract(_state()))
    assert out.step == 4 and out.metadata == {"eps": 0.5}
    _assert_same(out.state, _state(seed=4))
    monkeypatch.undo()  # space freed: the same Checkpointer saves again
    c.save(6, _state(seed=6), {"eps": 0.7})
    assert c.all_steps() == [4, 6]
  err = capfd.readouterr().err
  assert "Traceback" not in err and "Event loop is closed" not in err, err


def test_failed_save_waits_for_orbax_threads(ckpt_dir, monkeypatch, capfd):
  """A failed item must not leave orbax threads writing into the temporary
  folder (they would recreate it or print tracebacks after save returns)."""
  with Checkpointer(ckpt_dir) as c:
    c.save(1, _state())
    write_json = ocp.JsonCheckpointHandler._save_fn

    async def slow_json(self, x, directory):
      time.sleep(0.3)  # still writing when the state item fails
      await write_json(self, x, directory)

    monkeypatch.setattr(ocp.JsonCheckpointHandler, "_save_fn", slow_json)
    alive = []
    failed = ckpt_lib.settle

    def spy(error):
      alive.extend(t.name for t in threading.enumerate()
                   if type(t).__module__.startswith("orbax"))
      return failed(error)

    monkeypatch.setattr(ckpt_lib, "settle", spy)
    with pytest.raises(CheckpointError) as e:
      c.save(2, {**_state(), "bad": object()})  # orbax cannot save this
    _one_line(e, "cannot write checkpoint 2", "object",
              "the last complete checkpoint is step 1")
    assert alive == []
    time.sleep(0.1)
    assert not _tmp_folders(ckpt_dir) and c.all_steps() == [1]
  err = capfd.readouterr().err
  assert "Traceback" not in err, err


@pytest.mark.parametrize("exc, expected", [
    (PermissionError(errno.EACCES, "Permission denied"),
     "Permission denied; make"),
    (Exception("orbax exploded"), "orbax exploded; fix the cause"),
])
def test_other_save_failures(ckpt_dir, monkeypatch, exc, expected):
  with Checkpointer(ckpt_dir) as c:
    _fail_metadata_writes(monkeypatch, exc)
    with pytest.raises(CheckpointError) as e:
      c.save(1, _state())
    _one_line(e, "cannot write checkpoint 1", ckpt_dir, expected,
              "no checkpoint has been written yet")
    assert not _tmp_folders(ckpt_dir) and c.all_steps() == []


def test_ctrl_c_mid_save_keeps_previous(ckpt_dir, monkeypatch):
  with Checkpointer(ckpt_dir) as c:
    c.save(1, _state(seed=1))
    _fail_metadata_writes(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
      c.save(2, _state(seed=2))
    assert not _tmp_folders(ckpt_dir) and c.all_steps() == [1]
    _assert_same(c.restore_latest(_abstract(_state())).state, _state(seed=1))


def test_too_little_space_is_refused_before_writing(ckpt_dir, monkeypatch):
  with Checkpointer(ckpt_dir) as c:
    c.save(1, _state())
    monkeypatch.setattr(ckpt_lib.shutil, "disk_usage",
                        lambda path: type("U", (), {"total": 10**9,
                                                    "used": 10**9 - 16,
                                                    "free": 16})())
    with pytest.raises(CheckpointError) as e:
      c.save(2, _state())
    _one_line(e, "cannot write checkpoint 2", "No space left on device",
              "free)", "the last complete checkpoint is step 1")
    assert sorted(os.listdir(ckpt_dir)) == ["1"]


def test_real_full_disk(tmp_path, monkeypatch):
  """A real 2 MB tmpfs (root only; skipped where mounting is not allowed)."""
  mount = tmp_path / "small"
  mount.mkdir()
  if os.geteuid() != 0 or subprocess.run(
      ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
      capture_output=True).returncode != 0:
    pytest.skip("cannot mount a tmpfs here")
  try:
    rng = np.random.default_rng(0)
    state = {f"w{i}": rng.standard_normal(40_000).astype(np.float32)
             for i in range(8)}  # 1.25 MB that does not compress
    with Checkpointer(mount / "checkpoints") as c:
      c.save(1, state)
      # The upfront check would refuse; let orbax meet the full disk.
      monkeypatch.setattr(Checkpointer, "_check_space", lambda *a: None)
      with pytest.raises(CheckpointError) as e:
        c.save(2, state)
      _one_line(e, "cannot write checkpoint 2", "No space left on device",
                "the last complete checkpoint is step 1")
      assert not _tmp_folders(mount / "checkpoints")
      out = c.restore_latest(jax.tree.map(
          lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state))
      assert out.step == 1
      _assert_same(out.state, state)
  finally:
    subprocess.run(["umount", str(mount)], check=False)


def test_late_report_filter_is_narrow():
  seen = []
  hook = failures_lib._UnraisableFilter(seen.append)
  late = type("Args", (), {"exc_value": RuntimeError("Event loop is closed"),
                           "object": None})()
  other = type("Args", (), {"exc_value": ValueError("a real problem"),
                            "object": None})()
  hook(late)
  hook(other)
  assert seen == [other]


# Bad folders.


def test_folder_is_a_file(tmp_path):
  path = tmp_path / "checkpoints"
  path.write_text("my notes")
  for create in (True, False):
    with pytest.raises(CheckpointError) as e:
      Checkpointer(path, create=create)
    _one_line(e, path, "is a file")
  with pytest.raises(CheckpointError) as e:
    Checkpointer(path / "run1")
  _one_line(e, f"cannot create checkpoint folder {path / 'run1'}",
            f"{path} is a file")
  assert path.read_text() == "my notes"


def test_folder_name_too_long(tmp_path):
  with pytest.raises(CheckpointError) as e:
    Checkpointer(tmp_path / ("x" * 300))
  _one_line(e, "cannot create checkpoint folder", "too long")


def test_readers_create_nothing(tmp_path):
  with pytest.raises(CheckpointError) as e:
    Checkpointer(tmp_path / "run" / "checkpoints", create=False)
  _one_line(e, "no checkpoint folder", tmp_path / "run" / "checkpoints")
  assert not (tmp_path / "run").exists()
  (tmp_path / "ro").mkdir()
  with Checkpointer(tmp_path / "ro", create=False) as c:
    with pytest.raises(CheckpointError) as e:
      c.save(1, _state())
    _one_line(e, "read-only")
  assert os.listdir(tmp_path / "ro") == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_unwritable_folder(tmp_path):
  locked = tmp_path / "locked"
  locked.mkdir()
  locked.chmod(0o500)
  try:
    with pytest.raises(CheckpointError) as e:
      Checkpointer(locked / "checkpoints")
    _one_line(e, locked / "checkpoints", "Permission denied")
    with pytest.raises(CheckpointError) as e:
      Checkpointer(locked)
    _one_line(e, locked, "not writable")
  finally:
    locked.chmod(0o700)


def test_no_tracebacks_at_exit_after_errors(tmp_path):
  """Orbax abandons TensorStore work when a save or restore fails; it used to
  print "Event loop is closed" tracebacks later, at interpreter exit."""
  script = textwrap.dedent("""
      import errno, os, sys
      import jax, jax.numpy as jnp
      import orbax.checkpoint as ocp
      from medgen_jax.errors import CheckpointError
      from medgen_jax.train.checkpoint import Checkpointer

      folder = sys.argv[1]
      state = {f"w{i}": jnp.full((4000,), float(i)) for i in range(24)}
      target = jax.tree.map(
          lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
      with Checkpointer(folder) as c:
        c.save(1, state)

      async def full(self, x, directory):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
      ocp.JsonCheckpointHandler._save_fn = full
      closed = Checkpointer(folder)
      try:
        closed.save(2, state)
      except CheckpointError as e:
        print("error:", e)
      closed.close()

      data = os.path.join(folder, "1", "state", "d")
      for name in os.listdir(data):
        with open(os.path.join(data, name), "r+b") as f:
          f.truncate(10)
      left_open = Checkpointer(folder, create=False)
      for _ in range(4):  # the reports are timing-dependent: give them chances
        try:
          left_open.restore(target)
        except CheckpointError as e:
          print("error:", e)
      try:
        left_open.save(3, state)
      except CheckpointError as e:
        print("error:", e)

      class LateCallback:  # what TensorStore reports when a read it was
        def __del__(self):  # abandoned finishes into orbax's closed loop
          raise RuntimeError("Event loop is closed")
      LateCallback()
      """)
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)
  run = subprocess.run(
      [sys.executable, "-c", script, str(tmp_path / "checkpoints")],
      capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
  assert run.returncode == 0, run.stderr
  lines = run.stdout.splitlines()
  assert len(lines) == 6, run.stdout
  assert "cannot write checkpoint 2" in lines[0]
  assert all("checkpoint 1" in l and "damaged" in l for l in lines[1:5])
  assert "read-only" in lines[5]
  assert "Traceback" not in run.stderr, run.stderr
  assert "Event loop is closed" not in run.stderr, run.stderr
  assert "never retrieved" not in run.stderr, run.stderr
