"""Strict weight loading: a checkpoint's tensors must cover the model its config.json describes, exactly.

transformers fills a tensor the files lack with fresh random values and only logs it, so a checkpoint missing
a layer (or a config.json asking for one more) would load as a partly random model. Here the safetensors
headers are checked against the config before any weight is allocated: first its sizes against bounds no real
model reaches (`check_config_sizes`) and the layer count of every stack (so an edited `num_hidden_layers: 100000`
is refused at once), then every name and shape against the model built on the meta device (no memory), and
`strict_from_pretrained` refuses what transformers reports missing, unexpected or mis-shaped after loading.
Every refusal names the folder and the tensors.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import torch

from ..core.settings import short

RECOPY = "copy the checkpoint folder again, or save it anew where it was made"
_STACK = re.compile(r"^(.*?)\.(layers|blocks)\.(\d+)\.")


def read_json(path: str | os.PathLike) -> dict:
    """A checkpoint's JSON file as a dict; ValueError naming the file when it is damaged."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path} is damaged: not valid JSON ({e}); {RECOPY}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is damaged: it holds a JSON {type(data).__name__}, not an object; {RECOPY}")
    return data


def read_header(folder: str | os.PathLike, pattern: str = "*.safetensors") -> dict[str, tuple[int, ...]]:
    """{tensor name: shape} over the *.safetensors of `folder` (those `pattern` matches), read from the headers only;
    a damaged or truncated file is a ValueError naming it
    (safetensors checks that its header covers the whole file)."""
    from safetensors import SafetensorError, safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for f in sorted(Path(folder).glob(pattern)):
        try:
            with safe_open(str(f), framework="pt") as handle:
                for k in handle.keys():
                    shapes[k] = tuple(handle.get_slice(k).get_shape())
        except (SafetensorError, OSError) as e:
            raise ValueError(f"{f} is damaged or truncated ({e}); {RECOPY}") from None
    return shapes


# sizes far beyond any published model's (the largest hold ~130 layers, hidden sizes of ~16k, vocabularies of
# ~260k): a config.json past them is damaged or edited, and building its model, even on the meta device where
# nothing is allocated, would create every layer one by one and not end.
SIZE_BOUNDS = {
    "num_hidden_layers": 1024,
    "depth": 1024,
    "hidden_size": 1 << 17,
    "out_hidden_size": 1 << 17,
    "intermediate_size": 1 << 20,
    "vocab_size": 1 << 24,
    "num_attention_heads": 1024,
    "num_key_value_heads": 1024,
    "num_heads": 1024,
    "head_dim": 1 << 14,
}


def check_config_sizes(config: dict, path: str | os.PathLike) -> None:
    """ValueError naming `path` (a config.json) and the field when a size it claims is not a whole number from 1
    to its bound in SIZE_BOUNDS (the model's own, its text_config's and its vision_config's): before anything
    is built or counted from it."""
    parts = [("", config)] + [
        (f"{k}.", config[k]) for k in ("text_config", "vision_config") if isinstance(config.get(k), dict)
    ]
    for prefix, part in parts:
        for key, bound in SIZE_BOUNDS.items():
            value = part.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= bound:
                raise ValueError(
                    f"{path}: {prefix}{key} = {short(value)} is not a size r3lab builds: expected a whole "
                    f"number from 1 to {bound:,} (far beyond any published model). The file is damaged "
                    f"or was edited; {RECOPY}"
                )


def _layer_counts(config: dict) -> dict[str, tuple[str, int]]:
    """{"text" / "vision": (the config field, its layer count)} for the fields the supported families use."""
    out = {}
    text = config.get("text_config") or config
    if isinstance(text.get("num_hidden_layers"), int):
        out["text"] = (
            "text_config.num_hidden_layers" if "text_config" in config else "num_hidden_layers",
            text["num_hidden_layers"],
        )
    vision = config.get("vision_config") or {}
    for name in ("depth", "num_hidden_layers"):
        if isinstance(vision.get(name), int):
            out["vision"] = (f"vision_config.{name}", vision[name])
            break
    return out


def _refuse(folder: Path, what: str, missing=(), unexpected=(), mismatched=()) -> None:
    parts = [
        f"{len(v)} {label} ({', '.join(map(str, v[:5]))}{', ...' if len(v) > 5 else ''})"
        for label, v in (("missing", list(missing)), ("unexpected", list(unexpected)), ("mis-shaped", list(mismatched)))
        if v
    ]
    raise ValueError(
        f"{folder}: its weights do not cover the model its config.json describes ({what}): "
        f"{'; '.join(parts) or 'see above'}. The checkpoint is incomplete, or config.json was edited "
        f"to another size; {RECOPY}"
    )


