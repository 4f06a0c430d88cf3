"""The multi-panel strips that older pose-transfer methods publish as their results, cut to the generated panel.

Several methods save each test result as a row of panels (source, poses, target, generated) rather than
the generated image alone, and their released result folders are what others compare against. A
strip is recognised by its shape: a row of panels each shaped like the ground truth. Its layout comes
from the file name, as each method writes it:

=================  ==================================  =======  ===============
method             file name                           panels   generated panel
=================  ==================================  =======  ===============
PATN, PoseStylizer ``SRC.jpg___TGT.jpg_vis.jpg``       5        the 5th (last)
Deformable-GAN     ``SRC.jpg_TGT.jpg.png`` (``.jpg``)  3 or 5   the last
GFLA, NTED         ``SRC_2_TGT_all.png``               3        the 2nd
=================  ==================================  =======  ===============

PATN's visualiser writes [source, source pose, target, target pose, generated] (880x256 for
DeepFashion, 320x128 for Market-1501); Deformable-GAN's test script writes the panels its
``--generated_images_save_format`` names, by default ``iog`` (input, output, generated: 3 panels),
5 in its earlier releases, the generated one last in both; GFLA and NTED write [source, generated,
target] as ``_all`` beside the generated image alone as ``_vis`` (PIDM and PCDMs save it alone too,
which needs no cutting). A strip whose name fits none of these is refused, never scored whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..errors import PcdmsError

# How far a strip's width may be from a whole number of ground-truth-shaped panels (JPEG strips are exact;
# this allows a pixel of rounding per panel).
PANEL_TOLERANCE = 0.02
_IMAGE_NAME = r"\.(?:jpg|jpeg|png)"


@dataclass(frozen=True)
class StripLayout:
    """A method's strip: ``panels`` side by side, the generated one at ``generated`` (0-based)."""

    method: str
    name: str  # the file name pattern, as the messages show it
    panels: int
    generated: int
    matches: Callable[[str], bool]  # on the file name's stem

    def describe(self) -> str:
        return f"{self.method} ({self.name}, {self.panels} panels, generated panel {self.generated + 1})"


def _is_patn(stem: str) -> bool:
    return "___" in stem and stem.endswith("_vis")


def _is_deformable_gan(stem: str) -> bool:
    # SRC.jpg_TGT.jpg: both names keep their extension, joined by one underscore.
    return re.fullmatch(rf".+{_IMAGE_NAME}_.+{_IMAGE_NAME}", stem, re.IGNORECASE) is not None and "___" not in stem


def _is_gfla_all(stem: str) -> bool:
    return "_2_" in stem and stem.endswith("_all")


LAYOUTS = (
    StripLayout("PATN", "SRC.jpg___TGT.jpg_vis.jpg", 5, 4, _is_patn),
    StripLayout("Deformable-GAN", "SRC.jpg_TGT.jpg.png", 3, 2, _is_deformable_gan),
    StripLayout("Deformable-GAN", "SRC.jpg_TGT.jpg.png", 5, 4, _is_deformable_gan),
    StripLayout("GFLA/NTED", "SRC_2_TGT_all.png", 3, 1, _is_gfla_all),
)


def panel_count(size: tuple[int, int], panel: tuple[int, int]) -> int | None:
    """How many ``panel``-shaped (width, height) images side by side make an image of ``size``; None when
    the width is no whole number of them."""
    width, height = size
    panel_width = height * panel[0] / panel[1]
    count = round(width / panel_width)
    if count < 1 or abs(width / (count * panel_width) - 1) > PANEL_TOLERANCE:
        return None
    return count


def known_layouts() -> str:
    return "; ".join(layout.describe() for layout in LAYOUTS)


def generated_panel(
    image: Image.Image, path: Path, truth_size: tuple[int, int]
) -> tuple[Image.Image, StripLayout | None]:
    """The generated panel of ``image`` (read from ``path``) if it is a strip of panels shaped like the
    ground truth (``truth_size``, width and height), with the layout applied; the image itself, and None,
    if it is one panel or no whole number of them (the caller warns of a stretch). Raises PcdmsError, naming
    ``path``, for a strip of several panels in no known layout."""
    count = panel_count(image.size, truth_size)
    if count is None or count == 1:
        return image, None
    layout = next((layout for layout in LAYOUTS if layout.panels == count and layout.matches(path.stem)), None)
    if layout is None:
        raise PcdmsError(
            f"{path}: {image.width}x{image.height} is a strip of {count} panels shaped like the ground truth "
            f"({truth_size[0]}x{truth_size[1]}), in no known layout ({known_layouts()}); crop the generated "
            "panel out first"
        )
    left = round(layout.generated * image.width / count)
    right = round((layout.generated + 1) * image.width / count)
    return image.crop((left, 0, right, image.height)), layout
