"""Generation around the pipeline: reading a pair's inputs, batches from a pairs file with best-of
selection, writing the images, and the bundled street examples.

``pcdms generate`` and ``pcdms demo`` are thin layers over these; a Python user can call them with a
pipeline from :func:`pcdms.pipelines.pcdms.load_pcdms_pipeline`. torch and accelerate are imported by the
functions that use them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .bundled import DEFAULT_SEEDS, read_pairs_file, stage_generators
from .errors import PcdmsError
from .io import atomic_write, load_image, save_image
from .pose import as_keypoints, check_enough_joints, load_pose, render_pose

ORACLE_LABEL = "oracle: best of {} samples per pair, chosen by SSIM to the ground truth"


def read_pose_input(path: Path, size: tuple[int, int] | None, person: int | None = None):
    """A pose file (in the frame of ``size`` where it records none; ``person``: which of an OpenPose file's
    people), a pose image, or a photo; a pose with too few joints to pose a person is refused."""
    return check_enough_joints(as_keypoints(path, image_size=size, where=str(path), person=person), str(path))


def source_pose_of(source, source_path: Path, source_pose_path: Path | None, person: int | None = None):
    """The source photo's pose: read from ``source_pose_path``, or extracted from the photo ``source`` (a PIL
    image read from ``source_path``) here rather than in the pipeline, so that every message names the photo."""
    if source_pose_path:
        return read_pose_input(source_pose_path, source.size, person)
    return check_enough_joints(as_keypoints(source, where=str(source_path)), str(source_path))


def sample_paths(out: Path, count: int) -> list[Path]:
    """``out`` for one image; ``stem_0.png``, ``stem_1.png``, ... for several."""
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{index}{out.suffix or '.png'}") for index in range(count)]


def write_generated(output, index: int, out: Path, samples: int, intermediates: bool) -> list[Path]:
    """The images of pair ``index`` of a pipeline output; with ``intermediates``, its coarse images and
    its stage-1 embedding beside them."""
    import numpy as np

    chosen = slice(index * samples, (index + 1) * samples)
    written = [
        save_image(image, path) for path, image in zip(sample_paths(out, samples), output.images[chosen], strict=True)
    ]
    if intermediates:
        coarse = out.with_name(f"{out.stem}_coarse{out.suffix or '.png'}")
        written += [
            save_image(image, path)
            for path, image in zip(sample_paths(coarse, samples), output.coarse_images[chosen], strict=True)
        ]
        if output.target_embeds is not None:
            embedding = out.with_name(f"{out.stem}_embedding.npy")
            with atomic_write(embedding, "wb") as file:
                np.save(file, output.target_embeds[index : index + 1].numpy())
            written.append(embedding)
    return written


def generate_pairs(
    pipeline,
    pairs_file: Path,
    out: Path,
    settings: dict,
    generators,
    manifest: dict,
    *,
    samples: int = 1,
    best_of: int = 1,
    ground_truth: Path | None = None,
    batch_size: int = 4,
    intermediates: bool = False,
    target_size: tuple[int, int] | None = None,
    source_person: int | None = None,
    target_person: int | None = None,
) -> int:
    """Every pair of a pairs file, as ``out/{source}_to_{target}.png``, in batches of ``batch_size``; pairs whose
    image is already there are skipped, so an interrupted run resumes; a pair that cannot be read is reported
    (one line on stderr) and skipped. Under ``accelerate launch`` the pairs are shared out between the processes.

    ``settings``: the pipeline's call arguments; ``generators(n)``: the generators of a batch of ``n`` pairs;
    ``manifest``: written as ``out``'s generation manifest. With ``best_of`` > 1 each pair's ``best_of`` samples
    are scored by SSIM to its image in ``ground_truth`` and the best kept (an oracle). Returns the number of
    pairs that could not be read. Raises PcdmsError for a bad pairs file, colliding output names, or ``out``
    holding images of another ``best_of``.
    """
    from accelerate import PartialState
    from tqdm.auto import tqdm

    from .evaluation.evaluate import GENERATION_MANIFEST, read_generation_manifest

    state = PartialState()
    pairs = read_pairs_file(pairs_file)
    names = [f"{source.stem}_to_{target.stem}.png" for source, target, _ in pairs]
    check_distinct_outputs(pairs_file, pairs, names)
    truth = ground_truth_by_name(ground_truth) if best_of > 1 else None
    earlier = read_generation_manifest(out) if out.is_dir() else None
    if earlier and earlier.get("best_of", 1) != best_of:
        raise PcdmsError(
            f"{out}: holds images chosen as best of {earlier.get('best_of', 1)}, not {best_of}; write to another folder"
        )
    if earlier and any(path.suffix.lower() == ".png" for path in out.iterdir()):
        check_same_settings(out, earlier, manifest)
    if state.is_main_process:
        with atomic_write(out / GENERATION_MANIFEST) as file:
            json.dump(manifest, file, indent=2)
    # Shared out by position in the file, not among the pairs still to do: processes that start at different
    # moments must agree on who does what.
    mine = range(state.process_index, len(names), state.num_processes)
    done = {index for index in mine if sample_paths(out / names[index], samples)[-1].exists()}
    mine = [index for index in mine if index not in done]
    pipeline.set_progress_bar_config(leave=False)
    failures = 0
    progress = tqdm(total=len(mine), desc="pairs", unit="pair", disable=not state.is_local_main_process)
    for start in range(0, len(mine), batch_size):
        chunk, batch = mine[start : start + batch_size], []
        for index in chunk:
            source_path, target_path, source_pose_path = pairs[index]
            try:
                source = load_image(source_path)
                source_pose = source_pose_of(source, source_path, source_pose_path, source_person)
                if truth is not None and target_path.stem not in truth:
                    raise PcdmsError(f"{target_path}: no ground-truth image {target_path.stem}.* in {ground_truth}")
                target_pose = read_pose_input(target_path, target_size, target_person)
                batch.append((index, source, source_pose, target_pose))
            except PcdmsError as error:
                print(f"pcdms: error: {error}", file=sys.stderr)
                failures += 1
        if batch:
            indices, sources, source_poses, target_poses = zip(*batch, strict=True)
            output = pipeline(
                list(sources), list(target_poses), list(source_poses), generator=generators(len(batch)), **settings
            )
            if truth is not None:
                best = best_by_ssim(output.images, [truth[pairs[index][1].stem] for index in indices])
                output.images = [output.images[sample] for sample in best]
                if output.coarse_images is not None:
                    output.coarse_images = [output.coarse_images[sample] for sample in best]
            for number, index in enumerate(indices):
                write_generated(output, number, out / names[index], samples, intermediates)
        progress.update(len(chunk))
    progress.close()
    state.wait_for_everyone()
    where = f" (process {state.process_index + 1} of {state.num_processes})" if state.num_processes > 1 else ""
    print(f"{len(mine) - failures} pairs generated{where}, {len(done)} already there, images in {out}")
    return failures


def check_same_settings(out: Path, earlier: dict, manifest: dict) -> None:
    """Refuse, in one line, to add images to ``out`` (which holds some) made with other settings than those its
    ``earlier`` manifest records: resuming would keep the old images under the new settings' label. Settings
    that manifest lacks (a folder written by an older pcdms) are not compared; its model may be a path, as
    older versions recorded it."""
    from .bundled import model_record

    now = json.loads(json.dumps(manifest))  # as the manifest file holds it: lists, string keys

    def same(key: str) -> bool:
        if key == "model" and isinstance(earlier[key], str):
            return earlier[key] == now[key] or model_record(earlier[key]) == now[key]
        return earlier[key] == now[key]

    changed = [key for key in now if key in earlier and not same(key)]
    if changed:
        differences = "; ".join(
            f"{key} {json.dumps(earlier[key])} there, {json.dumps(now[key])} now" for key in changed
        )
        raise PcdmsError(
            f"{out}: holds images generated with other settings ({differences}); write to another folder, "
            "or resume with the same options"
        )


def check_distinct_outputs(path: Path, pairs: list, names: list[str]) -> None:
    """Refuse, in one line, two different pairs of a pairs file whose images would have one name (target
    poses x_pose.png and x_pose.jpg): the second would be skipped as already there."""
    first = {}
    for (source, target, _), name in zip(pairs, names, strict=True):
        earlier = first.setdefault(name, (source, target))
        if earlier != (source, target):
            raise PcdmsError(
                f"{path}: the pairs {earlier[0].name},{earlier[1].name} and {source.name},{target.name} would both "
                f"be written as {name}; rename one of the files"
            )


def ground_truth_by_name(folder: Path) -> dict[str, Path]:
    from .evaluation.protocol import image_files

    return {path.stem: path for path in image_files(folder, "ground truth for --best-of")}


def best_by_ssim(images: list, truths: list[Path]) -> list[int]:
    """Of each pair's consecutive samples, the index of the one whose SSIM to the ground truth is highest
    (an oracle)."""
    from dataclasses import replace

    import torch

    from .evaluation.protocol import PROTOCOLS, read_for_protocol, resize_for_protocol
    from .evaluation.ssim import ssim

    count = len(images) // len(truths)
    best = []
    for number, truth in enumerate(truths):
        first = number * count
        width, height = images[first].size
        protocol = replace(PROTOCOLS["pcdms"], width=width, height=height)
        target = read_for_protocol(truth, protocol)
        samples = torch.stack([resize_for_protocol(image, protocol) for image in images[first : first + count]])
        best.append(first + int(ssim(samples, target.expand_as(samples)).argmax()))
    return best


def run_street_examples(pipeline, examples: list[tuple[Path, Path, Path]]):
    """Bundled street pairs (``pairs.csv`` rows, each with its real target photo beside its pose file) through
    ``pipeline`` with the default seeds: the final images, and a grid of source, target pose, stage 2,
    stage 3 and the real target."""
    from .grid import image_grid

    sources = [load_image(source) for source, _, _ in examples]
    target_poses = [load_pose(target_pose) for _, target_pose, _ in examples]
    output = pipeline(
        sources,
        target_poses,
        [load_pose(source_pose) for _, _, source_pose in examples],
        generator=stage_generators(DEFAULT_SEEDS, len(examples)),
        return_intermediates=True,
    )
    rows = [
        [source, render_pose(pose), coarse, image, load_image(target_pose.with_suffix(".jpg"))]
        for source, pose, coarse, image, (_, target_pose, _) in zip(
            sources, target_poses, output.coarse_images, output.images, examples, strict=True
        )
    ]
    titles = ["source", "target pose", "stage 2", "stage 3", "real"]
    return output.images, image_grid(rows, titles, sources[0].size, scale=2)
