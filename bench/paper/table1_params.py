"""Paper Table 1 in miniature: parameters of ALBERT and BERT, exact.

ALBERT base/large/xlarge/xxlarge are the released v2 configs
(configs/albert_*_v2.json). Their BERT counterparts are the same configs
without the two ALBERT ideas: no cross-layer sharing (num_hidden_groups =
num_hidden_layers) and no embedding factorization (embedding_size =
hidden_size), with BERT's own head counts. Counts come from
AlbertConfig.num_parameters, which equals Keras's count_params of the built
model (tests/test_encoder.py), so BERT-xlarge (1.27B weights) need not be
allocated. "encoder" is embeddings + transformer + pooler, what the paper
counts; "+heads" adds the MLM and sentence-order heads.

  python3 bench/paper/table1_params.py

Writes bench/results/paper/params.json and prints the table (markdown).
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from albert_tf.config import AlbertConfig  # noqa: E402

# The paper's Table 1 (rounded, in millions).
PAPER = {"BERT-base": 108, "BERT-large": 334, "BERT-xlarge": 1270,
         "ALBERT-base": 12, "ALBERT-large": 18, "ALBERT-xlarge": 60,
         "ALBERT-xxlarge": 235}
# BERT's heads (H / 64); ALBERT-xlarge v2 ships 16 heads of 128, which
# does not change the count.
BERT_HEADS = {"base": 12, "large": 16, "xlarge": 32}


def bert(config: AlbertConfig, heads: int) -> AlbertConfig:
    """The same L, H, I without sharing and with E = H."""
    return config.replace(num_hidden_groups=config.num_hidden_layers,
                          embedding_size=config.hidden_size,
                          num_attention_heads=heads)


def table() -> list[dict]:
    rows = []
    for size in ("base", "large", "xlarge", "xxlarge"):
        albert = AlbertConfig.from_json_file(
            os.path.join(ROOT, "configs", f"albert_{size}_v2.json"))
        models = [(f"ALBERT-{size}", albert, True)]
        if size in BERT_HEADS:
            models.insert(0, (f"BERT-{size}", bert(albert, BERT_HEADS[size]),
                              False))
        for name, config, shared in models:
            rows.append({
                "model": name, "L": config.num_hidden_layers,
                "H": config.hidden_size, "E": config.embedding_size,
                "shared": shared,
                "encoder_parameters": config.num_parameters(),
                "with_pretraining_heads": config.num_parameters(True),
                "paper_millions": PAPER[name]})
    return rows


def main() -> None:
    rows = table()
    large = {r["model"]: r["encoder_parameters"] for r in rows}
    for row in rows:
        row["fraction_of_bert_large"] = (row["encoder_parameters"]
                                         / large["BERT-large"])
    out = os.path.join(ROOT, "bench", "results", "paper")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "params.json")
    with open(path + ".tmp", "w") as f:
        json.dump({"rows": rows}, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)
    lines = ["| model | L | H | E | shared | parameters (exact) | "
             "+ pretraining heads | paper | vs BERT-large |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['L']} | {r['H']} | {r['E']} | "
            f"{'yes' if r['shared'] else 'no'} | "
            f"{r['encoder_parameters']:,} | {r['with_pretraining_heads']:,} "
            f"| {r['paper_millions']}M | "
            f"{r['fraction_of_bert_large']:.3f} |")
    sys.stdout.write("\n".join(lines) + f"\n\nwrote {path}\n")


if __name__ == "__main__":
    main()
