"""Per-family rules: how an image becomes tokens and pixels, where positions come from, how a turn ends.

Qwen2-VL / Qwen2.5-VL / Qwen3-VL / Qwen3.5 (`QwenRules`): an image is one run of merged patches between
`<|vision_start|>` and `<|vision_end|>`; 3-D M-RoPE positions (`r3lab.core.rope.mrope_positions`); pixel
patches with (t, h, w) grids; the view's factor is patch x merge; turns end with `<|im_end|>`.

Idefics3 / SmolVLM (`SmolRules`): the view's factor is the vision tower's tile side S (its image_size).
An image at a model-input size of rows x cols tiles is fed as its tiles plus the whole image shrunk to one
tile (the global view; a one-tile image is the global view alone), each tile k x k pixel-shuffled tokens
(k = S / patch / scale_factor), written as `Idefics3Processor.replace_image_token` writes them:
`<fake_token_around_image><row_i_col_j><image>*k^2 ...` a newline after each row of tiles, then
`\\n<fake_token_around_image><global-img><image>*k^2<fake_token_around_image>`. Its grid is (1, rows, cols).
Positions are 1-D (Llama's RoPE): a chunk appended to the KV cache simply continues at the next position.
Its chat (SmolVLM's template) ends a turn with `<end_of_utterance>`; r3lab's texts write the end of a turn
`<|im_end|>` (the Qwen spelling), which `encode` / `decode` translate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..core.rope import mrope_positions, text_positions

if TYPE_CHECKING:
    from PIL import Image

IDEFICS = ("idefics3", "smolvlm")
IM_END = "<|im_end|>"
END_OF_UTTERANCE = "<end_of_utterance>"
MAX_TILES = 6  # the <row_i_col_j> tokens SmolVLM's tokenizer has, per side


def rules_for(model_type: str) -> "QwenRules | SmolRules":
    return SmolRules() if model_type in IDEFICS else QwenRules()


class QwenRules:
    """Qwen2-VL / Qwen2.5-VL / Qwen3-VL / Qwen3.5."""

    chat = "chatml"
    position_dims = 3

    def geometry(self, config) -> tuple[int, int]:
        vc = config.vision_config
        return int(vc.patch_size), int(vc.spatial_merge_size)

    def markers(self, policy) -> tuple[int, int]:
        c = policy.model.config
        return int(c.vision_start_token_id), int(c.vision_end_token_id)

    def end_token(self) -> str:
        return IM_END

    def image_ids(self, policy, grid) -> list[int]:
        t, h, w = (int(v) for v in grid)
        n = t * h * w // policy.merge_size**2
        return [policy.vision_start_id] + [policy.image_token_id] * n + [policy.vision_end_id]

    def encode_images(self, policy, images: "list[Image.Image]") -> tuple[torch.Tensor, torch.Tensor]:
        area = [im.width * im.height for im in images]
        # bounds equal to the exact areas make the processor's own smart-resize an identity
        out = policy.image_processor(
            images=[im.convert("RGB") for im in images],
            size={"shortest_edge": min(area), "longest_edge": max(area)},
            return_tensors="pt",
        )
        return out["pixel_values"].to(policy.model.dtype), out["image_grid_thw"]

    def vision_inputs(self, pixel_values: torch.Tensor, grids, device) -> dict:
        flat = [tuple(int(v) for v in g) for g in grids]
        return {"pixel_values": pixel_values.to(device), "image_grid_thw": torch.tensor(flat, device=device)}

    def positions(self, policy, ids, grids, start: int = 0) -> tuple[torch.Tensor, int]:
        return mrope_positions(ids, grids, policy.image_token_id, policy.merge_size, start=start)

    def image_cells(self, policy, grid) -> tuple[torch.Tensor, tuple[int, int]]:
        """(cells x image tokens) map from an image's tokens to its finest cell grid, and that grid."""
        t, h, w = (int(v) for v in grid)
        n = t * h * w // policy.merge_size**2
        return torch.eye(n), (h // policy.merge_size, w // policy.merge_size)


class SmolRules:
    """Idefics3 / SmolVLM: tiles plus a global view, 1-D positions."""

    chat = "smolvlm"
    position_dims = 1

    def geometry(self, config) -> tuple[int, int]:
        return int(config.vision_config.image_size), 1  # the tile side is the view's factor; no merge

    def markers(self, policy) -> tuple[int, int]:
        fake = int(policy.tokenizer.convert_tokens_to_ids("<fake_token_around_image>"))
        return fake, fake

    def end_token(self) -> str:
        return END_OF_UTTERANCE

    def tile_tokens(self, policy) -> int:
        c = policy.model.config
        side = int(c.vision_config.image_size) // int(c.vision_config.patch_size) // int(c.scale_factor)
        return side * side

    def image_ids(self, policy, grid) -> list[int]:
        _, rows, cols = (int(v) for v in grid)
        if rows > MAX_TILES or cols > MAX_TILES:
            raise ValueError(
                f"an image of {rows} x {cols} tiles: SmolVLM's tokenizer names at most {MAX_TILES} x "
                f"{MAX_TILES} (<row_i_col_j>); lower ViewConfig.max_pixels / crop_max_pixels"
            )
        tok = policy.tokenizer
        fake, glob = policy.vision_start_id, int(tok.convert_tokens_to_ids("<global-img>"))
        img = [policy.image_token_id] * self.tile_tokens(policy)
        if rows * cols == 1:
            return [fake, glob] + img + [fake]
        newline = policy.encode("\n")
        out: list[int] = []
        for r in range(rows):
            for c in range(cols):
                out += [fake, int(tok.convert_tokens_to_ids(f"<row_{r + 1}_col_{c + 1}>"))] + img
            out += newline
        return out + newline + [fake, glob] + img + [fake]

    def encode_images(self, policy, images: "list[Image.Image]") -> tuple[torch.Tensor, torch.Tensor]:
        """Every image's tiles then its global view, flat (tiles, 3, S, S), and (1, rows, cols) grids."""
        S = policy.patch_size
        pvs, grids = [], []
        for im in images:
            rows, cols = im.height // S, im.width // S
            out = policy.image_processor(
                images=[[im.convert("RGB")]],
                return_tensors="pt",
                do_image_splitting=True,
                size={"longest_edge": max(im.width, im.height)},
                max_image_size={"longest_edge": S},
            )
            pv = out["pixel_values"][0]
            want = 1 if rows * cols == 1 else rows * cols + 1
            if pv.shape[0] != want:
                raise RuntimeError(
                    f"the Idefics3 image processor split a {im.width}x{im.height} image into "
                    f"{pv.shape[0]} tiles, expected {want}"
                )
            pvs.append(pv)
            grids.append((1, rows, cols))
        return torch.cat(pvs).to(policy.model.dtype), torch.tensor(grids)

    def vision_inputs(self, pixel_values: torch.Tensor, grids, device) -> dict:
        # one (1, tiles, 3, S, S) batch: the model flattens it and scatters the features over the image tokens
        # of all rows in order, so the tiles of every row's images go in the order their tokens appear
        return {"pixel_values": pixel_values.to(device)[None]}

    def positions(self, policy, ids, grids, start: int = 0) -> tuple[torch.Tensor, int]:
        return text_positions(ids, start)

    def image_cells(self, policy, grid) -> tuple[torch.Tensor, tuple[int, int]]:
        """(cells x image tokens): each tile's k x k tokens to their cells of the (rows k) x (cols k) grid; each
        global-view token spreads its attention evenly over the rows x cols cells it covers."""
        _, rows, cols = (int(v) for v in grid)
        k2 = self.tile_tokens(policy)
        k = int(round(k2**0.5))
        H, W = rows * k, cols * k
        tiles = 0 if rows * cols == 1 else rows * cols
        m = torch.zeros(H * W, (tiles + 1) * k2)
        for t in range(tiles):
            r, c = divmod(t, cols)
            for i in range(k2):
                y, x = divmod(i, k)
                m[(r * k + y) * W + c * k + x, t * k2 + i] = 1.0
        for i in range(k2):  # the global view: token (y, x) covers rows x cols cells
            y, x = divmod(i, k)
            for dy in range(rows):
                for dx in range(cols):
                    m[(y * rows + dy) * W + x * cols + dx, tiles * k2 + i] = 1.0 / (rows * cols)
        return m, (H, W)


def translate_end(text: str, end: str) -> str:
    """r3lab's spelling of the end of a turn (`<|im_end|>`) in a family's own token."""
    return text if end == IM_END else text.replace(IM_END, end)
