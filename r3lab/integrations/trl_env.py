"""r3lab's crop environment as TRL's `environment_factory`, its samples as TRL rows, its processor made tool-capable.

TRL's GRPOTrainer (huggingface/trl `trl/trainer/grpo_trainer.py`) makes one environment object per rollout,
calls `reset(**row)` before generating, and exposes the object's public methods as tools: the model calls
`image_zoom_in_tool` (Qwen3-VL's and DeepEyes' name) with a `bbox_2d`, and the tool returns the zoomed crop
as an image part (TRL places it in a tool message, masks its tokens through `tool_mask` and feeds its pixels
to the training forward). Crops are cut by r3lab's own rules (`r3lab.core.regions.crop_and_zoom`, the
official zoom rule) and judged by r3lab's grammar (`parse_crop_call`), so a bad box gets the verdict r3lab's
engine gives it; it becomes a text tool response and a recorded call, never an exception.

Coordinates: `coords="absolute"` reads boxes in pixels of the model-input image (Qwen2.5-VL, r3-tiny),
`"relative"` in 0-1000 of its sides (Qwen3-VL); both are turned into model-input pixels before judging.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from PIL import Image
from tqdm.auto import tqdm

from ..core.crop_calls import RELATIVE_SCALE, TOOL_NAME, CropCall, Verdict, check_coords, judge_box
from ..core.env import progress_disabled
from ..core.regions import Crop, Frame, ViewConfig, crop_and_zoom
from ..core.settings import short
from ..engine.config import RolloutSettings


def require_trl() -> None:
    """ImportError naming the extra when TRL is missing (or is not the version r3lab is written against)."""
    try:
        import trl
    except ImportError:
        raise ImportError("r3lab.integrations needs TRL: pip install 'r3lab[trl]' (trl 1.16)") from None
    if not trl.__version__.startswith("1.16"):
        import warnings

        warnings.warn(
            f"r3lab.integrations is written against trl 1.16 (GRPOTrainer's tool loop, tool_mask); "
            f"trl {trl.__version__} is installed: pip install 'r3lab[trl]' pins it",
            stacklevel=3,
        )


def note(message: str) -> str:
    """The text tool response to a refused box (the words r3lab's engine writes in its note)."""
    return f"crop refused: {message}"


@dataclass
class ToolCall:
    """One call of the zoom tool during a rollout: the verdict and, when executed, the crop shown."""

    call: CropCall
    crop: Crop | None = None
    response: str = ""  # the text answered instead of a crop

    @property
    def ok(self) -> bool:
        return self.crop is not None


class CropEnvironment:
    """One rollout's crop environment for TRL's GRPOTrainer; build many with `CropEnvironment.factory(...)`.

    `reset` takes the dataset row (`to_trl_rows` writes `sample_id`; the original image is looked up among
    the factory's samples, else the row's `image` is used). `calls` records every zoom call of the rollout.
    """

    # TRL offers every public function of the class as a tool; nnsight, once imported, mounts `save` on every
    # object, which would reach the model as a tool without a schema: not a function here
    save = None

    def __init__(
        self,
        view: ViewConfig | None = None,
        coords: str = "absolute",
        max_crops: int = RolloutSettings.max_crops,
        originals: dict | None = None,
    ):
        self.view, self.coords, self.max_crops = view or ViewConfig(), check_coords(coords), int(max_crops)
        self._originals = originals if originals is not None else {}
        self.image: Image.Image | None = None
        self.frame: Frame | None = None
        self.sample_id = ""
        self.calls: list[ToolCall] = []

    @classmethod
    def factory(
        cls,
        samples: Sequence = (),
        view: ViewConfig | None = None,
        coords: str = "absolute",
        max_crops: int = RolloutSettings.max_crops,
    ) -> Callable[[], "CropEnvironment"]:
        """What to pass as `environment_factory`: environments that cut crops from the samples' original images."""
        originals = {s.sample_id: s for s in samples}
        if len(originals) != len(samples):
            raise ValueError(
                "the samples given to CropEnvironment.factory need distinct sample_id values "
                "(each rollout finds its original image by it)"
            )
        check_coords(coords)
        return lambda: cls(view, coords, max_crops, originals)

    def reset(self, sample_id: str = "", image=None, images=None, **row) -> None:
        """Start a rollout on the row's image (the original pixels of its sample when the factory knows it)."""
        self.sample_id, self.calls = str(sample_id or ""), []
        sample = self._originals.get(self.sample_id)
        if sample is not None:
            self.image = sample.load_image()
        else:
            main = image if image is not None else (images[0] if images else None)
            if main is None:
                raise ValueError(
                    f"CropEnvironment.reset: row {short(self.sample_id or '?')} has no image and its sample_id "
                    "is not among the factory's samples; pass the samples to CropEnvironment.factory"
                )
            self.image = main.convert("RGB")
        self.frame = Frame.of(self.image.size, self.view)
        return None

    def image_zoom_in_tool(self, bbox_2d: list) -> list | str:
        """Zoom in on a region of the image to see its details.

        Args:
            bbox_2d: The region [x1, y1, x2, y2] to zoom in on, in coordinates of the image as shown.
        """
        if self.frame is None:
            raise RuntimeError("CropEnvironment.image_zoom_in_tool called before reset (TRL calls reset first)")
        call = judge_box(bbox_2d, self.frame, self.view, self.coords)
        if not call.ok:
            text = note(call.message)
        elif sum(c.ok for c in self.calls) >= self.max_crops:
            text = note(f"at most {self.max_crops} crops per answer")
        else:
            crop = crop_and_zoom(self.image, call.box, self.view)
            self.calls.append(ToolCall(call, crop))
            return [{"type": "image", "image": crop.image}]
        self.calls.append(ToolCall(call, None, text))
        return text

    @property
    def crop_boxes(self) -> list[tuple[int, int, int, int]]:
        """Executed crops, inclusive original pixels (the frame of `Sample.regions`)."""
        return [c.crop.box_orig for c in self.calls if c.ok]

    @property
    def verdicts(self) -> list[str]:
        return [c.call.verdict.value if c.ok or c.call.verdict is not Verdict.OK else "over_budget" for c in self.calls]


# -- samples as TRL rows ---------------------------------------------------------------------------
def tool_instruction(coords: str = "absolute") -> str:
    """The instruction after each question: the tool replaces r3lab's inline crop call."""
    where = "in pixels of the image" if check_coords(coords) == "absolute" else f"in 0-{RELATIVE_SCALE} of its sides"
    return (
        f"Think in <think> </think>; to look closer, call {TOOL_NAME} with bbox_2d [x1, y1, x2, y2] {where}; "
        "answer in <answer> </answer>."
    )


def to_trl_rows(
    samples: Sequence,
    view: ViewConfig,
    system: str | None = None,
    coords: str = "absolute",
    instruction: str | None = None,
    images: bool = True,
) -> list[dict]:
    """r3lab samples as TRL GRPO rows: a conversational `prompt`, the main `image` already at its model-input
    size (so one image processor shows main image and crops at r3lab's sizes), `answers`, `gt_boxes`
    (original pixels), `question`, `family` and `sample_id`. `datasets.Dataset.from_list(rows)` takes them
    as they are; `trl_dataset` gives the same rows with each image made when its row is read."""
    rows = []
    instruction = tool_instruction(coords) if instruction is None else instruction
    for s in tqdm(samples, desc="TRL rows", unit="sample", leave=False, disable=progress_disabled()):
        s.check_text()
        msgs = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
        msgs.append(
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": f"{s.question}\n{instruction}"}]}
        )
        row = {
            "prompt": msgs,
            "answers": list(s.answers),
            "gt_boxes": [[float(v) for v in b] for b in s.regions],
            "question": s.question,
            "family": s.family,
            "sample_id": s.sample_id,
        }
        rows.append({**row, "image": _main_image(s, view)} if images else row)
    return rows


def trl_dataset(
    samples: Sequence,
    view: ViewConfig,
    system: str | None = None,
    coords: str = "absolute",
    instruction: str | None = None,
):
    """`to_trl_rows` as a `datasets.Dataset` whose main images are loaded (and resized) when a row is read,
    so a large dataset is never held in memory as pixels."""
    from datasets import Dataset

    by_id = {s.sample_id: s for s in samples}
    if len(by_id) != len(samples):
        raise ValueError("trl_dataset: the samples need distinct sample_id values (each row finds its image by it)")
    ds = Dataset.from_list(to_trl_rows(samples, view, system, coords, instruction, images=False))

    def with_images(batch: dict) -> dict:
        return {**batch, "image": [_main_image(by_id[i], view) for i in batch["sample_id"]]}

    ds.set_transform(with_images)
    return ds


def _main_image(sample, view: ViewConfig) -> Image.Image:
    image = sample.load_image()
    return image.resize(Frame.of(image.size, view).input_size, Image.BICUBIC)


def tool_processor(policy, chat_template: str | None = None):
    """The policy's processor with a tool-capable chat template (TRL's copy of Qwen3-VL's, which renders images
    in tool messages and which TRL's response parser knows) and its image processor's pixel bounds widened to
    hold both the main view and the crop budget, so neither is resized again (normalisation and patch sizes
    stay the checkpoint's own)."""
    import copy
    import dataclasses

    require_trl()
    from trl.chat_template_utils import qwen3_vl_chat_template

    v = policy.view
    proc = policy.processor()
    improc = copy.deepcopy(policy.image_processor)
    lo, hi = min(v.min_pixels, v.crop_min_pixels), max(v.max_pixels, v.crop_max_pixels)
    if dataclasses.is_dataclass(improc.size):
        improc.size = dataclasses.replace(improc.size, shortest_edge=lo, longest_edge=hi)
    else:
        improc.size = {"shortest_edge": lo, "longest_edge": hi}
    # TRL's tool loop splits the prompt's pixel fields with tensor ops; the PIL backend (the only one without
    # torchvision) returns numpy arrays unless told otherwise, and the loop fails on the first text-only reply
    improc.return_tensors = "pt"
    proc.image_processor = improc
    proc.chat_template = chat_template or qwen3_vl_chat_template
    return proc
