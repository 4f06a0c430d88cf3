"""The web page's handlers (``pcdms serve``): what the page does, as plain methods, without Gradio.

The page holds one person and one target pose. The person is an uploaded photo (its pose extracted) or a
bundled example (its pose known). The target pose comes from a second photo (extracted), a pose file, a
gallery of dataset poses, or the skeleton editor, and every one of them lands in the editor, where its 18
joints can be dragged: the editor's pose is what the model gets. Generation runs the three stages with a
progress bar each and shows the result beside stage 2's coarse image and the two poses as the model saw them.

The Animate tab moves the person as the person of a short uploaded clip moves (:meth:`PoseTransferApp.animate`,
over :func:`pcdms.animation.upload.animate_upload`): a video back, at most its first 48 frames.

:class:`PoseTransferApp` holds the handlers as plain methods that raise :class:`PcdmsError`;
:func:`pcdms.page.build_page` lays them out with Gradio and turns those errors into messages on the page.
Only generation uses the model, and the queue runs one generation at a time.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .bundled import STAGE_NAMES, stage_generators, street_examples_path
from .errors import PcdmsError
from .io import image_size, load_image, save_image
from .pose import Keypoints, check_enough_joints, draw_overlay, load_pose, render_pose
from .pose.pose_json import pose_from_dict, pose_to_dict

MAX_UPLOAD_MB = 20
WALK_CLIP = street_examples_path().parent / "walk" / "walk.mp4"
GALLERY_LIMIT = 60


@dataclass(frozen=True)
class Example:
    """A bundled photo of a person with its pose file."""

    photo: Path
    pose: Path


@dataclass(frozen=True)
class Settings:
    """The "advanced" fold: steps per stage, guidance of stages 2 and 3, one seed for all stages, where stage 3
    starts (its strength, in (0, 1]), and the sampling preset ("official", "fast", "fastest"; None: the model's own
    settings; pcdms.pipelines.presets). A setting None: the preset's, else the model's recommended one, else the
    official one (PCDMsPipeline.sampling_defaults); one given wins over the preset's."""

    prior_steps: int | None = None
    inpaint_steps: int | None = None
    refine_steps: int | None = None
    inpaint_guidance: float | None = None
    refine_guidance: float | None = None
    seed: int = 42
    refine_strength: float | None = None
    preset: str | None = None


@dataclass
class Result:
    """A generation as the page shows it: the image, stage 2's, the two poses drawn, and the file to download."""

    image: Image.Image
    coarse: Image.Image
    source_pose: Image.Image
    target_pose: Image.Image
    download: Path


def street_examples() -> list[Example]:
    """The bundled street photos, each with its pose file."""
    return [Example(photo, photo.with_suffix(".json")) for photo in sorted(street_examples_path().glob("*.jpg"))]


