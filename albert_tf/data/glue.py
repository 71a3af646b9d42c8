"""GLUE: TSV readers, example -> feature conversion, TFRecord cache, tf.data.

Facts from google-research/albert `classifier_utils.py` and
`run_classifier.py`: each task's directory, file names, columns, header
rows, guid format, label list and dummy test label are the original
processors'; text goes through `preprocess_text` (when SentencePiece is
used), `FullTokenizer.tokenize`, the longest-first pair truncation and
`[CLS] a [SEP] b [SEP]`; features are the original classifier schema
(`features.CLASSIFIER`, float label for STS-B).

The eleven processors are one class driven by a table of per-split column
layouts, not eleven subclasses. Differences from the original, all loud:

* Bad input raises with the path, line and allowed values instead of an
  IndexError/KeyError deep inside conversion, a UnicodeDecodeError, or an
  OutOfRangeError from an empty dataset later. QQP train/dev rows with too
  few columns are still skipped, as the original does (it catches
  IndexError), but the count is logged.
* The original drops the first row of every file with a header unseen; here
  that row must be the header (the columns read are checked by name), so a
  file without one is an error, not one lost example.
* Eval and predict are padded with `PaddingInputExample`s whenever a
  batch size is given (the original padded only on TPU); padding has
  is_real_example = 0, so metrics ignore it.
* A cached file is reused only when it was built from the same TSV
  contents, tokenizer model, lowercasing, length and record count
  (data/cache.py); the original reused any file with the right name.
  Predict features are cached too (`<task>_predict.tf_record`).
* Files are written to a temporary name and renamed, so an interrupted run
  never leaves a truncated cache.

Readers, conversion and input share this one module, as the original's
classifier_utils.py, which is why it runs past 400 lines.

Legend: L = max_seq_length, B = batch size.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from typing import Optional, Sequence, Union

from absl import logging
import numpy as np
import tensorflow as tf

from albert_tf import fileio
from albert_tf.data import cache
from albert_tf.data import features
from albert_tf.data import finetune_input
from albert_tf.tokenization import full_tokenizer
from albert_tf.tokenization import text as text_lib

TRAIN, DEV, TEST = "train", "dev", "test"
# Cache split name -> processor split, as run_classifier's file names.
CACHE_SPLITS = {"train": TRAIN, "eval": DEV, "predict": TEST}
# Version of the cached feature layout, part of every cache key: bump it
# when conversion changes so old caches are rebuilt.
FEATURES_FORMAT = 1
CLS, SEP = "[CLS]", "[SEP]"


@dataclasses.dataclass(frozen=True)
class InputExample:
    """One example; text_b is None for single-sentence tasks.

    label is a label-list string, a float for STS-B, or the task's dummy
    label (its first label) for test examples, as in the original.
    """

    guid: str
    text_a: str
    text_b: Optional[str] = None
    label: Union[str, float, None] = None


@dataclasses.dataclass(frozen=True)
class PaddingInputExample:
    """A fake example that pads eval/predict to a multiple of the batch."""


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where one split's fields are: column indices, -1 is the last column.

    `header` is the GLUE file's header row, () for a file without one
    (CoLA train/dev, as ColaProcessor._create_examples skips no row there).
    """

    file: str
    header: tuple = ()
    # None: "<split>-<i>", i the 0-based row index counting any header, as
    # the original's MRPC, CoLA and SST-2 train/dev guids.
    guid: Optional[int] = None
    text_a: int = 1
    text_b: Optional[int] = 2
    label: Optional[int] = -1  # None: unlabeled (test), dummy label

    def used_columns(self) -> list[int]:
        return [c for c in (self.guid, self.text_a, self.text_b, self.label)
                if c is not None]

    def min_columns(self) -> int:
        used = [c for c in (self.guid, self.text_a, self.text_b) if c]
        needed = max(used + [0]) + 1
        if self.label == -1:
            needed += 1  # The label must be a column after the texts.
        elif self.label is not None:
            needed = max(needed, self.label + 1)
        return needed

    def is_header(self, row: list) -> bool:
        """Whether `row` names the used columns as GLUE's header does.

        Only the columns read are compared (case and spaces ignored), so
        harmless variants of the other names pass.
        """
        if len(row) < self.min_columns():
            return False
        return all(row[c].strip().lower() == self.header[c].lower()
                   for c in self.used_columns())


