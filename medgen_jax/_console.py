"""The `medgen` console script: a Ctrl-C gets the command's one line from
the first statement on, also while the command module itself is imported
(`cli.main` installs its own handlers once it runs)."""

import signal
import sys


def interrupted(signum, frame):
  """Ctrl-C before `cli.main` runs: the same one line, exit code 130."""
  del signum, frame
  print("medgen: interrupted", file=sys.stderr)
  raise SystemExit(130)


def run() -> None:
  if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, interrupted)
  from medgen_jax import cli
  cli.run()