def gallery_poses(folder: Path | None = None, limit: int = GALLERY_LIMIT) -> list[tuple[str, Keypoints]]:
    """Named poses for the gallery: the pose files (.json) of ``folder`` (at most ``limit``, spread evenly
    over the sorted files), or the bundled street poses."""
    if folder is None:
        return [(example.pose.stem, load_pose(example.pose)) for example in street_examples()]
    if not folder.is_dir():
        raise PcdmsError(f"{folder}: no such folder of pose files")
    paths = sorted(folder.glob("*.json"))
    if not paths:
        raise PcdmsError(f"{folder}: no pose files (.json) in it")
    chosen = [paths[index * len(paths) // limit] for index in range(limit)] if len(paths) > limit else paths
    return [(path.stem, load_pose(path)) for path in chosen]


@contextmanager
def named_by_file_name(*paths: str | None):
    """Errors about uploaded files name them as the user did, not by their paths on the server."""
    try:
        yield
    except PcdmsError as error:
        message = str(error)
        for path in filter(None, paths):
            message = message.replace(str(path), Path(path).name)
        raise PcdmsError(message) from None


class PoseTransferApp:
    """The page's handlers over one pipeline. Files arrive as paths in Gradio's upload folder; messages name
    them by their own name, never by the server's path."""

    def __init__(self, pipeline, examples: list[Example], gallery: list[tuple[str, Keypoints]], extractor=None):
        self.pipeline, self.examples, self.gallery, self.extractor = pipeline, examples, gallery, extractor
        self.downloads = Path(tempfile.mkdtemp(prefix="pcdms-serve-"))
        weakref.finalize(self, shutil.rmtree, self.downloads, ignore_errors=True)
        self._extracting = threading.Lock()  # one MediaPipe graph, shared by every request
        self.animations = Path(tempfile.mkdtemp(prefix="pcdms-animate-"))  # a folder per animation request
        weakref.finalize(self, shutil.rmtree, self.animations, ignore_errors=True)

    @property
    def stages(self) -> tuple[str, ...]:
        return self.pipeline.stages

    def recommended_settings(self, preset: str | None = None) -> Settings:
        """The settings a generation uses unless the page changes them: the ``preset``'s, else the model's (see
        :class:`Settings`). Raises PcdmsError for an unknown preset."""
        from .pipelines.presets import preset_defaults

        sampling = preset_defaults(self.pipeline.config.sampling, preset)
        fields = [field for field in Settings.__dataclass_fields__ if field not in ("seed", "preset")]
        return Settings(**{field: sampling[field] for field in fields}, preset=preset)

    def example(self, index: int) -> tuple[Image.Image, dict]:
        """A bundled person: the photo and its pose."""
        example = self.examples[index]
        return load_image(example.photo), pose_to_dict(load_pose(example.pose))

    def person(self, path: str | None) -> dict | None:
        """An uploaded person's pose, extracted from the photo."""
        if path is None:
            return None
        name = Path(path).name
        return pose_to_dict(self._enough_joints(self._extract(self._image(path), name), name))

    def pose_from_photo(self, path: str) -> dict:
        """The pose of the person in a second photo."""
        name = Path(path).name
        return pose_to_dict(self._enough_joints(self._extract(self._image(path), name), name))

    def pose_from_file(self, path: str) -> dict:
        """A pose file: pcdms or OpenPose JSON."""
        with named_by_file_name(path):
            keypoints = load_pose(path)
        return pose_to_dict(self._enough_joints(keypoints, Path(path).name))

    def pose_from_gallery(self, index: int) -> dict:
        return pose_to_dict(self.gallery[index][1])

    def generate(self, person: str | None, source_pose: dict | None, target_pose: dict, settings: Settings) -> Result:
        """The person in the target pose, with the intermediates the page shows beside it."""
        if person is None:
            raise PcdmsError("choose a person first: upload a photo or pick an example")
        name = Path(person).name
        source = self._image(person)
        source_keypoints = pose_from_dict(source_pose, "the person's pose") if source_pose else None
        if source_keypoints is None or source_keypoints.image_size != source.size:
            source_keypoints = self._extract(source, name)
        target = self._enough_joints(pose_from_dict(target_pose, "the target pose"), "the target pose")
        # The rule of every entry point (pcdms.pipelines.framing): the pose fitted into the photo's frame without
        # stretching the body, the photo padded to the model's aspect, the result cut back to the photo's.
        target_keypoints = target.letterbox(source.size)
        seeds = dict.fromkeys(STAGE_NAMES, int(settings.seed))
        output = self.pipeline(
            source,
            target_keypoints,
            source_keypoints,
            prior_steps=settings.prior_steps,
            inpaint_steps=settings.inpaint_steps,
            refine_steps=settings.refine_steps,
            inpaint_guidance=settings.inpaint_guidance,
            refine_guidance=settings.refine_guidance,
            refine_strength=settings.refine_strength,
            preset=settings.preset,
            generator=stage_generators(seeds, 1, self.pipeline._execution_device),
            return_intermediates=True,
        )
        image = output.images[0]
        for earlier in self.downloads.iterdir():  # already copied to Gradio's cache when it was shown
            earlier.unlink()
        download = save_image(image, self.downloads / f"{Path(name).stem}_pcdms_seed{int(settings.seed)}.png")
        return Result(
            image=image,
            coarse=output.coarse_images[0],
            source_pose=draw_overlay(source, source_keypoints),
            target_pose=render_pose(target_keypoints),
            download=download,
        )

    def example_clip(self) -> Path:
        """The bundled walking clip (20 frames), copied where the page may serve it from (not the package)."""
        copy = self.animations / WALK_CLIP.name
        if not copy.is_file():
            shutil.copyfile(WALK_CLIP, copy)
        return copy

    def animate(
        self,
        person: str | None,
        source_pose: dict | None,
        clip: str | None,
        *,
        smoothing: bool = True,
        retarget: bool = True,
        side_by_side: bool = False,
        seed: int = 42,
        on_frame=None,
    ):
        """The person of the photo ``person`` moving as the person of the uploaded ``clip`` does: a
        :class:`~pcdms.animation.upload.PageAnimation` (an MP4 in a folder of this request's own, and one line
        saying how many frames and what was cut or filled). ``source_pose``: the photo's pose when known (an
        example's), else it is extracted. The options: One-Euro ``smoothing`` of the clip's poses, ``retarget`` them
        onto the person's body, each video frame ``side_by_side`` as [clip frame | pose | result], the ``seed`` of
        every frame's shared noise. ``on_frame(done, total)`` follows the frames. Raises PcdmsError, one
        line naming the upload by its own name, for a missing photo or clip, a clip that is not a video, nobody
        in the photo or in any frame."""
        from .animation.upload import animate_upload

        if person is None:
            raise PcdmsError("choose a person first: upload a photo or pick an example")
        for earlier in self.animations.iterdir():  # shown (copied to Gradio's cache) when their request ended
            if earlier.is_dir():
                shutil.rmtree(earlier, ignore_errors=True)
        folder = tempfile.mkdtemp(dir=self.animations)
        with named_by_file_name(person, clip):
            keypoints = pose_from_dict(source_pose, "the person's pose") if source_pose else None
            if keypoints is not None and keypoints.image_size != image_size(person):
                keypoints = None  # another photo's: extracted from this one
            return animate_upload(
                self.pipeline, person, clip, folder, source_pose=keypoints, smoothing=smoothing, retarget=retarget,
                side_by_side=side_by_side, seed=int(seed), extractor=self._locked_extractor, on_frame=on_frame,
            )  # fmt: skip

    def _locked_extractor(self, image: Image.Image) -> Keypoints:
        """The extractor for a clip's frames, one frame at a time with the page's other extractions."""
        from .pose import extract_pose

        with self._extracting:
            return extract_pose(image, self.extractor)

    def _image(self, path: str) -> Image.Image:
        with named_by_file_name(path):
            return load_image(path)  # as the command line reads it: size from the header first, cut-outs on white

    def _extract(self, image: Image.Image, name: str) -> Keypoints:
        from .pose import extract_pose

        with self._extracting:
            try:
                return extract_pose(image, self.extractor)
            except PcdmsError as error:
                raise PcdmsError(f"{name}: {error}") from None

    @staticmethod
    def _enough_joints(keypoints: Keypoints, name: str) -> Keypoints:
        return check_enough_joints(keypoints, name)  # the rule of every entry point
