"""Localisation probe: can a fresh r3-tiny learn *where* a named landmark is, and how fast?

    python research/probes/where_probe.py '{"steps": 2000, "world": {"object_min": 100, "object_max": 130}}'

`probe_where(cfg)` trains a fresh policy on one question ("Where is the red circle?") answered with
one target (the crop call the VLIR rationales write, or a variant of it), on fresh scenes of the
synthetic world every step, then measures where its greedy boxes land on held-out scenes with the
library's measurement (`r3lab.recipe.ground_check.evaluate_where`: the engine's greedy rollout,
the crop-call grammar). Every lever of research/FINDINGS.md's grounding section is a field; `where_sweep.py`
runs several side by side. The read items ("read": the mark's colour from its ground-truth crop) are
answered by transformers' own `generate`.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field

import torch

from r3lab.core.batch import collate
from r3lab.core.crop_calls import format_crop_call
from r3lab.core.prompt import PromptConfig
from r3lab.core.regions import Frame, ViewConfig
from r3lab.core.trajectory import ENV, MODEL, Piece, Trajectory
from r3lab.data.tasks import make_task
from r3lab.data.world import WorldConfig, region_input_box
from r3lab.engine.scoring import TokenScorer
from r3lab.model.tiny import TinyConfig, build_tiny
from r3lab.recipe.ground_check import WhereConfig, chance, evaluate_where, where_question
from r3lab.train.config import SFTConfig
from r3lab.train.optim import group_grad_norms, lr_factor, make_optimizer, set_lr

TARGETS = ("plain", "enum", "name")
TASKS = ("where", "read")


@dataclass
class ProbeConfig:
    """One localisation probe: world, target, model and training budget."""

    task: str = "where"  # where: box the named landmark | read: the colour of its mark, given its ground-truth crop
    steps: int = 1500
    batch_size: int = 16
    lr: float = 1e-3
    warmup: int = 50
    n_eval: int = 250
    eval_every: int = 0  # steps between evaluations (0: only at the end)
    seed: int = 0  # training scenes; evaluation uses seed + 10_000
    target: str = "plain"  # plain: the crop call | enum: list every object left to right, then the call
    snap: int = 0  # >0: boxes grown outwards to multiples of this many input pixels
    naming: float = 0.0  # share of training questions that name instead ("What colour is the circle?" -> red)
    exists: float = 0.0  # share of training questions "Is there a red object?" (yes / no: binding without a box)
    reading: float = 0.0  # share of training questions that read a ground-truth crop ("read" items; also evaluated)
    read_family: str = "read_one"  # what "read" items ask about the crop: read_one (mark colour) | count (dots)
    question: str = "Where is the {obj}?"
    world: dict = field(default_factory=dict)  # WorldConfig overrides
    warm_world: dict | None = None  # curriculum: WorldConfig overrides for the first warm_steps steps
    warm_steps: int = 0
    tiny: dict = field(default_factory=dict)  # TinyConfig overrides (patch_size 7 = the recipe's)
    view: dict = field(default_factory=dict)  # ViewConfig overrides (crop_max_pixels: the zoomed crop's budget)
    prompt: dict = field(default_factory=dict)  # PromptConfig overrides (question_first)
    autocast: bool = False  # bfloat16 autocast for the training forward (CPUs with avx512_bf16 / GPUs)
    device: str = "cpu"
    workers: int = 0  # data-loader processes that build the training batches
    time_limit: float = 0.0  # seconds of training (0: none); evaluation follows
    out: str = ""  # JSON log path
    save: str = ""  # folder to save the trained policy into (e.g. to start an SFT from it)

    def world_config(self, step: int | None = None) -> WorldConfig:
        if step is not None and step < self.warm_steps and self.warm_world is not None:
            return WorldConfig(**self.warm_world)
        return WorldConfig(**self.world)


def snap_box(box, step: int, w: int, h: int) -> tuple[int, int, int, int]:
    """Grow a box outwards to multiples of `step` (the merged-token grid when step = patch * merge)."""
    x1, y1, x2, y2 = box
    return (
        int(x1 // step * step),
        int(y1 // step * step),
        min(w, int(-(-x2 // step) * step)),
        min(h, int(-(-y2 // step) * step)),
    )


def where_item(cfg: ProbeConfig, seed: int, i: int, view, step: int | None = None) -> dict:
    """Scene i of `seed`, one landmark named at random, and its target text."""
    world = cfg.world_config(step)
    sc = make_task("read_one", seed, i, world=world).scene
    k = random.Random(f"where:{seed}:{i}").randrange(len(sc.landmarks))
    frame = Frame.of(sc.size, view)
    boxes = [region_input_box(sc.region(j), frame) for j in range(len(sc.landmarks))]
    if cfg.snap:
        boxes = [snap_box(b, cfg.snap, frame.input_w, frame.input_h) for b in boxes]
    lm = sc.landmarks[k]
    call = format_crop_call(boxes[k])
    if cfg.target == "plain":
        text = call
    elif cfg.target == "enum":
        order = sorted(range(len(boxes)), key=lambda j: (boxes[j][0], boxes[j][1]))
        seen = ", ".join(f"the {sc.landmarks[j].name} at [{', '.join(str(v) for v in boxes[j])}]" for j in order)
        text = f"I see {seen}. The {lm.name}: {call}"
    elif cfg.target == "name":  # the rationale's own opening, then the call
        text = f"Let me zoom in on the {lm.name}. {call}"
    else:
        raise ValueError(f"target must be one of {TARGETS}, got {cfg.target!r}")
    return dict(
        scene=sc,
        k=k,
        frame=frame,
        box=boxes[k],
        question=cfg.question.format(obj=lm.name, colour=lm.colour),
        target=text + "<|im_end|>",
    )


def read_item(cfg: ProbeConfig, seed: int, i: int, view, step: int | None = None) -> dict:
    """A read_one (or count) question whose ground-truth crop is already in the context (the call is the
    environment's)."""
    if cfg.read_family not in ("read_one", "count"):
        raise ValueError(f"read_family must be 'read_one' or 'count', got {cfg.read_family!r}")
    task = make_task(cfg.read_family, seed, i, world=cfg.world_config(step))
    frame = Frame.of(task.scene.size, view)
    box = region_input_box(task.regions[0], frame)
    lead = f"<think>Let me zoom in on the {task.scene.landmarks[task.asked].name}. {format_crop_call(box)}"
    return dict(
        scene=task.scene,
        k=task.asked,
        frame=frame,
        box=box,
        question=task.question,
        lead=lead,
        answers=task.answers,
        target=task.answers[0] + "<|im_end|>",
    )


def read_metrics(items, texts) -> dict:
    """% of answers equal to the mark's colour (the text before <|im_end|>)."""
    right = sum(t.split("<|im_end|>")[0].strip() in it["answers"] for it, t in zip(items, texts))
    return {"read_acc": round(100 * right / len(items), 1)}


def exists_item(cfg: ProbeConfig, seed: int, i: int) -> dict:
    """'Is there a <colour> object?': half the time a colour of the scene, half one it lacks."""
    world = cfg.world_config()
    sc = make_task("read_one", seed, i, world=world).scene
    rng = random.Random(f"exists:{seed}:{i}")
    present = [lm.colour for lm in sc.landmarks]
    yes = rng.random() < 0.5
    colour = rng.choice(present) if yes else rng.choice([c for c in world.object_colours if c not in present])
    article = "an" if colour[0] in "aeiou" else "a"
    return dict(
        scene=sc, question=f"Is there {article} {colour} object?", target=("yes" if yes else "no") + "<|im_end|>"
    )


def naming_item(cfg: ProbeConfig, seed: int, i: int) -> dict:
    """A control question of the same world: the colour of a named shape, or the shape of a named colour."""
    task = make_task("control", seed, i, world=cfg.world_config())
    return dict(scene=task.scene, question=task.question, target=task.answers[0] + "<|im_end|>")


def _traj(item, policy, target=True) -> Trajectory:
    t = Trajectory.start(item["scene"].render(), item["question"], policy.view, policy.prompt)
    if "lead" in item:  # read probe: the call is part of the context, then its crop
        t.pieces.append(Piece(ENV, item["lead"], tag="prompt"))
        t.add_crop(item["box"], policy.view)
    if target:
        t.pieces.append(Piece(MODEL, item["target"], tag="reasoning"))
    return t


@torch.no_grad()
def generate_text(policy, items, max_new_tokens: int, batch: int = 50) -> list[str]:
    """Greedy completions of the items' prompts (transformers' own generate, left-padded)."""
    out = []
    model = policy.model
    for s in range(0, len(items), batch):
        trajs = [_traj(it, policy, target=False) for it in items[s : s + batch]]
        b = collate(trajs, policy, left_pad=True)
        ids = b["input_ids"]
        gen = model.generate(
            input_ids=ids,
            attention_mask=b["attention_mask"],
            mm_token_type_ids=(ids == policy.image_token_id).int(),
            pixel_values=b["pixel_values"],
            image_grid_thw=b["image_grid_thw"],
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=policy.eos_id,
            pad_token_id=policy.pad_id,
        )
        out += [
            policy.decode([t for t in row.tolist() if t != policy.pad_id]) for row in gen[:, b["input_ids"].shape[1] :]
        ]
    return out


def item_of(cfg: ProbeConfig):
    if cfg.task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {cfg.task!r}")
    return where_item if cfg.task == "where" else read_item


def where_eval(cfg: ProbeConfig, pol) -> dict:
    """The library's measurement of where the probe's greedy boxes land (the probe's world, held-out seed)."""
    return evaluate_where(pol, WhereConfig(n=cfg.n_eval, seed=cfg.seed + 10_000, world=cfg.world))


class _Batches(torch.utils.data.Dataset):
    """Training batch `step` (fresh scenes), collated on the CPU; a worker builds its own CPU policy."""

    def __init__(self, cfg: ProbeConfig, steps: int):
        self.cfg, self.steps, self.pol = cfg, steps, None

    def __len__(self):
        return self.steps

    def __getitem__(self, step):
        if self.pol is None:
            self.pol = build_policy(dataclasses.replace(self.cfg, device="cpu"))
        cfg, pol = self.cfg, self.pol
        return collate([_traj(mixed_item(cfg, step, j, pol.view), pol) for j in range(cfg.batch_size)], pol)


def mixed_item(cfg: ProbeConfig, step: int, j: int, view) -> dict:
    """Training question j of `step`: naming, reading or existence by their shares, else the probe's own task."""
    u = random.Random(f"naming:{cfg.seed}:{step}:{j}").random()
    i = step * cfg.batch_size + j
    if u < cfg.naming:
        return naming_item(cfg, cfg.seed, i)
    if u < cfg.naming + cfg.reading:
        return read_item(cfg, cfg.seed + 7, i, view, step)  # other scenes than the where questions'
    if u < cfg.naming + cfg.reading + cfg.exists:
        return exists_item(cfg, cfg.seed + 11, i)
    return item_of(cfg)(cfg, cfg.seed, i, view, step)


def build_policy(cfg: ProbeConfig):
    tiny = TinyConfig(**{"patch_size": 7, **cfg.tiny})
    pol = build_tiny(tiny, view=ViewConfig(**cfg.view), prompt=PromptConfig(**cfg.prompt))
    pol.model.to(cfg.device)
    return pol


def probe_where(cfg: ProbeConfig, log=print) -> dict:
    """Train a fresh policy on the probe's question for cfg.steps steps; return the log with evaluations."""
    if cfg.target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {cfg.target!r}")
    shares = {k: getattr(cfg, k) for k in ("naming", "exists", "reading")}
    if any(not 0 <= v <= 1 for v in shares.values()) or sum(shares.values()) > 1:
        raise ValueError(f"ProbeConfig shares {shares} must each be in [0, 1] and sum to at most 1")
    torch.manual_seed(cfg.seed)
    pol = build_policy(cfg)
    model = pol.model
    scfg = SFTConfig(
        steps=cfg.steps, batch_size=cfg.batch_size, lr_lm=cfg.lr, lr_merger=cfg.lr, lr_vision=cfg.lr, warmup=cfg.warmup
    )
    opt = make_optimizer(model, scfg)
    scorer = TokenScorer(model)
    eval_items = [item_of(cfg)(cfg, cfg.seed + 10_000, i, pol.view) for i in range(cfg.n_eval)]
    where_items = [where_question(cfg.world_config(), cfg.seed + 10_000, i, pol.view) for i in range(cfg.n_eval)]
    mixed_reads = cfg.task == "where" and cfg.reading > 0  # then reading is measured too
    read_eval = [read_item(cfg, cfg.seed + 10_000, i, pol.view) for i in range(cfg.n_eval)] if mixed_reads else []
    max_new = max(len(pol.encode(it["target"])) for it in eval_items[:50]) + 8
    rec = {
        "config": asdict(cfg),
        "params": sum(p.numel() for p in model.parameters()),
        "chance": chance(where_items) if cfg.task == "where" else {},
        "rows": [],
        "evals": [],
    }
    log(json.dumps({k: rec[k] for k in ("config", "params", "chance")}))

    def evaluate(step, t_train):
        model.eval()
        t0 = time.perf_counter()
        if cfg.task == "where":
            found, texts = where_eval(cfg, pol), []
        else:
            texts = generate_text(pol, eval_items, max_new)
            found = read_metrics(eval_items, texts)
        reads = read_metrics(read_eval, generate_text(pol, read_eval, 8)) if read_eval else {}
        ev = {
            "step": step,
            **found,
            **reads,
            "eval_s": round(time.perf_counter() - t0, 1),
            "train_s": round(t_train, 1),
            "examples": texts[:3],
        }
        rec["evals"].append(ev)
        log("EVAL " + json.dumps(ev))
        model.train()
        if cfg.out:
            with open(cfg.out, "w") as f:
                json.dump(rec, f, indent=1)

    model.train()
    t_train, t_start, step = 0.0, time.perf_counter(), 0
    loader = torch.utils.data.DataLoader(
        _Batches(cfg, cfg.steps),
        batch_size=None,
        num_workers=cfg.workers,
        prefetch_factor=4 if cfg.workers else None,
        persistent_workers=False,
    )
    t0 = time.perf_counter()
    for step, batch in enumerate(loader, start=1):
        batch = {k: v.to(cfg.device) for k, v in batch.items()}
        set_lr(opt, lr_factor(step - 1, cfg.steps, cfg.warmup, "cosine", 0.1))
        with torch.autocast(torch.device(cfg.device).type, dtype=torch.bfloat16, enabled=cfg.autocast):
            lp = scorer(
                batch["input_ids"],
                batch["attention_mask"],
                batch["position_ids"],
                batch["loss_mask"],
                batch["pixel_values"],
                batch["image_grid_thw"],
            )
            loss = -(lp * batch["loss_mask"]).sum() / batch["loss_mask"].sum()
        loss_value = float(loss.detach())
        loss.backward()
        norms = group_grad_norms(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t_train += time.perf_counter() - t0
        t0 = time.perf_counter()
        if step % 50 == 0 or step == 1:
            row = {
                "step": step,
                "loss": round(loss_value, 4),
                "s_per_step": round(t_train / step, 3),
                **{k: round(v, 4) for k, v in norms.items()},
            }
            rec["rows"].append(row)
            log(json.dumps(row))
        out_of_time = cfg.time_limit and time.perf_counter() - t_start > cfg.time_limit
        if (cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps) or step == cfg.steps or out_of_time:
            evaluate(step, t_train)
            t0 = time.perf_counter()
        if out_of_time:
            log(f"TIME LIMIT at step {step}")
            break
    model.eval()
    rec["policy"] = pol
    if cfg.save:
        pol.save(cfg.save)
    return rec


if __name__ == "__main__":  # python research/probes/where_probe.py '{"steps": 2000, ...}' (ProbeConfig fields as JSON)
    rec = probe_where(ProbeConfig(**json.loads(sys.argv[1] if len(sys.argv) > 1 else "{}")))
    print(json.dumps({k: v for k, v in rec["evals"][-1].items() if k != "examples"}))