@dataclasses.dataclass(frozen=True)
class _Task:
    directory: str
    labels: tuple
    splits: dict  # split -> _Layout
    skip_short_rows: bool = False  # QQP only, as the original.


_MNLI_LABELS = ("contradiction", "entailment", "neutral")
_NLI_LABELS = ("entailment", "not_entailment")
_MNLI_HEADER = ("index", "promptID", "pairID", "genre",
                "sentence1_binary_parse", "sentence2_binary_parse",
                "sentence1_parse", "sentence2_parse", "sentence1",
                "sentence2")
_MNLI_DEV_LABELS = tuple(f"label{i}" for i in range(1, 6)) + ("gold_label",)
# MNLI: index promptID pairID genre 4 parses sentence1 sentence2 ... label.
_MNLI = dict(guid=0, text_a=8, text_b=9)
_PAIR = dict(guid=0, text_a=1, text_b=2)  # index sentence1 sentence2 [label]


def _pair_task(directory: str, labels: tuple,
               texts: tuple = ("sentence1", "sentence2")) -> _Task:
    header = ("index", *texts)
    return _Task(directory, labels, {
        TRAIN: _Layout("train.tsv", header + ("label",), **_PAIR),
        DEV: _Layout("dev.tsv", header + ("label",), **_PAIR),
        TEST: _Layout("test.tsv", header, label=None, **_PAIR)})


def _mnli_task(dev: str, test: str) -> _Task:
    return _Task("MNLI", _MNLI_LABELS, {
        TRAIN: _Layout("train.tsv", _MNLI_HEADER + ("label1", "gold_label"),
                       **_MNLI),
        DEV: _Layout(dev, _MNLI_HEADER + _MNLI_DEV_LABELS, **_MNLI),
        TEST: _Layout(test, _MNLI_HEADER, label=None, **_MNLI)})


_MRPC_HEADER = ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")
_STSB_HEADER = ("index", "genre", "filename", "year", "old_index", "source1",
                "source2", "sentence1", "sentence2")
_QQP_HEADER = ("id", "qid1", "qid2", "question1", "question2",
               "is_duplicate")

_TASKS = {
    "cola": _Task("CoLA", ("0", "1"), {
        # train/dev: source label original_label sentence, no header.
        TRAIN: _Layout("train.tsv", text_a=3, text_b=None, label=1),
        DEV: _Layout("dev.tsv", text_a=3, text_b=None, label=1),
        TEST: _Layout("test.tsv", ("index", "sentence"), guid=0, text_a=1,
                      text_b=None, label=None)}),
    "mnli": _mnli_task("dev_matched.tsv", "test_matched.tsv"),
    "mismnli": _mnli_task("dev_mismatched.tsv", "test_mismatched.tsv"),
    # train/dev: Quality #1ID #2ID #1String #2String; test: index ... .
    "mrpc": _Task("MRPC", ("0", "1"), {
        TRAIN: _Layout("train.tsv", _MRPC_HEADER, text_a=3, text_b=4,
                       label=0),
        DEV: _Layout("dev.tsv", _MRPC_HEADER, text_a=3, text_b=4, label=0),
        TEST: _Layout("test.tsv", ("index",) + _MRPC_HEADER[1:], guid=0,
                      text_a=3, text_b=4, label=None)}),
    "sst-2": _Task("SST-2", ("0", "1"), {
        TRAIN: _Layout("train.tsv", ("sentence", "label"), text_a=0,
                       text_b=None, label=1),
        DEV: _Layout("dev.tsv", ("sentence", "label"), text_a=0, text_b=None,
                     label=1),
        TEST: _Layout("test.tsv", ("index", "sentence"), guid=0, text_a=1,
                      text_b=None, label=None)}),
    # index genre filename year old_index source1 source2 s1 s2 [score].
    "sts-b": _Task("STS-B", (None,), {
        split: _Layout(f"{split}.tsv",
                       _STSB_HEADER + (() if split == TEST else ("score",)),
                       guid=0, text_a=7, text_b=8,
                       label=None if split == TEST else -1)
        for split in (TRAIN, DEV, TEST)}),
    # train/dev: id qid1 qid2 question1 question2 is_duplicate.
    "qqp": _Task("QQP", ("0", "1"), {
        TRAIN: _Layout("train.tsv", _QQP_HEADER, guid=0, text_a=3, text_b=4,
                       label=5),
        DEV: _Layout("dev.tsv", _QQP_HEADER, guid=0, text_a=3, text_b=4,
                     label=5),
        TEST: _Layout("test.tsv", ("id", "question1", "question2"),
                      label=None, **_PAIR)},
        skip_short_rows=True),
    "qnli": _pair_task("QNLI", _NLI_LABELS, ("question", "sentence")),
    "rte": _pair_task("RTE", _NLI_LABELS),
    "wnli": _pair_task("WNLI", ("0", "1")),
    # The diagnostic set: test only (AXProcessor reads diagnostic.tsv).
    "ax": _Task("diagnostic", _MNLI_LABELS, {
        TEST: _Layout("diagnostic.tsv", ("index", "sentence1", "sentence2"),
                      label=None, **_PAIR)}),
}
TASK_NAMES = tuple(_TASKS)


