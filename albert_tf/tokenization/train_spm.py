"""Trains an ALBERT SentencePiece model with the original spm_train flags.

The original README trained its 30k vocab with:

  spm_train --vocab_size=30000 --pad_id=0 --unk_id=1 --eos_id=-1 --bos_id=-1
    --control_symbols=[CLS],[SEP],[MASK]
    --user_defined_symbols=(,),",-,.,–,£,€ --model_type=unigram
    --character_coverage=0.99995 --input_sentence_size=10000000
    --shuffle_input_sentence=true

which gives <pad>=0, <unk>=1, [CLS]=2, [SEP]=3, [MASK]=4 and the eight
user-defined symbols at 5..12. Those are the defaults here.

  python -m albert_tf.tokenization.train_spm --input=corpus/*.txt \
      --model_prefix=30k-clean

`--preprocess` (off by default, like spm_train) first runs each line through
`preprocess_text(lower=--do_lower_case)`, so the vocabulary sees the same
text the tokenizer will (the released English models are uncased).
"""

from __future__ import annotations

import glob
import os
from typing import Iterator, Sequence

from absl import app
from absl import flags
from absl import logging
import sentencepiece as spm

from albert_tf.tokenization import full_tokenizer
from albert_tf.tokenization import text as text_lib

CONTROL_SYMBOLS = ("[CLS]", "[SEP]", "[MASK]")
USER_DEFINED_SYMBOLS = ("(", ")", '"', "-", ".", "\u2013", "\u00a3",
                        "\u20ac")


def _csv(symbols: Sequence[str]) -> str:
    # SentencePiece parses these flags as CSV, so `"` must be quoted ("""").
    return ",".join('"' + s.replace('"', '""') + '"' if ('"' in s or "," in s)
                    else s for s in symbols)


def _expand(patterns: Sequence[str]) -> list[str]:
    files: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        if not matches:
            raise FileNotFoundError(f"--input pattern {pattern!r} matches "
                                    "no file")
        files.extend(matches)
    return files


def _preprocessed_lines(files: Sequence[str], lower: bool) -> Iterator[str]:
    for path in files:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = text_lib.preprocess_text(line, lower=lower)
                if line:
                    yield line


def train_spm(input_files: Sequence[str], model_prefix: str,
              vocab_size: int = 30000, model_type: str = "unigram",
              character_coverage: float = 0.99995,
              input_sentence_size: int = 10_000_000,
              shuffle_input_sentence: bool = True,
              preprocess: bool = False, do_lower_case: bool = True,
              hard_vocab_limit: bool = True, seed: int | None = 12345,
              num_threads: int | None = None) -> tuple[str, str]:
    """Trains `<model_prefix>.model` / `.vocab`; returns both paths.

    Both files are written under a temporary prefix and moved into place,
    so a failed run never leaves a half-written model. The special ids are
    checked before the move.
    """
    files = _expand(list(input_files))
    if seed is not None and hasattr(spm, "set_random_generator_seed"):
        spm.set_random_generator_seed(seed)  # Sentence sampling/shuffling.
    tmp_prefix = f"{model_prefix}.tmp{os.getpid()}"
    kwargs = dict(
        model_prefix=tmp_prefix, vocab_size=vocab_size,
        model_type=model_type, pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
        control_symbols=_csv(CONTROL_SYMBOLS),
        user_defined_symbols=_csv(USER_DEFINED_SYMBOLS),
        character_coverage=character_coverage,
        input_sentence_size=input_sentence_size,
        shuffle_input_sentence=shuffle_input_sentence,
        hard_vocab_limit=hard_vocab_limit,
        num_threads=num_threads or os.cpu_count() or 1,
        minloglevel=1)
    if preprocess:
        kwargs["sentence_iterator"] = _preprocessed_lines(files, do_lower_case)
    else:
        kwargs["input"] = ",".join(files)
    logging.info("Training SentencePiece (%s, vocab %d) on %d file(s)",
                 model_type, vocab_size, len(files))
    try:
        spm.SentencePieceTrainer.train(**kwargs)
        sp = spm.SentencePieceProcessor()
        sp.Load(f"{tmp_prefix}.model")
        full_tokenizer.check_spm_special_ids(sp, f"{tmp_prefix}.model")
        for ext in ("model", "vocab"):
            os.replace(f"{tmp_prefix}.{ext}", f"{model_prefix}.{ext}")
    finally:
        for ext in ("model", "vocab"):
            if os.path.exists(f"{tmp_prefix}.{ext}"):
                os.remove(f"{tmp_prefix}.{ext}")
    logging.info("Wrote %s.model and %s.vocab (%d pieces)", model_prefix,
                 model_prefix, sp.GetPieceSize())
    return f"{model_prefix}.model", f"{model_prefix}.vocab"


FLAGS = flags.FLAGS


def _define_flags() -> None:
    flags.DEFINE_string("input", None, "Text file(s): comma list or globs.")
    flags.DEFINE_string("model_prefix", None, "Writes <prefix>.model/.vocab.")
    flags.DEFINE_integer("vocab_size", 30000, "As the original spm_train.")
    flags.DEFINE_enum("model_type", "unigram",
                      ["unigram", "bpe", "char", "word"], "spm model type.")
    flags.DEFINE_float("character_coverage", 0.99995, "As the original.")
    flags.DEFINE_integer("input_sentence_size", 10_000_000, "As the original.")
    flags.DEFINE_bool("shuffle_input_sentence", True, "As the original.")
    flags.DEFINE_bool("preprocess", False,
                      "Run preprocess_text on each line before training.")
    flags.DEFINE_bool("do_lower_case", True, "Lowercase when --preprocess.")
    flags.DEFINE_bool("hard_vocab_limit", True,
                      "False lets small corpora give fewer pieces.")
    flags.DEFINE_integer("seed", 12345, "SentencePiece sampling seed.")
    flags.mark_flags_as_required(["input", "model_prefix"])


def main(argv: Sequence[str]) -> None:
    del argv  # Unused.
    train_spm(FLAGS.input.split(","), FLAGS.model_prefix,
              vocab_size=FLAGS.vocab_size, model_type=FLAGS.model_type,
              character_coverage=FLAGS.character_coverage,
              input_sentence_size=FLAGS.input_sentence_size,
              shuffle_input_sentence=FLAGS.shuffle_input_sentence,
              preprocess=FLAGS.preprocess, do_lower_case=FLAGS.do_lower_case,
              hard_vocab_limit=FLAGS.hard_vocab_limit, seed=FLAGS.seed)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
