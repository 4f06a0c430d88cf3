"""Do the bundled model's encoders carry appearance? The Inception encoders against the random stand-ins.

For every test pair of the street dataset (the same person a few seconds apart, in another pose),
how often is the target closer to the source than a crop of another person is: the mean, over pairs,
of the fraction of other people's test crops whose embedding is less similar (cosine) to the
source's than the target's is. 0.5 is chance; 1.0 means a person's embedding always finds them
again. Measured for the CLIP-role embedding and for the mean of the DINOv2-role tokens, of each
encoder folder given. Run from the repository root:

    python benchmarks/encoders.py --data street street-encoders-random street-encoders

Results go to stdout and benchmarks/results/encoders.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
from pathlib import Path

import torch
import torch.nn.functional as F

from pcdms.data import open_dataset
from pcdms.io import load_image
from pcdms.models.encoders import ClipImageEncoder, clip_pixels, image_features, load_dinov2

RESULTS = Path(__file__).parent / "results" / "encoders.json"


def person(name: str) -> str:
    return name.split("_")[0]  # Market-1501 names: the person (track) comes first


def same_person_score(embeddings: torch.Tensor, names: list[str], pairs: list[tuple[str, str]]) -> float:
    index = {name: position for position, name in enumerate(names)}
    unit = F.normalize(embeddings.double(), dim=1)
    similarity = unit @ unit.T
    people = [person(name) for name in names]
    scores = []
    for source, target in pairs:
        row = similarity[index[source]]
        others = torch.tensor([people[position] != person(source) for position in range(len(names))])
        scores.append((row[others] < row[index[target]]).double().mean().item())
    return sum(scores) / len(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("encoders", nargs="+", type=Path, help="folders holding clip/ and dinov2/")
    parser.add_argument("--data", type=Path, default=Path("street"))
    args = parser.parse_args()

    dataset = open_dataset(args.data, "test")
    names = dataset.image_names()
    images = [load_image(dataset.image_path(name)) for name in names]
    results = {}
    for folder in args.encoders:
        clip = ClipImageEncoder.from_pretrained(folder / "clip")
        dinov2 = load_dinov2(folder / "dinov2")
        embeds, tokens = [], []
        for start in range(0, len(images), 32):
            pixels = clip_pixels(images[start : start + 32], clip.processor)
            embeds.append(clip(pixels).float())
            tokens.append(image_features(dinov2, pixels).float().mean(dim=1))
        results[str(folder)] = {
            "clip_role_embedding": round(same_person_score(torch.cat(embeds), names, dataset.pairs), 3),
            "dinov2_role_tokens": round(same_person_score(torch.cat(tokens), names, dataset.pairs), 3),
        }
        print(folder, results[str(folder)])
    result = {
        "date": datetime.date.today().isoformat(),
        "device": f"{platform.machine()} CPU (torch {torch.__version__})",
        "test_pairs": len(dataset.pairs),
        "test_images": len(names),
        "same_person_score": results,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
