"""Picture grids: rows of same-sized cells under column titles, for comparing stages at a glance."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

TITLE_HEIGHT = 18
GAP = 4
BACKGROUND = (255, 255, 255)


def image_grid(rows: list[list[Image.Image]], titles: list[str], cell: tuple[int, int], scale: int = 1) -> Image.Image:
    """``rows`` of images, each resized to ``cell`` (width, height) times ``scale`` (nearest neighbour, so
    pixels stay visible), under one title per column."""
    if any(len(row) != len(titles) for row in rows):
        raise ValueError(f"every row needs {len(titles)} images, one per title")
    width, height = cell[0] * scale, cell[1] * scale
    grid = Image.new(
        "RGB",
        (len(titles) * (width + GAP) + GAP, TITLE_HEIGHT + len(rows) * (height + GAP) + GAP),
        BACKGROUND,
    )
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for column, title in enumerate(titles):
        left = GAP + column * (width + GAP)
        text_width = draw.textlength(title, font=font)
        draw.text((left + (width - text_width) / 2, 3), title, fill=(0, 0, 0), font=font)
        for row, images in enumerate(rows):
            picture = images[column].convert("RGB").resize((width, height), Image.Resampling.NEAREST)
            grid.paste(picture, (left, TITLE_HEIGHT + GAP + row * (height + GAP)))
    return grid
