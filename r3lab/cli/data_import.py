"""`r3lab data import`: an official VLM-R3 SFT / RL file or grounded-VQA records -> an r3lab dataset folder.

Crop boxes are moved to the view of the model that will train on them (`--policy`, default a fresh
r3-tiny): official SFT boxes are absolute pixels of images of up to 1.6 M pixels, which r3-tiny never
sees. Bad records are named with their number (`--errors report` imports the rest and lists them).
"""

from __future__ import annotations

from dataclasses import asdict

from .args import parse_bool

FORMATS = ("vlm-r3-sft", "vlm-r3-rl", "grounded-vqa")


def add_arguments(parser) -> None:
    parser.add_argument("src", help="the file to import: a JSON list (official formats) or JSONL (grounded VQA)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="what SRC holds")
    parser.add_argument("--out", required=True, help="dataset folder to write (samples.jsonl, meta.json, images/)")
    parser.add_argument(
        "--policy",
        default="",
        help="checkpoint folder whose view the boxes are moved to "
        "(read from its JSON files, no weights loaded; default: a fresh r3-tiny's view)",
    )
    parser.add_argument(
        "--image-root",
        default="",
        help="the folder every image a record names must lie in, and "
        "where relative paths start (default: SRC's folder); R3LAB_ALLOW_OUTSIDE_PATHS=1 lifts it",
    )
    parser.add_argument(
        "--box-format",
        default="xyxy",
        help="grounded VQA: xyxy | xywh (original pixels), xyxy_norm (0..1), xyxy_1000 (0..1000) (default: xyxy)",
    )
    parser.add_argument(
        "--errors",
        choices=["raise", "report"],
        default="raise",
        help="stop at the first bad record, or import the others and list the bad ones",
    )
    parser.add_argument(
        "--overwrite",
        type=parse_bool,
        default=False,
        metavar="BOOL",
        help="replace the dataset already in --out (default: false, such a folder is refused)",
    )


def target_view(policy: str):
    """The view of the model the data is for: a checkpoint folder's, or a fresh r3-tiny's."""
    from ..core.regions import ViewConfig
    from ..model.folder import read_view
    from ..model.tiny import TinyConfig

    if policy:
        return read_view(policy)
    tiny = TinyConfig()
    return ViewConfig().with_factor(tiny.patch_size * tiny.merge_size)


def run(args) -> int:
    from ..data.dataset import check_destination, save_dataset
    from ..data.formats import import_rl, import_sft
    from ..data.grounded_vqa import import_grounded_vqa
    from ..data.vlir import regions_from_calls, retarget

    check_destination(args.out, args.overwrite)  # before any work
    view = target_view(args.policy)
    root = args.image_root or None
    if args.format == "vlm-r3-sft":
        samples, report = import_sft(args.src, image_root=root, errors=args.errors)
        moved = []
        for s in samples:
            try:
                moved.append(retarget(regions_from_calls(s), view))
            except ValueError as e:
                if args.errors == "raise":
                    raise ValueError(f"{args.src}: record {s.provenance.get('line', '?')}: {e}") from None
                report.errors.append((s.provenance.get("line", "?"), str(e)))
        samples, report.kept = moved, len(moved)
    elif args.format == "vlm-r3-rl":
        samples, report = import_rl(args.src, image_root=root, errors=args.errors)
    else:
        samples, report = import_grounded_vqa(
            args.src, view, image_root=root, box_format=args.box_format, errors=args.errors
        )
    print(report)
    if not samples:
        raise ValueError(f"{args.src}: no record could be imported; nothing was written to {args.out}")
    meta = {
        "imported_from": str(args.src),
        "source_format": args.format,
        "view": asdict(view),
        "import_errors": [list(e) for e in report.errors],
    }
    out = save_dataset(samples, args.out, meta, overwrite=args.overwrite, progress=False)
    print(f"wrote {len(samples)} samples to {out} (boxes in the view {view})")
    return 1 if report.errors else 0
