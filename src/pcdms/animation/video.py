"""Reading and writing videos with imageio and its ffmpeg plugin (the optional ``video`` extra: imageio-ffmpeg
ships its own ffmpeg binary, so it runs offline). GIFs are written with Pillow.

Videos are written atomically: to a hidden file beside the target, renamed when complete.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import PcdmsError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")
WRITABLE_SUFFIXES = (".mp4", ".gif")
GIF_RATE = "pcdms-fps"  # a GIF's comment: the frame rate, which merged identical frames would hide


def _imageio_ffmpeg():
    """imageio's v2 API with the ffmpeg plugin available, or one line saying how to install them."""
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  (the plugin's binary; imageio finds it)
    except ImportError:
        raise PcdmsError(
            "videos need imageio and imageio-ffmpeg: pip install -e '.[video]' in the pcdms clone"
        ) from None
    return imageio


@contextlib.contextmanager
def _video_reader(path: Path) -> Iterator:
    imageio = _imageio_ffmpeg()
    try:
        reader = imageio.get_reader(str(path), format="FFMPEG")
    except (OSError, RuntimeError, ValueError) as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise PcdmsError(f"{path}: not a video ffmpeg can read ({reason[:120]})") from None
    try:
        yield reader
    finally:
        reader.close()


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> tuple[Iterator[Image.Image], float, int]:
    """The frames of a video file as RGB PIL images (an iterator), its frame rate (frames per second) and its
    frame count (an estimate from the container; up to ``max_frames``).

    Raises PcdmsError naming the file when it is missing or not a video ffmpeg reads.
    """
    path = Path(path)
    if not path.is_file():
        raise PcdmsError(f"{path}: no such video file")
    if path.suffix.lower() == ".gif":
        return _read_gif(path, max_frames)
    with _video_reader(path) as reader:
        meta = reader.get_meta_data()
    fps = float(meta.get("fps") or 0)
    if not fps > 0:
        raise PcdmsError(f"{path}: the video does not record its frame rate")
    count = meta.get("nframes")
    count = int(count) if isinstance(count, int | float) and np.isfinite(count) else 0
    if not count:
        duration = float(meta.get("duration") or 0)
        count = round(duration * fps)
    if max_frames is not None:
        count = min(count, max_frames) if count else max_frames

    def frames() -> Iterator[Image.Image]:
        with _video_reader(path) as reader:
            try:
                for number, frame in enumerate(reader):
                    if max_frames is not None and number >= max_frames:
                        return
                    yield Image.fromarray(np.asarray(frame)[..., :3]).convert("RGB")
            except (OSError, RuntimeError) as error:
                raise PcdmsError(f"{path}: the video cannot be decoded ({str(error).strip()[:120]})") from None

    return frames(), fps, count


def _recorded_rate(comment: bytes) -> float | None:
    """The frame rate a pcdms GIF's comment records (``pcdms-fps 10``), else None."""
    words = comment.decode("latin-1").split()
    try:
        return float(words[1]) if len(words) == 2 and words[0] == GIF_RATE and float(words[1]) > 0 else None
    except ValueError:
        return None


def _read_gif(path: Path, max_frames: int | None) -> tuple[Iterator[Image.Image], float, int]:
    """A GIF's frames by Pillow (imageio's ffmpeg plugin does not take GIFs), at the rate of its shortest frame
    time. A GIF writer merges identical consecutive frames into one shown longer: such a frame counts as many."""
    from PIL import ImageSequence, UnidentifiedImageError

    try:
        with Image.open(path) as gif:
            shown = [(frame.convert("RGB"), frame.info.get("duration") or 100) for frame in ImageSequence.Iterator(gif)]
            recorded = _recorded_rate(gif.info.get("comment", b""))
    except (UnidentifiedImageError, OSError) as error:
        raise PcdmsError(f"{path}: not a GIF Pillow can read ({error})") from None
    base = min(duration for _, duration in shown)  # milliseconds; browsers show 0 as 100
    if recorded:
        base = 1000.0 / recorded
    frames = [frame for frame, duration in shown for _ in range(max(1, round(duration / base)))][:max_frames]
    return iter(frames), 1000.0 / base, len(frames)


def _even(image: Image.Image) -> Image.Image:
    """H.264 in yuv420p needs even sides: pad by one pixel (repeating the edge) where a side is odd."""
    width, height = image.size
    if width % 2 == 0 and height % 2 == 0:
        return image
    pixels = np.asarray(image)
    return Image.fromarray(np.pad(pixels, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge"))


def write_video(path: str | os.PathLike, frames: Sequence[Image.Image], fps: float) -> Path:
    """Write ``frames`` (RGB PIL images of one size) as an MP4 (H.264) or a GIF, by the suffix of ``path``, at
    ``fps`` frames per second (a GIF's frame time is rounded to Pillow's milliseconds). Atomic: a failed write
    leaves no file. Raises PcdmsError for another suffix, no frames, or imageio-ffmpeg missing (MP4)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITABLE_SUFFIXES:
        raise PcdmsError(f"{path}: a video is written as .mp4 or .gif")
    if not frames:
        raise PcdmsError(f"{path}: no frames to write")
    if fps <= 0:
        raise PcdmsError(f"{path}: the frame rate must be positive, got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial{suffix}")
    try:
        if suffix == ".gif":
            first, *rest = [frame.convert("RGB") for frame in frames]
            # Pillow merges identical consecutive frames into one shown longer: the comment keeps the rate.
            first.save(
                partial, save_all=True, append_images=rest, duration=round(1000 / fps), loop=0,
                comment=f"{GIF_RATE} {fps:g}",
            )  # fmt: skip
        else:
            imageio = _imageio_ffmpeg()
            with imageio.get_writer(
                str(partial), format="FFMPEG", fps=fps, codec="libx264", quality=8, macro_block_size=1,
                ffmpeg_log_level="error", output_params=["-pix_fmt", "yuv420p"],
            ) as writer:  # fmt: skip
                for frame in frames:
                    writer.append_data(np.asarray(_even(frame.convert("RGB"))))
        os.replace(partial, path)
    except OSError as error:
        raise PcdmsError(f"{path}: cannot write the video ({error})") from None
    finally:
        partial.unlink(missing_ok=True)
    return path
