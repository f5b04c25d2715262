"""Sleep-stage codes shared by the hypnogram readers, the sleep metrics and
the categorical sequence models.

One stage per scoring epoch (30 s in AASM scoring), coded

    0 W (wake), 1 N1, 2 N2, 3 N3, 4 REM,  UNKNOWN = -1

UNKNOWN covers epochs that carry no stage: unscored, artefact, movement time.
They become masked steps in a series dataset; the sleep statistics count
them in time in bed but never as sleep or wake (metrics/sleep.py).

Rechtschaffen & Kales labels are mapped onto AASM: stages 3 and 4 are both
N3 (Iber et al. 2007, the AASM manual, merged them into N3).
"""

from __future__ import annotations

STAGE_NAMES = ("W", "N1", "N2", "N3", "REM")
WAKE, N1, N2, N3, REM = range(5)
SLEEP_STAGES = (N1, N2, N3, REM)
UNKNOWN = -1
NUM_STAGES = len(STAGE_NAMES)
EPOCH_SECONDS = 30.0     # AASM scoring epoch

# Text labels (compared upper-cased, spaces and underscores removed) -> code.
# Sleep-EDF's EDF+ annotations read "Sleep stage W", "Sleep stage 1", ...,
# "Sleep stage R", "Sleep stage ?", "Movement time".
LABELS = {
    "W": WAKE, "WAKE": WAKE, "0": WAKE,
    "N1": N1, "S1": N1, "1": N1, "NREM1": N1, "STAGE1": N1,
    "N2": N2, "S2": N2, "2": N2, "NREM2": N2, "STAGE2": N2,
    "N3": N3, "S3": N3, "S4": N3, "3": N3, "4": REM, "NREM3": N3,
    "STAGE3": N3, "STAGE4": N3, "SWS": N3,
    "R": REM, "REM": REM, "STAGER": REM,
    "?": UNKNOWN, "-1": UNKNOWN, "-2": UNKNOWN, "U": UNKNOWN, "UNS": UNKNOWN,
    "UNSCORED": UNKNOWN, "UNKNOWN": UNKNOWN, "ART": UNKNOWN,
    "ARTEFACT": UNKNOWN, "ARTIFACT": UNKNOWN, "M": UNKNOWN, "MT": UNKNOWN,
    "MOVEMENT": UNKNOWN, "MOVEMENTTIME": UNKNOWN, "STAGE?": UNKNOWN,
}


def stage_code(token: str) -> int | None:
  """The code of one stage label or integer, or None if it is not one.

  Integers follow YASA's convention (0 W, 1 N1, 2 N2, 3 N3, 4 REM, -1/-2
  artefact/unscored), so an integer 4 is REM, never R&K stage 4.
  """
  key = token.strip().upper().replace(" ", "").replace("_", "")
  if key.startswith("SLEEPSTAGE"):   # Sleep-EDF: "Sleep stage 4" is R&K S4
    key = "S" + key[len("SLEEPSTAGE"):]
    key = {"SW": "W", "SR": "R", "S?": "?"}.get(key, key)
  return LABELS.get(key)
