"""How alike are the answer words in a checkpoint's (tied) embedding matrix?

    python research/probes/word_similarity.py CHECKPOINT [CHECKPOINT ...]

Mean and largest cosine between the input embeddings of the grating's five pattern words and of six colour
words (with and without a leading space, each one token), per checkpoint. Prints JSON.
"""

import json
import sys

import torch

import r3lab


def main() -> None:
    WORDS = {
        "pattern": ["horizontal", "vertical", "rising", "falling", "checked"],
        "colour": ["red", "green", "blue", "yellow", "black", "white"],
    }

    out = {}
    for path in sys.argv[1:]:
        pol = r3lab.load_policy(path)
        emb = pol.model.get_input_embeddings().weight.detach().float()
        row = {}
        for kind, words in WORDS.items():
            for lead in ("", " "):
                ids = [pol.encode(lead + w) for w in words]
                if any(len(i) != 1 for i in ids):
                    continue  # a word of several tokens has no one embedding
                x = torch.nn.functional.normalize(emb[[i[0] for i in ids]], dim=-1)
                off = (x @ x.T)[~torch.eye(len(ids), dtype=torch.bool)]
                row[f"{kind}{'_space' if lead else ''}"] = {
                    "mean_cos": round(float(off.mean()), 3),
                    "max_cos": round(float(off.max()), 3),
                }
        out[path] = row
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
