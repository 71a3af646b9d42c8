"""CoNLL-format token classification data: reading, features, tf.data.

The format of CoNLL-2002/2003 (and WNUT, and most NER/POS releases): one
token per line, columns separated by whitespace, the word in the first
column and the tag in `label_column` (default the last); a blank line ends
a sentence; `-DOCSTART-` lines (document breaks) are skipped.

Features follow the BERT-NER convention: each word is tokenized on its own
(FullTokenizer, after the same `preprocess_text` the other tasks apply with
SentencePiece), the pieces of the sentence are packed as
`[CLS] pieces [SEP]`, and only the FIRST piece of each word carries the
word's tag (`label_weights` 1); its other pieces, [CLS], [SEP] and padding
get weight 0 and label id 0. A word that tokenizes to no piece (e.g. a
lone combining accent, stripped by preprocessing) and the words of a
sentence cut at max_seq_length - 2 pieces have no position: they are not
trained on and are predicted as "O". Both are counted and logged.

Legend: L max_seq_length, B batch.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Optional, Sequence, Union

import tensorflow as tf
from absl import logging

from albert_tf import fileio
from albert_tf.data import features
from albert_tf.data import finetune_input
from albert_tf.tokenization import full_tokenizer
from albert_tf.tokenization import text as text_lib

DOCSTART = "-DOCSTART-"
OUTSIDE = "O"  # The tag of words outside every entity.
# Where `--data_dir` keeps the three splits.
SPLIT_FILES = {"train": "train.txt", "eval": "dev.txt", "predict": "test.txt"}

# The TFRecord schema (kept here, beside its only writer and reader, in
# data/features.py's FeatureSpec terms). label_ids is 0 where
# label_weights is 0, so batches padded with zeros (dynamic padding,
# training.pad_to_common_width) stay ignored.
TOKEN_CLASSIFICATION = {
    "input_ids": features.FeatureSpec("int64", ("L",)),
    "input_mask": features.FeatureSpec("int64", ("L",)),
    "segment_ids": features.FeatureSpec("int64", ("L",)),
    "label_ids": features.FeatureSpec("int64", ("L",)),
    "label_weights": features.FeatureSpec("int64", ("L",)),
}
# The [B, L] features that dynamic padding cuts.
SEQUENCE_FEATURES = tuple(TOKEN_CLASSIFICATION)


@dataclasses.dataclass(frozen=True)
class Sentence:
    """One sentence: its words, their tags (None when the file has no tag
    column, e.g. unlabelled test data) and where it starts (`file:line`)."""

    words: tuple[str, ...]
    tags: Optional[tuple[str, ...]]
    where: str


def read_conll(path: str, label_column: int = -1,
               require_labels: bool = True) -> list[Sentence]:
    """Sentences of a CoNLL file; errors name `path:line`.

    label_column indexes the whitespace-separated columns (negative counts
    from the end; 0 would be the word itself and is refused). With
    require_labels=False a line of one column (the word alone) is read
    with no tag; a file must then be all tagged or all untagged.
    """
    if label_column == 0:
        raise ValueError("label_column=0 is the word column; the tag is in "
                         "another column (default -1, the last)")
    text = fileio.read_text(path)
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[Optional[str]] = []
    start = 0

    def flush():
        if not words:
            return
        tagged = [t is not None for t in tags]
        if any(tagged) and not all(tagged):
            missing = tagged.index(False)
            raise ValueError(
                f"{path}:{start + missing}: word {words[missing]!r} has no "
                f"tag column but other words of its sentence do")
        sentences.append(Sentence(tuple(words),
                                  tuple(tags) if all(tagged) else None,
                                  f"{path}:{start}"))
        words.clear()
        tags.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        columns = line.split()
        if not columns:
            flush()
            continue
        if columns[0] == DOCSTART:
            flush()
            continue
        if not words:
            start = number
        width = len(columns)
        if len(columns) == 1 and not require_labels:
            tag = None
        elif -width <= label_column < width and len(columns) > 1:
            tag = columns[label_column]
        else:
            raise ValueError(
                f"{path}:{number}: expected a word and a tag in column "
                f"{label_column} (whitespace-separated), got {width} "
                f"column{'s' if width != 1 else ''}: {line.strip()!r}")
        words.append(columns[0])
        tags.append(tag)
    flush()
    kinds = {s.tags is None for s in sentences}
    if len(kinds) > 1:
        first = next(s for s in sentences if s.tags is None)
        raise ValueError(f"{first.where}: an untagged sentence in a file "
                         f"whose other sentences are tagged")
    return sentences


def label_list_of(sentences: Sequence[Sentence]) -> list[str]:
    """The tags seen, "O" first then sorted: the label ids' order."""
    seen = {tag for s in sentences if s.tags for tag in s.tags}
    rest = sorted(seen - {OUTSIDE})
    return [OUTSIDE] + rest