def check_layer_counts(folder: Path, config: dict, shapes: dict) -> None:
    """Every stack of layers in the files has exactly the layers config.json asks for (before anything is built)."""
    stacks: dict[str, set[int]] = {}
    for k in shapes:
        if m := _STACK.match(k):
            stacks.setdefault(f"{m[1]}.{m[2]}", set()).add(int(m[3]))
    for kind, (field, want) in _layer_counts(config).items():
        mine = {p: ix for p, ix in stacks.items() if ("vis" in p) == (kind == "vision")}
        if not mine:
            continue
        prefix, have = max(mine.items(), key=lambda kv: len(kv[1]))
        if have == set(range(want)):
            continue
        lost = sorted(set(range(want)) - have)
        extra = sorted(have - set(range(want)))
        _refuse(
            folder,
            f"config.json's {field} = {want}, the files hold {len(have)} under {prefix}",
            missing=[f"{prefix}.{i}.*" for i in lost],
            unexpected=[f"{prefix}.{i}.*" for i in extra],
        )


def check_coverage(folder: str | os.PathLike, model_class=None) -> None:
    """ValueError naming `folder` and the tensors when its safetensors do not cover the model `model_class`
    (by default the class config.json names) builds from its config.json: missing, unexpected or mis-shaped."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    folder = Path(folder)
    config = read_json(folder / "config.json")
    check_config_sizes(config, folder / "config.json")
    shapes = read_header(folder, "model*.safetensors")  # the model's own (optimizer/adapter tensors are not)
    check_layer_counts(folder, config, shapes)
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (ValueError, TypeError, KeyError) as e:  # transformers' own checks of the config (layer_types, ...)
        raise ValueError(f"{folder / 'config.json'} is not a valid configuration ({e}); {RECOPY}") from None
    with torch.device("meta"):  # names and shapes only: nothing is allocated
        model = (
            model_class._from_config(config)
            if model_class is not None
            else AutoModelForImageTextToText.from_config(config)
        )
    aliases: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):  # tied weights: one tensor, several names
        aliases.setdefault(id(p), []).append(name)
    want = {n: tuple(p.shape) for n, p in model.named_parameters(remove_duplicate=False)}
    buffers = {n: tuple(b.shape) for n, b in model.state_dict().items() if n not in want}
    renamed = _renamed(model, list(shapes))
    if renamed is None:  # this transformers renames differently: compare the sizes, the load checks the names
        have, need = sum(math.prod(s) for s in shapes.values()), sum(p.numel() for p in model.parameters())
        if have != need:
            _refuse(folder, f"the files hold {have:,} weights, config.json describes {need:,}")
        return
    got = {renamed[k]: (k, s) for k, s in shapes.items()}
    missing = [names[0] for names in aliases.values() if not any(n in got for n in names)]
    unexpected = [k for new, (k, _) in got.items() if new not in want and new not in buffers]
    mismatched = [
        f"{k} {list(s)} (the model's {list(want.get(new, buffers.get(new)))})"
        for new, (k, s) in got.items()
        if new in want and want[new] != s or new in buffers and buffers[new] != s
    ]
    if missing or unexpected or mismatched:
        _refuse(folder, "checked against the safetensors headers", missing, unexpected, mismatched)


def _renamed(model, keys: list[str]) -> dict[str, str] | None:
    """Each checkpoint key under the name transformers loads it as (its own renaming rules), or None where a rule
    fuses tensors or this transformers has none of these helpers."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key
    except ImportError:
        return None
    mapping = get_model_conversion_mapping(model)
    renamings = [m for m in mapping if isinstance(m, WeightRenaming)]
    converters = [m for m in mapping if isinstance(m, WeightConverter)]
    meta_sd = model.state_dict()
    out = {}
    for k in keys:
        new, pattern = rename_source_key(k, renamings, converters, model.base_model_prefix, meta_sd)
        if pattern is not None:
            return None
        out[k] = k if new not in meta_sd and k in meta_sd else new
    return out


def strict_from_pretrained(
    model_class, folder: str | os.PathLike, quantized: bool = False, checked: bool = False, **kwargs
):
    """`model_class.from_pretrained(folder, ...)` from safetensors only, refused (ValueError naming the folder and
    the tensors) when the files leave a tensor to random initialisation, hold one the model lacks or mis-shape one.
    A `quantized` load is checked against the headers only (its quantisation state is no checkpoint tensor);
    `checked`: `check_coverage` has already run."""
    if not checked:
        check_coverage(folder, None if model_class.__name__.startswith("Auto") else model_class)
    model, info = model_class.from_pretrained(
        folder, local_files_only=True, use_safetensors=True, output_loading_info=True, **kwargs
    )
    if quantized:
        return model
    tied = tied_keys(model)
    missing = [k for k in info.get("missing_keys", ()) if k not in tied]
    mismatched = [str(m) for m in info.get("mismatched_keys", ())]
    if missing or info.get("unexpected_keys") or mismatched:
        _refuse(
            Path(folder),
            "reported by transformers' loader",
            sorted(missing),
            sorted(info.get("unexpected_keys") or ()),
            mismatched,
        )
    return model


def tied_keys(model) -> set[str]:
    """The names of tensors tied to another (the output head to the embeddings): never in a checkpoint's files."""
    keys = getattr(model, "_tied_weights_keys", None) or []
    if isinstance(keys, dict):
        keys = list(keys)
    return set(keys) | {"lm_head.weight"}
