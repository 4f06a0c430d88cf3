"""What ships with pcdms, and the defaults around it: the bundled model, the example photos and street
pairs, the stages' names and default seeds, and the pairs files that ``pcdms generate --pairs`` reads.

Light on purpose (no torch at import time): the command-line parser and the web page import it.
"""

from __future__ import annotations

import csv
import os
from importlib.resources import files
from pathlib import Path

from .errors import PcdmsError

BUNDLED_MODEL = "pcdms-street"
EXAMPLE_IMAGE = "astronaut.jpg"
STAGE_NAMES = ("prior", "inpaint", "refine")
DEFAULT_SEEDS = {stage: 42 for stage in STAGE_NAMES}


def example_image_path() -> Path:
    """The bundled example photo (NASA's portrait of Eileen Collins, public domain)."""
    return Path(str(files("pcdms") / "assets" / "examples" / EXAMPLE_IMAGE))


def street_examples_path() -> Path:
    """The bundled street test pairs: photos, pose files and ``pairs.csv`` (pcdms generate --pairs)."""
    return Path(str(files("pcdms") / "assets" / "examples" / "street"))


def bundled_model_path() -> Path:
    return Path(str(files("pcdms") / "assets" / "models" / BUNDLED_MODEL))


# Models shipped inside the package, loadable by name.
BUNDLED_MODELS = (BUNDLED_MODEL,)


def model_folder(name_or_folder: str | os.PathLike) -> Path:
    """The folder of a pipeline: ``name_or_folder`` itself, or where no such folder exists and it names a
    bundled model (``pcdms-street``), that model's folder inside the package."""
    path = Path(name_or_folder)
    if not path.exists() and str(name_or_folder) in BUNDLED_MODELS:
        return Path(str(files("pcdms") / "assets" / "models" / str(name_or_folder)))
    return path


def model_record(model: str | os.PathLike) -> str:
    """How a results folder records the model it was made with: a bundled model by its name, whichever
    install or path reached it; any other by its resolved folder."""
    folder = model_folder(model).resolve()
    for name in BUNDLED_MODELS:
        if folder == Path(str(files("pcdms") / "assets" / "models" / name)).resolve():
            return name
    return str(folder)


def bundled_model() -> Path:
    """The bundled model's folder, or one line saying the install lacks it."""
    model = bundled_model_path()
    if not (model / "model_index.json").is_file():
        raise PcdmsError(
            f"{model}: the bundled model is missing from this install; pass --model DIR, a pipeline folder "
            "written by pcdms convert"
        )
    return model


def stage_generators(seeds: dict[str, int], pairs: int, device="cpu") -> dict:
    """One generator per stage and pair, each pair's seeded alike: a pair's images do not depend on the
    other pairs of its batch, so a resumed or sharded run writes the images of one uninterrupted run.

    ``seeds``: stage name to seed; returns stage name to a list of ``pairs`` ``torch.Generator`` on ``device``.
    """
    import torch  # here, not at the top: the parser and the pose commands import this module

    return {stage: [torch.Generator(device).manual_seed(seed) for _ in range(pairs)] for stage, seed in seeds.items()}


def read_pairs_file(path: Path) -> list[tuple[Path, Path, Path | None]]:
    """``SOURCE,TARGET_POSE[,SOURCE_POSE]`` per line (``#`` starts a comment); paths relative to the file.

    Raises PcdmsError naming ``path`` (and the line) for a file that is not text, a malformed line, or no pairs.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise PcdmsError(f"{path}: not a text file of pairs") from None
    pairs = []
    for number, row in enumerate(csv.reader(lines), start=1):
        fields = [field.strip() for field in row]
        if not fields or not fields[0] or fields[0].startswith("#"):
            continue
        if len(fields) not in (2, 3) or not all(fields):
            raise PcdmsError(f"{path}, line {number}: expected SOURCE,TARGET_POSE[,SOURCE_POSE], got {','.join(row)!r}")
        source, target, *source_pose = (path.parent / field for field in fields)
        pairs.append((source, target, source_pose[0] if source_pose else None))
    if not pairs:
        raise PcdmsError(f"{path}: no pairs in it")
    return pairs