def check_tags(sentences: Sequence[Sentence], label_list: Sequence[str],
               strict: bool = True) -> int:
    """Tags outside label_list: an error naming file:line (strict, for
    training data), else the count, with a warning naming the first
    (dev or test tags the model was not trained on: scored as gold
    entities it can never predict)."""
    known = set(label_list)
    unknown, first = 0, None
    for sentence in sentences:
        for i, tag in enumerate(sentence.tags or ()):
            if tag in known:
                continue
            path, line = sentence.where.rsplit(":", 1)
            where = (f"{path}:{int(line) + i}: tag {tag!r} of word "
                     f"{sentence.words[i]!r} is not among the training "
                     f"labels {list(label_list)}")
            if strict:
                raise ValueError(where)
            unknown += 1
            first = first or where
    if unknown:
        logging.warning("%d words have tags the model was not trained on "
                        "(first: %s); they count as gold entities it cannot "
                        "predict", unknown, first)
    return unknown


# --------------------------------------------------------------------------
# Features.


def word_pieces(word: str, tokenizer: full_tokenizer.FullTokenizer
                ) -> list[str]:
    """A word's pieces: preprocess_text first with SentencePiece, as the
    other tasks' processors (WordPiece's BasicTokenizer does its own)."""
    if tokenizer.sp_model is not None:
        word = text_lib.preprocess_text(word, lower=tokenizer.do_lower_case)
    return tokenizer.tokenize(word)


@dataclasses.dataclass
class ConversionStats:
    """Counts logged after a conversion (what could not be labelled)."""

    sentences: int = 0
    words: int = 0
    truncated_sentences: int = 0
    truncated_words: int = 0
    empty_words: int = 0
    empty_examples: list = dataclasses.field(default_factory=list)

    def log(self, what: str) -> None:
        logging.info("%s: %d sentences, %d words", what, self.sentences,
                     self.words)
        if self.truncated_sentences:
            logging.warning(
                "%s: %d sentences longer than max_seq_length - 2 pieces were "
                "truncated; their last %d words are not trained on and are "
                "predicted as %r", what, self.truncated_sentences,
                self.truncated_words, OUTSIDE)
        if self.empty_words:
            logging.warning(
                "%s: %d words tokenize to no piece (e.g. %s); they are not "
                "trained on and are predicted as %r", what, self.empty_words,
                ", ".join(self.empty_examples[:3]), OUTSIDE)


def convert_sentence(words: Sequence[str], label_ids: Optional[Sequence[int]],
                     tokenizer: full_tokenizer.FullTokenizer,
                     max_seq_length: int,
                     stats: Optional[ConversionStats] = None
                     ) -> tuple[dict, list[Optional[int]]]:
    """Features of one sentence and each word's first-piece position.

    Returns ({input_ids, input_mask, segment_ids, label_ids,
    label_weights}: lists of max_seq_length ints, positions) where
    positions[i] is the index in input_ids of word i's first piece, or
    None (no piece, or cut by truncation). label_ids=None (unlabelled
    data) gives label id 0 at every position, weights still 1 at first
    pieces.
    """
    if max_seq_length < 3:
        raise ValueError(f"max_seq_length={max_seq_length} leaves no room "
                         f"for a piece between [CLS] and [SEP]")
    budget = max_seq_length - 2
    pieces: list[str] = []
    positions: list[Optional[int]] = []
    first_labels: list[int] = []
    truncated = 0
    for i, word in enumerate(words):
        word_tokens = word_pieces(word, tokenizer)
        if not word_tokens:
            positions.append(None)
            if stats is not None:
                stats.empty_words += 1
                if len(stats.empty_examples) < 3:
                    stats.empty_examples.append(repr(word))
            continue
        if len(pieces) >= budget:
            positions.append(None)
            truncated += 1
            continue
        positions.append(1 + len(pieces))  # After [CLS].
        first_labels.append(label_ids[i] if label_ids is not None else 0)
        pieces.extend(word_tokens[:budget - len(pieces)])
    tokens = ["[CLS]"] + pieces + ["[SEP]"]
    input_ids = tokenizer.convert_tokens_to_ids(tokens)
    pad = max_seq_length - len(input_ids)
    labels = [0] * max_seq_length
    weights = [0] * max_seq_length
    for position, label in zip((p for p in positions if p is not None),
                               first_labels):
        labels[position] = label
        weights[position] = 1
    values = {"input_ids": input_ids + [0] * pad,
              "input_mask": [1] * len(input_ids) + [0] * pad,
              "segment_ids": [0] * max_seq_length,
              "label_ids": labels, "label_weights": weights}
    if stats is not None:
        stats.sentences += 1
        stats.words += len(words)
        if truncated:
            stats.truncated_sentences += 1
            stats.truncated_words += truncated
    return values, positions


