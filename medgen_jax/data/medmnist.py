"""MedMNIST v2/v3 2D single-label datasets: `--data pneumoniamnist` and kin.

    medgen train gan --data pneumoniamnist --data-dir ../shared/data/medmnist
    medgen train gan --data bloodmnist --image-size 64   # downloads once

Each dataset is one official `.npz` file per image size on Zenodo (record
10519652, MedMNIST v3): `NAME.npz` for 28x28 and `NAME_64.npz`,
`NAME_128.npz`, `NAME_224.npz` for the larger sizes. The file holds
`{train,val,test}_images` (uint8 [n, s, s] or [n, s, s, 3]) and
`{train,val,test}_labels` (uint8 [n, 1]).

Where the file comes from:
  * `data_dir` set: `<data_dir>/<file>`. A copy whose MD5 differs from the
    official one is used with a warning (e.g. a reconstructed copy).
  * `data_dir` empty: the cache `$MEDGEN_CACHE_DIR/medmnist/<file>` (default
    `~/.cache/medgen_jax`), downloaded there on first use when `download` is
    on. A cached or downloaded file must match the official MD5.
  * `$MEDGEN_MEDMNIST_URL` replaces the download base URL (a mirror, or a
    local server in tests); the file name is appended to it.

ChestMNIST is multi-label (14 findings per image) and is not supported yet;
`--data chestmnist` says so instead of failing later.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import logging
import os
import pathlib
import tempfile
import urllib.error
import urllib.request

from medgen_jax.data import npz
from medgen_jax.data.base import (SPLITS, Dataset, image_dataset,
                                  to_int_labels, to_uint8_images)
from medgen_jax.data.registry import DATASETS, integer_option, option
from medgen_jax.errors import ConfigError, DataError, DownloadError

logger = logging.getLogger("medgen_jax")

ZENODO_FILES = "https://zenodo.org/records/10519652/files"
URL_ENV = "MEDGEN_MEDMNIST_URL"
CACHE_ENV = "MEDGEN_CACHE_DIR"
DEFAULT_CACHE = "~/.cache/medgen_jax"
DOWNLOAD_TIMEOUT_S = 60.0  # per socket operation, not for the whole file
_CHUNK = 1 << 20

_ORGANS = ("bladder", "femur-left", "femur-right", "heart", "kidney-left",
           "kidney-right", "liver", "lung-left", "lung-right", "pancreas",
           "spleen")


@dataclasses.dataclass(frozen=True)
class MedMNISTInfo:
  """What we know about one official MedMNIST 2D dataset.

  Attributes:
    name: lowercase registry name, e.g. "pneumoniamnist".
    class_names: label index -> name, as in MedMNIST's INFO.
    channels: 1 (grayscale) or 3 (RGB).
    md5: image size -> MD5 of the official file of that size.
  """

  name: str
  class_names: tuple[str, ...]
  channels: int
  md5: dict[int, str]

  def file_name(self, size: int) -> str:
    return f"{self.name}.npz" if size == 28 else f"{self.name}_{size}.npz"

  def url(self, size: int) -> str:
    """Download URL of the file for `size`, honouring $MEDGEN_MEDMNIST_URL."""
    base = os.environ.get(URL_ENV, "").strip()
    if base:
      return f"{base.rstrip('/')}/{self.file_name(size)}"
    return f"{ZENODO_FILES}/{self.file_name(size)}?download=1"


def _info(name, class_names, channels, md5_28, md5_64, md5_128, md5_224):
  return MedMNISTInfo(name, tuple(class_names), channels,
                      {28: md5_28, 64: md5_64, 128: md5_128, 224: md5_224})


# Facts from `medmnist/info.py` of MedMNIST/MedMNIST, version 3.0.2.
INFO: dict[str, MedMNISTInfo] = {i.name: i for i in (
    _info("pathmnist",
          ("adipose", "background", "debris", "lymphocytes", "mucus",
           "smooth muscle", "normal colon mucosa", "cancer-associated stroma",
           "colorectal adenocarcinoma epithelium"), 3,
          "a8b06965200029087d5bd730944a56c1", "55aa9c1e0525abe5a6b9d8343a507616",
          "ac42d08fb904d92c244187169d1fd1d9", "2c51a510bcdc9cf8ddb2af93af1eadec"),
    _info("dermamnist",
          ("actinic keratoses and intraepithelial carcinoma",
           "basal cell carcinoma", "benign keratosis-like lesions",
           "dermatofibroma", "melanoma", "melanocytic nevi",
           "vascular lesions"), 3,
          "0744692d530f8e62ec473284d019b0c7", "b70a2f5635c6199aeaa28c31d7202e1f",
          "2defd784463fa5243564e855ed717de1", "8974907d8e169bef5f5b96bc506ae45d"),
    _info("octmnist",
          ("choroidal neovascularization", "diabetic macular edema", "drusen",
           "normal"), 1,
          "c68d92d5b585d8d81f7112f81e2d0842", "e229e9440236b774d9f0dfef9d07bdaf",
          "0a97e76651ace45c5d943ee3f65b63ae", "abc493b6d529d5de7569faaef2773ba3"),
    _info("pneumoniamnist", ("normal", "pneumonia"), 1,
          "28209eda62fecd6e6a2d98b1501bb15f", "8f4eceb4ccffa70c672198ea285246c6",
          "05b46931834c231683c68f40c47b2971", "d6a3c71de1b945ea11211b03746c1fe1"),
    _info("retinamnist", ("0", "1", "2", "3", "4"), 3,
          "bd4c0672f1bba3e3a89f0e4e876791e4", "afda852cc34dcda56f86ad2b2457dbcc",
          "e48e916a24454daf90583d4e6efb1a18", "eae7e3b6f3fcbda4ae613ebdcbe35348"),
    _info("breastmnist", ("malignant", "normal, benign"), 1,
          "750601b1f35ba3300ea97c75c52ff8f6", "742edef2a1fd1524b2efff4bd7ba9364",
          "363e4b3f8d712e9b5de15470a2aaadf1", "b56378a6eefa9fed602bb16d192d4c8b"),
    _info("bloodmnist",
          ("basophil", "eosinophil", "erythroblast",
           "immature granulocytes(myelocytes, metamyelocytes and "
           "promyelocytes)", "lymphocyte", "monocyte", "neutrophil",
           "platelet"), 3,
          "7053d0359d879ad8a5505303e11de1dc", "2b94928a2ae4916078ca51e05b6b800b",
          "adace1e0ed228fccda1f39692059dd4c", "b718ff6835fcbdb22ba9eacccd7b2601"),
    _info("tissuemnist",
          ("Collecting Duct, Connecting Tubule", "Distal Convoluted Tubule",
           "Glomerular endothelial cells", "Interstitial endothelial cells",
           "Leukocytes", "Podocytes", "Proximal Tubule Segments",
           "Thick Ascending Limb"), 1,
          "ebe78ee8b05294063de985d821c1c34b", "123ece2eba09d0aa5d698fda57103344",
          "61b955355d7425a89687b06cca3ce0c2", "b077128c4a949f0a4eb01517f9037b9c"),
    _info("organamnist", _ORGANS, 1,
          "68e3f8846a6bd62f0c9bf841c0d9eacc", "2dcccc29b88e6da5a01161ef20cda288",
          "eeae80d0a227a8d099027e1b3cfd3b60", "50747347e05c87dd3aaf92c49f9f3170"),
    _info("organcmnist", _ORGANS, 1,
          "b9ceb9546e10131b32923c5bbeaea2b1", "3ce34a8724ea6f548e6db4744d03b6a9",
          "773c1f009daa3fe5d9a2a201b2a7ed94", "050f5e875dc056f6768abf94ec9995d1"),
    _info("organsmnist", _ORGANS, 1,
          "9ab87b696fb54e2a387ebe992d6ed5f1", "53a6d115339d874c25e309a994ff46d3",
          "ded0c5fa01a95dc4978b956f613e9b8e", "b354719e553fbbb2513d5533f52a4cb1"),
)}

MULTI_LABEL = ("chestmnist",)


def cache_dir() -> pathlib.Path:
  """$MEDGEN_CACHE_DIR/medmnist (default ~/.cache/medgen_jax/medmnist)."""
  root = os.environ.get(CACHE_ENV, "").strip() or DEFAULT_CACHE
  return pathlib.Path(root).expanduser() / "medmnist"


def file_md5(path: pathlib.Path) -> str:
  h = hashlib.md5()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(_CHUNK), b""):
      h.update(chunk)
  return h.hexdigest()


def _one_line(text: object) -> str:
  return " ".join(str(text).split())


def download(url: str, dest: pathlib.Path, md5: str) -> None:
  """Streams `url` into `dest`, atomically, after checking its MD5.

  The bytes go to a temporary file next to `dest`, which is renamed onto
  `dest` only when complete and verified, so an interrupted or corrupt
  download never leaves a file that looks cached.

  Raises:
    DownloadError: on any network failure or an MD5 mismatch.
  """
  fix = f"place the file at {dest} or pass --data-dir DIR"
  dest.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.",
                                  suffix=".part")
  tmp = pathlib.Path(tmp_name)
  try:
    h = hashlib.md5()
    logger.info("downloading %s to %s", url, dest)
    request = urllib.request.Request(
        url, headers={"User-Agent": "medgen_jax (python urllib)"})
    try:
      with os.fdopen(fd, "wb") as out, urllib.request.urlopen(
          request, timeout=DOWNLOAD_TIMEOUT_S) as response:
        for chunk in iter(lambda: response.read(_CHUNK), b""):
          h.update(chunk)
          out.write(chunk)
    except urllib.error.HTTPError as e:
      raise DownloadError(
          f"could not download {url}: HTTP {e.code} {_one_line(e.reason)}; "
          f"{fix}") from None
    except urllib.error.URLError as e:
      raise DownloadError(
          f"could not download {url}: {_one_line(e.reason)}; {fix}") from None
    except (OSError, http.client.HTTPException) as e:  # timeouts, resets
      reason = _one_line(e) or type(e).__name__
      raise DownloadError(f"could not download {url}: {reason}; {fix}") from None
    got = h.hexdigest()
    if got != md5:
      raise DownloadError(
          f"downloaded {url} but its MD5 is {got}, expected {md5} (a truncated "
          f"or changed file); try again, or {fix}")
    os.replace(tmp, dest)
  finally:
    tmp.unlink(missing_ok=True)


def _resolve(info: MedMNISTInfo, size: int, data_config) -> pathlib.Path:
  """Finds (or downloads) the file for `size`; returns its path."""
  file = info.file_name(size)
  url = info.url(size)
  want = info.md5[size]
  data_dir = str(data_config.get("data_dir", "") or "").strip()
  if data_dir:
    path = pathlib.Path(data_dir).expanduser() / file
    if not path.is_file():
      raise DataError(
          f"{path} not found (--data {info.name} --image-size {size} reads "
          f"<data-dir>/{file}); download it from {url} into {path.parent}, "
          "or leave --data-dir empty to download it into the cache")
    got = file_md5(path)
    if got != want:
      logger.warning(
          "%s: MD5 %s differs from the official %s (%s); using it anyway as a "
          "local copy", path, got, want, url)
    return path

  path = cache_dir() / file
  if path.is_file():
    got = file_md5(path)
    if got != want:
      raise DataError(
          f"{path}: cached file has MD5 {got}, expected {want}; delete it to "
          f"download {url} again, or pass --data-dir DIR to use your own copy")
    return path
  if not data_config.get("download", True):
    raise DataError(
        f"{path} is not cached and downloading is off (data.download=False); "
        f"download {url} and place the file at {path} or pass --data-dir DIR, "
        "or set data.download=True")
  download(url, path, want)
  return path


def read_file(info: MedMNISTInfo, size: int, path: pathlib.Path) -> Dataset:
  """Reads and validates a MedMNIST .npz file of `size` x `size` images."""
  source = str(path)
  arrays = npz.read_npz(path, what="the official MedMNIST file")
  found = sorted(arrays)
  missing = [k for k in ("train_images", "train_labels") if k not in arrays]
  if missing:
    raise DataError(
        f"{source}: missing required key(s) {missing}; found keys {found}; a "
        "MedMNIST file holds {train,val,test}_images and _labels")
  splits = {}
  for split in SPLITS:
    ikey, lkey = f"{split}_images", f"{split}_labels"
    if ikey not in arrays and lkey not in arrays:
      continue
    if ikey not in arrays or lkey not in arrays:
      raise DataError(
          f"{source}: has only one of '{ikey}' and '{lkey}' (found keys "
          f"{found}); images and labels of a split come together")
    images = to_uint8_images(arrays[ikey], source=source, key=ikey)
    n, h, w, c = images.shape  # [n, h, w, c]
    if c != info.channels:
      raise DataError(
          f"{source}: '{ikey}' has {c} channel(s) but {info.name} images have "
          f"{info.channels}; is this the {info.name} file?")
    if (h, w) != (size, size):
      raise DataError(
          f"{source}: '{ikey}' images are {h}x{w} but --image-size is {size}; "
          f"pass the --image-size of the file, or use {info.file_name(size)} "
          f"from {info.url(size)}")
    labels = to_int_labels(arrays[lkey], n, source=source, key=lkey,
                           num_classes=len(info.class_names))
    splits[split] = (images, labels)
  return image_dataset(info.name, splits, class_names=info.class_names,
                       source=source)


def load(name: str, data_config) -> Dataset:
  """Loads MedMNIST dataset `name` at `data_config.image_size`."""
  info = INFO[name]
  size = integer_option(option(data_config, "image_size", name),
                        "--image-size (data.image_size)")
  if size not in info.md5:
    raise DataError(
        f"{name} has no official file for --image-size {size}; MedMNIST "
        f"offers sizes {', '.join(map(str, sorted(info.md5)))}")
  return read_file(info, size, _resolve(info, size, data_config))


def _make_loader(name: str):
  def loader(data_config) -> Dataset:
    return load(name, data_config)

  loader.__name__ = f"load_{name}"
  loader.__doc__ = f"Loads MedMNIST {name} (see medgen_jax.data.medmnist)."
  return loader


def _multi_label(data_config) -> Dataset:
  raise ConfigError(
      f"--data {data_config.name}: ChestMNIST is multi-label (14 findings per "
      "image) and medgen_jax supports single-label datasets only, not yet "
      f"multi-label ones; choose one of: {', '.join(sorted(INFO))}")


for _name in INFO:
  DATASETS.register(_name, _make_loader(_name))
for _name in MULTI_LABEL:
  DATASETS.register(_name, _multi_label)