def _tsv_lines(f, path: str):
    """Decoded lines of a binary file; bad UTF-8 names the file and line.

    A byte-order mark before the first line is dropped.
    """
    for number, raw in enumerate(f, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(
                f"{path}:{number}: not UTF-8 (byte {raw[e.start]:#04x} at "
                f"column {e.start + 1}); GLUE TSVs are UTF-8") from None
        yield line.lstrip("\ufeff") if number == 1 else line


class GlueProcessor:
    """Reads one GLUE task's TSVs into `InputExample`s.

    Example:
        processor = get_processor("mnli")
        examples = processor.get_dev_examples("glue_data")  # dev_matched
    """

    def __init__(self, task_name: str, use_spm: bool = True,
                 do_lower_case: bool = True):
        self.task_name = task_name
        self.use_spm = use_spm
        self.do_lower_case = do_lower_case
        self._task = _TASKS[task_name]

    @property
    def label_list(self) -> list:
        """The label list; [None] for STS-B, as the original's get_labels."""
        return list(self._task.labels)

    def get_labels(self) -> list:
        return self.label_list

    @property
    def is_regression(self) -> bool:
        return self.task_name == "sts-b"

    @property
    def num_labels(self) -> int:
        return len(self._task.labels)  # 1 for STS-B: one regression output.

    def process_text(self, text: str) -> str:
        """The original's process_text: preprocess only when using SPM."""
        if self.use_spm:
            return text_lib.preprocess_text(text, lower=self.do_lower_case)
        return text

    def get_train_examples(self, data_dir: str) -> list[InputExample]:
        return self.get_examples(data_dir, TRAIN)

    def get_dev_examples(self, data_dir: str) -> list[InputExample]:
        return self.get_examples(data_dir, DEV)

    def get_test_examples(self, data_dir: str) -> list[InputExample]:
        return self.get_examples(data_dir, TEST)

    def file_path(self, data_dir: str, split: str) -> str:
        layout = self._layout(split)
        return fileio.join(data_dir, self._task.directory, layout.file)

    def _layout(self, split: str) -> _Layout:
        if split not in self._task.splits:
            raise ValueError(f"task {self.task_name!r} has no {split} set; "
                             f"it has {', '.join(self._task.splits)}")
        return self._task.splits[split]

    def get_examples(self, data_dir: str, split: str) -> list[InputExample]:
        """Examples of split 'train', 'dev' or 'test', in file order."""
        layout = self._layout(split)
        path = self.file_path(data_dir, split)
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(
                f"{self.task_name} {split} file not found: {path} (expected "
                f"<data_dir>/{self._task.directory}/{layout.file})")
        examples, skipped, rows = [], 0, 0
        seen: dict[str, int] = {}  # Test index -> its line.
        with tf.io.gfile.GFile(path, "rb") as f:
            # QUOTE_NONE: quotes are literal text, as the original's
            # csv.reader(quotechar=None).
            reader = csv.reader(_tsv_lines(f, path), delimiter="\t",
                                quoting=csv.QUOTE_NONE)
            try:
                for i, row in enumerate(reader):
                    rows += 1
                    if layout.header and i == 0:
                        self._check_header(row, path, split, layout)
                        continue
                    where = f"{path}:{reader.line_num}"
                    if len(row) < layout.min_columns():
                        if self._task.skip_short_rows and split != TEST:
                            skipped += 1  # As the original's QQP IndexError.
                            continue
                        raise ValueError(
                            f"{where}: {len(row)} columns, but "
                            f"{self.task_name} {split} rows need at least "
                            f"{layout.min_columns()}")
                    example = self._example(row, i, split, layout, where)
                    if split == TEST and layout.guid is not None:
                        # submit_results.tsv is keyed by this index.
                        if example.guid in seen:
                            raise ValueError(
                                f"{where}: index {example.guid!r} also on "
                                f"line {seen[example.guid]}; the test "
                                f"index must be unique (the submission is "
                                f"keyed by it)")
                        seen[example.guid] = reader.line_num
                    examples.append(example)
            except csv.Error as e:
                raise ValueError(f"{path}:{reader.line_num}: {e}") from None
        if skipped:
            logging.warning("%s: skipped %d rows with too few columns, as "
                            "the original QQP processor does", path, skipped)
        if not examples:
            if rows == 0:
                what = "the file is empty"
            elif skipped:
                what = f"all {skipped} rows have too few columns"
            else:
                what = "it has only a header row"
            raise ValueError(f"{path}: no {self.task_name} {split} examples "
                             f"({what})")
        return examples

    def _check_header(self, row: list, path: str, split: str,
                      layout: _Layout) -> None:
        """The original skips the first row unseen; make sure it is one."""
        if not layout.is_header(row):
            got, want = "\t".join(row), "\t".join(layout.header)
            raise ValueError(
                f"{path}:1: the first line is not the {self.task_name} "
                f"{split} header, so it would be dropped as one. Got "
                f"{got!r}; expected {want!r}. Restore the header row "
                "(GLUE's files have one).")

    def _example(self, row: list, i: int, split: str, layout: _Layout,
                 where: str) -> InputExample:
        guid = (f"{split}-{i}" if layout.guid is None
                else self.process_text(row[layout.guid]))
        text_a = self.process_text(row[layout.text_a])
        text_b = (None if layout.text_b is None
                  else self.process_text(row[layout.text_b]))
        labels = self._task.labels
        if layout.label is None:
            label = 0.0 if self.is_regression else labels[0]  # Dummy.
        elif self.is_regression:
            try:
                label = float(row[layout.label])
            except ValueError:
                raise ValueError(f"{where}: STS-B score "
                                 f"{row[layout.label]!r} is not a number")
            if not math.isfinite(label):
                # float() reads "nan" and "inf"; a NaN label made every
                # metric NaN.
                raise ValueError(f"{where}: STS-B score "
                                 f"{row[layout.label]!r} is not finite")
        else:
            label = self.process_text(row[layout.label])
            if label not in labels:
                raise ValueError(f"{where}: unknown label {label!r}; "
                                 f"{self.task_name} labels are {list(labels)}")
        return InputExample(guid, text_a, text_b, label)


def get_processor(task_name: str, use_spm: bool = True,
                  do_lower_case: bool = True) -> GlueProcessor:
    """The processor for a task name, case-insensitive (as the original)."""
    name = task_name.lower()
    if name not in _TASKS:
        raise ValueError(f"unknown task_name {task_name!r}; supported tasks: "
                         f"{', '.join(TASK_NAMES)}")
    return GlueProcessor(name, use_spm=use_spm, do_lower_case=do_lower_case)


def truncate_seq_pair(tokens_a: list, tokens_b: list, max_length: int) -> None:
    """Pops from the longer list (b on ties) until the pair fits, in place.

    The original's heuristic: a token from a short sequence likely carries
    more information than one from a long sequence.
    """
    while len(tokens_a) + len(tokens_b) > max_length:
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()


def convert_single_example(example, label_list: Sequence,
                           max_seq_length: int,
                           tokenizer: full_tokenizer.FullTokenizer,
                           is_regression: bool = False) -> dict[str, list]:
    """InputExample (or PaddingInputExample) -> feature name -> values.

    input_ids, input_mask, segment_ids: [L]; label_ids, is_real_example:
    [1] (scalars in the TFRecord). Padding examples are all zeros.
    """
    if isinstance(example, PaddingInputExample):
        zeros = [0] * max_seq_length
        return {"input_ids": zeros, "input_mask": zeros, "segment_ids": zeros,
                "label_ids": [0.0 if is_regression else 0],
                "is_real_example": [0]}
    if is_regression:
        label_id = float(example.label)
    elif example.label in label_list:
        label_id = list(label_list).index(example.label)
    else:
        raise ValueError(f"example {example.guid}: unknown label "
                         f"{example.label!r}; labels are {list(label_list)}")
    tokens_a = tokenizer.tokenize(example.text_a)
    # As the original: an empty text_b, or one with no pieces, makes a
    # single-sequence input.
    tokens_b = tokenizer.tokenize(example.text_b) if example.text_b else None
    if tokens_b:
        truncate_seq_pair(tokens_a, tokens_b, max_seq_length - 3)  # CLS 2*SEP
    else:
        tokens_a = tokens_a[:max_seq_length - 2]  # CLS SEP
    tokens = [CLS, *tokens_a, SEP]
    segment_ids = [0] * len(tokens)
    if tokens_b:
        tokens += [*tokens_b, SEP]
        segment_ids += [1] * (len(tokens_b) + 1)
    input_ids = tokenizer.convert_tokens_to_ids(tokens)
    padding = [0] * (max_seq_length - len(input_ids))
    return {"input_ids": input_ids + padding,
            "input_mask": [1] * len(input_ids) + padding,
            "segment_ids": segment_ids + padding,
            "label_ids": [label_id], "is_real_example": [1]}


def pad_examples(examples: Sequence, batch_size: int) -> list:
    """Appends PaddingInputExamples up to a multiple of batch_size."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    padded = list(examples)
    padded += [PaddingInputExample()] * (-len(padded) % batch_size)
    return padded


def _write_records(examples: Sequence, label_list: Sequence,
                   max_seq_length: int,
                   tokenizer: full_tokenizer.FullTokenizer, path: str,
                   is_regression: bool) -> None:
    schema = (features.CLASSIFIER_REGRESSION if is_regression
              else features.CLASSIFIER)
    with tf.io.TFRecordWriter(path) as writer:
        for index, example in enumerate(examples):
            values = convert_single_example(
                example, label_list, max_seq_length, tokenizer, is_regression)
            if index < 5 and isinstance(example, InputExample):
                length = sum(values["input_mask"])
                tokens = tokenizer.convert_ids_to_tokens(
                    values["input_ids"][:length])
                logging.info("guid %s: %s; label %r -> %s", example.guid,
                             " ".join(tokens), example.label,
                             values["label_ids"][0])
            writer.write(features.encode_example(schema, values))


def write_features(examples: Sequence, label_list: Sequence,
                   max_seq_length: int,
                   tokenizer: full_tokenizer.FullTokenizer, path: str,
                   is_regression: bool = False) -> int:
    """Converts examples and writes them to a TFRecord atomically.

    Returns the number of records (padding included).
    """
    tmp = fileio.temp_path(path)
    try:
        _write_records(examples, label_list, max_seq_length, tokenizer, tmp,
                       is_regression)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)
    logging.info("Wrote %d examples to %s", len(examples), path)
    return len(examples)


def cached_features_file(cached_dir: str, task_name: str, split: str) -> str:
    """<cached_dir>/<task>_{train,eval,predict}.tf_record, as the original."""
    if split not in CACHE_SPLITS:
        raise ValueError(
            f"split {split!r} must be one of {list(CACHE_SPLITS)}")
    return fileio.join(cached_dir, f"{task_name}_{split}.tf_record")


@dataclasses.dataclass(frozen=True)
class FeatureFile:
    """A features TFRecord and the real examples it holds, in order.

    The first len(examples) records are the examples; num_padding fake
    records follow.
    """

    path: str
    examples: list
    num_padding: int

    @property
    def num_records(self) -> int:
        return len(self.examples) + self.num_padding


def cache_key(processor: GlueProcessor, source_file: str, split: str,
              tokenizer: full_tokenizer.FullTokenizer, max_seq_length: int,
              num_records: int) -> dict:
    """What a split's cached features are built from (see data/cache.py).

    The TSV's contents (not its path), the tokenizer's model, the
    processor's preprocessing, the length, and the record count, which
    carries the padding batch size.
    """
    return {"format": FEATURES_FORMAT, "task": processor.task_name,
            "split": split, "source_sha256": fileio.fingerprint(source_file),
            "tokenizer": cache.tokenizer_key(tokenizer),
            "use_spm": processor.use_spm,
            "do_lower_case": processor.do_lower_case,
            "max_seq_length": max_seq_length, "num_records": num_records}


def prepare_features(processor: GlueProcessor, data_dir: str, split: str,
                     tokenizer: full_tokenizer.FullTokenizer,
                     max_seq_length: int, cached_dir: str,
                     batch_size: Optional[int] = None) -> FeatureFile:
    """Reads a split and writes (or reuses) its cached features.

    The cache is reused only when built from the same inputs (cache_key);
    otherwise it is rebuilt and the log says why.

    Args:
      split: "train", "eval" (dev set) or "predict" (test set).
      batch_size: for eval and predict, pad to a multiple of it (use the
        global batch size); ignored for train.
    """
    source = processor.file_path(data_dir, CACHE_SPLITS[split])
    examples = processor.get_examples(data_dir, CACHE_SPLITS[split])
    to_write = list(examples)
    if split != "train" and batch_size:
        to_write = pad_examples(examples, batch_size)
    path = cached_features_file(cached_dir, processor.task_name, split)
    key = cache_key(processor, source, split, tokenizer, max_seq_length,
                    len(to_write))
    if not cache.lookup(path, key):
        cache.write(path, key, lambda tmp: _write_records(
            to_write, processor.label_list, max_seq_length, tokenizer, tmp,
            processor.is_regression))
        logging.info("Wrote %d records to %s", len(to_write), path)
    logging.info("%s %s: %d examples + %d padding", processor.task_name,
                 split, len(examples), len(to_write) - len(examples))
    return FeatureFile(path, examples, len(to_write) - len(examples))


def write_test_results(path: str, probabilities: np.ndarray) -> None:
    """Writes run_classifier's test_results.tsv atomically.

    One line per real example: its class probabilities, tab-separated, as
    `str` of float32 values (run_classifier.py do_predict; no header). For
    STS-B the original wrote its one regression output per line, so a
    [N] array is taken as [N, 1].

    Args:
      probabilities: [N, C] (or [N]) for the N real examples, padding
        already removed.
    """
    values = np.asarray(probabilities, np.float32)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[1] < 1:
        raise ValueError(f"{path}: probabilities must be [N, C] or [N], got "
                         f"shape {np.shape(probabilities)}")
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad.size:
        raise ValueError(f"{path}: example {bad[0]} has non-finite outputs "
                         f"{values[bad[0]].tolist()}; not writing results")
    lines = ["\t".join(str(v) for v in row) + "\n" for row in values]
    fileio.write_atomic(path, "".join(lines))


# The [B, L] features that dynamic padding cuts.
SEQUENCE_FEATURES = ("input_ids", "input_mask", "segment_ids")


def make_dataset(path: Union[str, Sequence[str]], seq_length: int,
                 batch_size: int, is_training: bool,
                 is_regression: bool = False, drop_remainder: bool = False,
                 input_context: Optional[tf.distribute.InputContext] = None,
                 seed: Optional[int] = None,
                 pad_to_multiple: int = 0) -> tf.data.Dataset:
    """TFRecord features -> batches of the original's input_fn.

    Yields dicts: input_ids, input_mask, segment_ids int32 [B, L];
    label_ids int32 [B] (float32 for STS-B); is_real_example int32 [B].
    Training repeats and shuffles with the original's buffer of 100
    (`seed` makes that reproducible). batch_size is per replica (use
    input_context.get_per_replica_batch_size), as pretraining_dataset;
    with an `input_context` each pipeline reads every n-th record. Keep
    predict unsharded so its order matches the examples. pad_to_multiple
    > 0: dynamic padding (finetune_input.make_batches), L varies by batch.
    """
    schema = (features.CLASSIFIER_REGRESSION if is_regression
              else features.CLASSIFIER)
    return finetune_input.make_batches(
        path, features.to_tf_spec(schema, L=seq_length), batch_size,
        is_training, drop_remainder, input_context, seed,
        pad_to_multiple=pad_to_multiple,
        sequence_features=SEQUENCE_FEATURES)