def convert_sentences(sentences: Sequence[Sentence],
                      label_list: Sequence[str],
                      tokenizer: full_tokenizer.FullTokenizer,
                      max_seq_length: int, what: str = "CoNLL"
                      ) -> tuple[list[dict], list[list[Optional[int]]]]:
    """convert_sentence over a file's sentences; logs the counts."""
    label_map = {label: i for i, label in enumerate(label_list)}
    stats = ConversionStats()
    rows, positions = [], []
    for sentence in sentences:
        # Tags outside label_list (dev / test only, see check_tags):
        # label id 0 for the loss; the metrics use the gold tag itself.
        ids = (None if sentence.tags is None
               else [label_map.get(t, 0) for t in sentence.tags])
        values, where = convert_sentence(sentence.words, ids, tokenizer,
                                         max_seq_length, stats)
        rows.append(values)
        positions.append(where)
    stats.log(what)
    return rows, positions


def write_features(rows: Sequence[dict], path: str) -> int:
    """Writes converted rows to a TFRecord at `path` (the caller's temp
    file: cache.write renames it into place). Returns the count."""
    with tf.io.TFRecordWriter(path) as writer:
        for values in rows:
            writer.write(features.encode_example(TOKEN_CLASSIFICATION,
                                                 values))
    return len(rows)


def make_dataset(path: Union[str, Sequence[str]], max_seq_length: int,
                 batch_size: int, is_training: bool,
                 drop_remainder: bool = False,
                 input_context: Optional[tf.distribute.InputContext] = None,
                 seed: Optional[int] = None,
                 pad_to_multiple: int = 0) -> tf.data.Dataset:
    """TFRecords -> batches of int32 [B, L] features (finetune_input).

    pad_to_multiple > 0 cuts every feature, labels included, to the
    batch's longest sentence (dynamic padding).
    """
    return finetune_input.make_batches(
        path, features.to_tf_spec(TOKEN_CLASSIFICATION, L=max_seq_length),
        batch_size, is_training, drop_remainder, input_context, seed,
        pad_to_multiple=pad_to_multiple, sequence_features=SEQUENCE_FEATURES)


def tags_from_logits(logits, positions: Sequence[Optional[int]],
                     label_list: Sequence[str]) -> list[str]:
    """One tag per word: argmax of the logits [T, C] at its first piece,
    "O" for a word with no position."""
    out = []
    for position in positions:
        if position is None or position >= len(logits):
            out.append(OUTSIDE)
        else:
            out.append(label_list[int(logits[position].argmax())])
    return out


def to_conll(sentences: Sequence[Sentence],
             predicted: Sequence[Sequence[str]]) -> str:
    """`word [gold] predicted` lines, a blank line after each sentence
    (conlleval's input layout)."""
    lines = []
    for sentence, tags in zip(sentences, predicted):
        gold = sentence.tags or (None,) * len(sentence.words)
        for word, g, p in zip(sentence.words, gold, tags):
            lines.append(f"{word} {p}" if g is None else f"{word} {g} {p}")
        lines.append("")
    return "".join(line + "\n" for line in lines)


def tag_counts(sentences: Sequence[Sentence]) -> collections.Counter:
    """How often each tag occurs (for the majority-tag baseline)."""
    return collections.Counter(t for s in sentences for t in (s.tags or ()))
