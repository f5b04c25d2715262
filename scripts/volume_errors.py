"""The error table of bad CT/MR inputs (README, "CT and MR").

Builds each bad input in a temporary folder (from pydicom's bundled test
files and the shared DICOM files), runs `medgen train gan` on it and prints
a Markdown table of the exit code and the one-line message.

    python scripts/volume_errors.py [--shared ../shared/data]

Needs the `imaging` extra (pydicom, nibabel).
"""

from __future__ import annotations

import argparse
import copy
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile


def _series(folder: pathlib.Path, ct, positions, uid: str) -> None:
  """Copies of the CT slice `ct` at z = positions, one series."""
  from pydicom.uid import generate_uid
  folder.mkdir()
  for i, z in enumerate(positions):
    ds = copy.deepcopy(ct)
    ds.SeriesInstanceUID = uid
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.ImagePositionPatient = [ds.ImagePositionPatient[0],
                               ds.ImagePositionPatient[1], float(z)]
    ds.InstanceNumber = i + 1
    ds.save_as(folder / f"slice{i:03d}.dcm")


def build_cases(root: pathlib.Path, shared: pathlib.Path):
  import pydicom
  from pydicom.data import get_testdata_file
  from pydicom.uid import generate_uid
  ct_file = shared / "dicom" / "CT_small.dcm"
  ct = pydicom.dcmread(ct_file)
  cases = []

  jls = root / "jpeg_ls"
  jls.mkdir()
  shutil.copy(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"), jls)
  cases.append(("compressed transfer syntax, no decoder",
                ["--data", f"dicom:{jls}"]))

  nopix = root / "no_pixels"
  nopix.mkdir()
  ds = copy.deepcopy(ct)
  del ds.PixelData
  ds.save_as(nopix / "slice.dcm")
  cases.append(("missing pixel data", ["--data", f"dicom:{nopix}"]))

  cases.append(("non-image object (ECG waveform)",
                ["--data", f"dicom:{shared / 'dicom' / 'waveform_ecg.dcm'}"]))

  two = root / "two_series"
  two.mkdir()
  shutil.copy(ct_file, two / "ct.dcm")
  shutil.copy(shared / "dicom" / "MR_small.dcm", two / "mr.dcm")
  cases.append(("two series when one was asked for",
                ["--data", f"dicom:{two}", "--series", "single"]))

  mixed = root / "mixed_series"
  _series(mixed, ct, [0.0, 5.0], uid := generate_uid())
  small = pydicom.dcmread(shared / "dicom" / "MR_small.dcm")
  small.SeriesInstanceUID = uid
  small.save_as(mixed / "other_size.dcm")
  cases.append(("one series mixing image sizes", ["--data", f"dicom:{mixed}"]))

  gap = root / "missing_slice"
  _series(gap, ct, [0.0, 5.0, 10.0, 20.0, 25.0], generate_uid())
  cases.append(("inconsistent slice spacing", ["--data", f"dicom:{gap}"]))

  empty = root / "empty"
  empty.mkdir()
  cases.append(("empty folder", ["--data", f"dicom:{empty}"]))

  broken = root / "broken.nii.gz"
  broken.write_bytes(b"\x1f\x8b" + b"not really gzip")
  cases.append(("unreadable NIfTI header", ["--data", f"nifti:{broken}"]))

  cases.append(("HU window on an MR series",
                ["--data", f"dicom:{shared / 'dicom' / 'MR_small.dcm'}",
                 "--window", "lung"]))
  cases.append(("--volume on 2-D images", ["--data", "phantoms",
                                          "--volume", "32"]))
  return cases


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--shared", default=os.environ.get(
      "MEDGEN_SHARED_DATA", "../shared/data"))
  args = p.parse_args()
  shared = pathlib.Path(args.shared)
  with tempfile.TemporaryDirectory() as tmp:
    root = pathlib.Path(tmp)
    print("| bad input | exit | message |")
    print("|---|---|---|")
    for what, flags in build_cases(root, shared):
      run = subprocess.run(
          [sys.executable, "-m", "medgen_jax.cli", "train", "gan", *flags,
           "--steps", "1", "--workdir", str(root / "run")],
          capture_output=True, text=True)
      lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
      message = lines[-1] if lines else "(no message)"
      message = message.replace(tmp, "TMP").replace("|", "\\|")
      print(f"| {what} | {run.returncode} | `{message}` |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
