"""Miniature copies of the real benchmarks, each in its exact published format, for lessons and tests.

Each writer draws a handful of small scenes (a coloured disc and a square on a light canvas, the disc
being the target) and writes them the way the benchmark ships: V*'s folder of images with one JSON of
target boxes each and `test_questions.jsonl`; HR-Bench's, MME-RealWorld's and TreeBench's TSV with
base64 images (`r3lab.bench.readers` documents each format and the file it follows). The answers
are known, so a scripted policy's scores can be checked by hand. Nothing is downloaded.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {
    "red": (220, 40, 40),
    "blue": (40, 60, 220),
    "green": (40, 170, 60),
    "yellow": (235, 200, 30),
    "purple": (140, 50, 170),
}


def scene(seed: int, size: tuple[int, int] = (320, 240)) -> tuple[Image.Image, str, tuple[int, int, int, int]]:
    """A canvas with a coloured disc (the target) and a grey square;
    returns (image, disc colour, disc box x1 y1 x2 y2)."""
    rng = random.Random(seed)
    w, h = size
    colour = rng.choice(sorted(COLOURS))
    im = Image.new("RGB", size, (245, 245, 240))
    d = ImageDraw.Draw(im)
    s = rng.randint(w // 8, w // 5)
    x, y = rng.randint(0, w // 2 - s), rng.randint(0, h - s)
    d.ellipse((x, y, x + s, y + s), fill=COLOURS[colour])
    d.rectangle((w * 0.6, h * 0.3, w * 0.85, h * 0.7), fill=(120, 120, 120))
    return im, colour, (x, y, x + s, y + s)


def jpeg_base64(im: Image.Image) -> str:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return base64.b64encode(buf.getvalue()).decode()


def _options(colour: str, k: int, seed: int) -> list[str]:
    others = [c for c in sorted(COLOURS) if c != colour]
    random.Random(seed).shuffle(others)
    return [colour] + others[: k - 1]


def write_vstar(folder: str | Path, n_attribute: int = 3, n_position: int = 2) -> Path:
    """V*: `test_questions.jsonl` + `direct_attributes/` (4 options) + `relative_position/` (2 options), each
    image with its JSON (`bbox` as [x, y, w, h], `target_object`, `question`, `options` correct first)."""
    folder = Path(folder)
    lines = []
    for cat, count, k in (("direct_attributes", n_attribute, 4), ("relative_position", n_position, 2)):
        (folder / cat).mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            qid = len(lines)
            im, colour, (x1, y1, x2, y2) = scene(100 + qid)
            name = f"sa_{1000 + qid}"
            im.save(folder / cat / f"{name}.jpg", quality=90)
            if cat == "direct_attributes":
                q, opts = "What is the color of the disc?", _options(colour, 4, qid)
                boxes, objects = [[x1, y1, x2 - x1, y2 - y1]], ["disc"]
            else:
                q, opts = "Is the disc on the left or right side of the square?", ["left", "right"]
                boxes, objects = [[x1, y1, x2 - x1, y2 - y1], [192, 72, 80, 96]], ["disc", "square"]
            (folder / cat / f"{name}.json").write_text(
                json.dumps({"target_object": objects, "bbox": boxes, "question": q, "options": opts})
            )
            text = q + "\n" + "\n".join(f"({'ABCD'[j]}) {o}" for j, o in enumerate(opts[:k]))
            text += "\nAnswer with the option's letter from the given choices directly."
            lines.append(
                {"image": f"{cat}/{name}.jpg", "text": text, "category": cat, "question_id": qid, "label": "A"}
            )
    (folder / "test_questions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return folder


def _write_tsv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", quotechar='"', lineterminator="\n")  # as pandas' to_csv(sep="\t")
        w.writerow(header)
        w.writerows(rows)
    return path


def write_hrbench(path: str | Path, n: int = 5) -> Path:
    """HR-Bench: `index question answer category A B C D image cycle_category`; rows 2k and 2k+1 ask about one
    image (a "single" then a "cross" question) in cycle k, the second holding a reference to the first's
    image (the TSV's space-saving rule)."""
    rows = []
    for i in range(n):
        im, colour, _ = scene(200 + i // 2)
        opts = _options(colour, 4, i)
        random.Random(i).shuffle(opts)
        rows.append(
            [
                i,
                "What colour is the disc?",
                "ABCD"[opts.index(colour)],
                ("single", "cross")[i % 2],
                *opts,
                jpeg_base64(im) if i % 2 == 0 else str(i - 1),
                i // 2,
            ]
        )
    return _write_tsv(
        Path(path), ["index", "question", "answer", "category", "A", "B", "C", "D", "image", "cycle_category"], rows
    )


def write_mme_realworld(path: str | Path, n: int = 4) -> Path:
    """MME-RealWorld-Lite: `index image question multi-choice options answer category l2-category`, five options
    as a list literal of "(A) ..." strings."""
    rows = []
    for i in range(n):
        im, colour, _ = scene(300 + i)
        opts = _options(colour, 5, i)
        random.Random(i).shuffle(opts)
        lines = [f"({'ABCDE'[j]}) {o}" for j, o in enumerate(opts)]
        cat = ("Perception/Remote Sensing", "Reasoning/Diagram and Table")[i % 2]
        rows.append(
            [i, jpeg_base64(im), "What colour is the disc?", repr(lines), "ABCDE"[opts.index(colour)], cat, "color"]
        )
    return _write_tsv(
        Path(path), ["index", "image", "question", "multi-choice options", "answer", "category", "l2-category"], rows
    )


def write_treebench(path: str | Path, n: int = 4) -> Path:
    """TreeBench: `index image question A B C D answer category target_instances` (boxes x1 y1 x2 y2)."""
    rows = []
    for i in range(n):
        im, colour, box = scene(400 + i)
        opts = _options(colour, 4, i)
        random.Random(i).shuffle(opts)
        cat = ("Perception/Attributes", "Reasoning/Comparison")[i % 2]
        rows.append(
            [i, jpeg_base64(im), "What colour is the disc?", *opts, "ABCD"[opts.index(colour)], cat, str([list(box)])]
        )
    return _write_tsv(
        Path(path), ["index", "image", "question", "A", "B", "C", "D", "answer", "category", "target_instances"], rows
    )


def write_benchmark(name: str, folder: str | Path) -> Path:
    """The miniature copy of benchmark `name` under `folder`; returns what `--data` takes."""
    folder = Path(folder)
    if name == "vstar":
        return write_vstar(folder / "vstar_bench")
    writers = {
        "hrbench4k": ("hr_bench_4k.tsv", write_hrbench),
        "hrbench8k": ("hr_bench_8k.tsv", write_hrbench),
        "mme-realworld": ("MME-RealWorld.tsv", write_mme_realworld),
        "mme-realworld-lite": ("mme_realworld_lite.tsv", write_mme_realworld),
        "treebench": ("TreeBench.tsv", write_treebench),
    }
    if name not in writers:
        raise ValueError(f"no miniature copy of {name!r}; choose one of {['vstar', *writers]}")
    file, write = writers[name]
    return write(folder / file)
