"""The sampling settings of PCDMsPipeline: the official ones, or those a model folder recommends.

The authors' settings (spec 1-3: UniPC 20 steps per stage, stage 1 unguided, stages 2 and 3 at
guidance 2.0, stage 3 from pure noise) suit the authors' models. A model trained otherwise may sample
better with others, measured on its training pairs: its folder's ``model_index.json`` then records
them under ``"sampling"`` (``pcdms convert trained --sampling KEY=VALUE``), and they replace the official
ones wherever a call leaves a setting out. The bundled street model records its own; converted
official checkpoints record none.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .inputs import MIN_STEPS

OFFICIAL_SAMPLING = {
    "prior_steps": 20,
    "prior_guidance": 0.0,
    "inpaint_steps": 20,
    "inpaint_guidance": 2.0,
    "refine_steps": 20,
    "refine_guidance": 2.0,
    "refine_strength": 1.0,
}


def checked_sampling(settings: dict | None, where: str = "sampling") -> dict:
    """``settings`` (a subset of :data:`OFFICIAL_SAMPLING`'s keys) as Python numbers of the right kind: steps
    whole and at least a stage's minimum, guidance finite and at least 0, stage 3's strength in (0, 1]; numpy
    and one-value torch numbers count. Anything else raises PcdmsError in one line naming ``where``."""
    from ..errors import PcdmsError

    if settings is not None and not isinstance(settings, dict):
        raise PcdmsError(f"{where}: a mapping of setting names to numbers, got {type(settings).__name__}")
    settings = dict(settings or {})
    for key, value in settings.items():
        if key not in OFFICIAL_SAMPLING:
            raise PcdmsError(f"{where}: unknown sampling setting {key!r} (known: {', '.join(OFFICIAL_SAMPLING)})")
        stage, kind = key.split("_")
        number = finite_number(value)
        if kind == "steps" and not (number is not None and number == int(number) and number >= MIN_STEPS[stage]):
            raise PcdmsError(f"{where}: {key} must be a whole number of at least {MIN_STEPS[stage]}, got {value!r}")
        if kind == "guidance" and not (number is not None and number >= 0):
            raise PcdmsError(f"{where}: {key} must be a number of at least 0, got {value!r}")
        if kind == "strength" and not (number is not None and 0 < number <= 1):
            raise PcdmsError(f"{where}: {key} must be a number in (0, 1], got {value!r}")
        settings[key] = int(number) if kind == "steps" else number
    return settings


def finite_number(value) -> float | None:
    """``value`` as a finite float when it is one number (not a bool, not text), else None."""
    if isinstance(value, bool | str | bytes) or not hasattr(value, "__float__"):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError, OverflowError):  # torch: several values; an int past float's range
        return None
    return number if math.isfinite(number) else None


def resolved_sampling(recommended: dict | None, **given) -> dict:
    """Every setting of :data:`OFFICIAL_SAMPLING`: those ``given`` (None: not given; checked where they are
    used), else the model's ``recommended`` ones, else the official ones."""
    chosen = {key: value for key, value in given.items() if value is not None}
    return {**OFFICIAL_SAMPLING, **(recommended or {}), **chosen}


def check_folder_sampling(folder: Path) -> None:
    """The recommended settings in ``folder``'s model_index.json, if any, checked: PcdmsError naming the file
    otherwise (an unreadable index is left to diffusers, which names it)."""
    index = Path(folder) / "model_index.json"
    if not index.is_file():
        return
    try:
        recommended = json.loads(index.read_text()).get("sampling")
    except (OSError, ValueError, AttributeError):
        return
    checked_sampling(recommended, f'{index}: "sampling"')
