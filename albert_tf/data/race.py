"""RACE: JSON readers, example -> feature conversion, TFRecords, tf.data.

Facts from google-research/albert `race_utils.py` (`RaceProcessor`,
`convert_single_example`, `file_based_convert_examples_to_features`):

* Articles are JSON objects with `article`, `questions`, `options` (four
  per question), `answers` (letters A-D) and `id`. Each question is one
  example; labels A-D are 0-3.
* `process_text` (`preprocess_text` when SentencePiece is used) is applied
  to the article, the question and each option separately. A question
  containing `_` has every `_` replaced by the option, otherwise the choice
  is `question + " " + option`.
* Each choice is `[CLS] article [SEP] qa [SEP]`, segment ids 0 up to and
  including the first [SEP], 1 after. The QA side keeps its LAST
  max_qa_length pieces; the article is cut at its end to fit. The article
  is tokenized once per example.
* Features (`features.RACE`): input_ids / input_mask / segment_ids int64
  [4 * L] (the four choices flattened), label_ids, is_real_example.

Two on-disk layouts are read, per split and level directory
`<data_dir>/RACE/{train,dev,test}/{middle,high}/`:

* the original code's: one `all.txt` with one JSON article per line;
* the released dataset's: one JSON article per `*.txt` file (sorted by
  name). A directory holding `all.txt` is read as the original layout only.

Differences from the original, all loud: bad input (missing level
directory, malformed JSON, a question without exactly four options, an
answer other than A-D, answers/questions/options of different counts)
raises with the file, line and question index instead of an exception deep
inside conversion or a silently wrong label; eval and predict are padded
whenever a batch size is given (the original padded only on TPU); an
article without `answers` gives unlabeled examples (label None, written as
label_ids 0) for prediction.

`RaceTextBuilder` builds the same features from raw text in TF ops
(tensorflow-text) for a raw-text SavedModel.

Legend: B batch, C = 4 choices, L = max_seq_length, Q = max_qa_length.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Optional, Sequence, Union

from absl import logging
import tensorflow as tf

from albert_tf import fileio
from albert_tf.data import features
from albert_tf.data import finetune_input
from albert_tf.data import glue
from albert_tf.tokenization import full_tokenizer
from albert_tf.tokenization import text as text_lib

TRAIN, DEV, TEST = "train", "dev", "test"
LEVELS = ("middle", "high")  # The original's reading order.
LABELS = ("A", "B", "C", "D")
NUM_CHOICES = len(LABELS)
ORIGINAL_FILE = "all.txt"  # race_utils.RaceProcessor.read_examples
CLS, SEP = glue.CLS, glue.SEP
# Fake examples that pad eval/predict to a multiple of the batch size.
PaddingInputExample = glue.PaddingInputExample
pad_examples = glue.pad_examples


@dataclasses.dataclass(frozen=True)
class RaceExample:
    """One question with its four choices.

    example_id is the article's `id` (the file name when the released
    layout's JSON has none); question_index counts questions within the
    article from 0; level is "middle" or "high". context and endings are
    the original's `context_sentence` and `endings` (processed text);
    article, question and options are the raw text, for predictions and
    the raw-text export. label is 0-3, or None when unlabeled.
    """

    example_id: str
    question_index: int
    level: str
    context: str
    endings: tuple[str, ...]
    label: Optional[int]
    article: str
    question: str
    options: tuple[str, ...]


class RaceProcessor:
    """Reads RACE articles into `RaceExample`s, as race_utils.RaceProcessor.

    Example:
        processor = RaceProcessor(high_only=True)
        examples = processor.get_dev_examples("data")  # data/RACE/dev/high
    """

    def __init__(self, use_spm: bool = True, do_lower_case: bool = True,
                 high_only: bool = False, middle_only: bool = False):
        if high_only and middle_only:
            raise ValueError("high_only and middle_only are both set: that "
                             "selects no RACE level; set at most one")
        self.use_spm = use_spm
        self.do_lower_case = do_lower_case
        self.high_only = high_only
        self.middle_only = middle_only

    @property
    def levels(self) -> tuple[str, ...]:
        if self.high_only:
            return ("high",)
        if self.middle_only:
            return ("middle",)
        return LEVELS

    def get_labels(self) -> list[str]:
        return list(LABELS)

    def process_text(self, text: str) -> str:
        """The original's process_text: preprocess only when using SPM."""
        if self.use_spm:
            return text_lib.preprocess_text(text, lower=self.do_lower_case)
        return text

    def get_train_examples(self, data_dir: str) -> list[RaceExample]:
        return self.get_examples(data_dir, TRAIN)

    def get_dev_examples(self, data_dir: str) -> list[RaceExample]:
        return self.get_examples(data_dir, DEV)

    def get_test_examples(self, data_dir: str) -> list[RaceExample]:
        return self.get_examples(data_dir, TEST)

    def level_dir(self, data_dir: str, split: str, level: str) -> str:
        return fileio.join(data_dir, "RACE", split, level)

    def source_files(self, data_dir: str, split: str) -> list[str]:
        """The files get_examples reads for `split` (what a cache of its
        features was built from)."""
        files = []
        for level in self.levels:
            directory = self.level_dir(data_dir, split, level)
            original = fileio.join(directory, ORIGINAL_FILE)
            if tf.io.gfile.exists(original):
                files.append(original)
            elif tf.io.gfile.isdir(directory):
                files.extend(fileio.join(directory, name)
                             for name in _article_files(directory))
        return files

    def get_examples(self, data_dir: str, split: str) -> list[RaceExample]:
        """Examples of split "train", "dev" or "test": middle, then high."""
        if split not in (TRAIN, DEV, TEST):
            raise ValueError(f"RACE split {split!r} must be one of "
                             f"{[TRAIN, DEV, TEST]}")
        examples = []
        seen: dict[str, str] = {}  # Article id -> where it was read.
        for level in self.levels:
            directory = self.level_dir(data_dir, split, level)
            level_examples = self._read_level(directory, level, seen)
            logging.info("RACE %s/%s: %d questions from %s", split, level,
                         len(level_examples), directory)
            examples.extend(level_examples)
        if not examples:
            raise ValueError(
                f"no RACE questions in {fileio.join(data_dir, 'RACE', split)}"
                f" for levels {list(self.levels)} (expected *.txt JSON "
                f"articles or {ORIGINAL_FILE} in each level directory)")
        return examples

    def _read_level(self, directory: str, level: str,
                    seen: dict[str, str]) -> list[RaceExample]:
        if not tf.io.gfile.isdir(directory):
            raise FileNotFoundError(
                f"RACE level directory not found: {directory} (expected "
                f"<data_dir>/RACE/<split>/{{middle,high}}/ holding "
                f"{ORIGINAL_FILE} or one *.txt JSON article per file; use "
                f"--high_only or --middle_only to read one level)")
        original = fileio.join(directory, ORIGINAL_FILE)
        examples: list[RaceExample] = []
        if tf.io.gfile.exists(original):
            # The original layout: one JSON article per line.
            lines = _read_utf8(original).splitlines()
            for line_number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                where = f"{original}:{line_number}"
                article = _parse_json(line, where, original, line_number)
                default_id = f"{level}/{ORIGINAL_FILE}:{line_number}"
                examples.extend(self._article_examples(
                    article, level, where, default_id, seen))
            return examples
        names = _article_files(directory)
        if not names:
            logging.warning("RACE level directory %s holds no *.txt "
                            "articles", directory)
        for name in names:
            path = fileio.join(directory, name)
            article = _parse_json(_read_utf8(path), path, path, None)
            examples.extend(self._article_examples(article, level, path,
                                                   name, seen))
        return examples

    def _article_examples(self, article, level: str, where: str,
                          default_id: str,
                          seen: dict[str, str]) -> list[RaceExample]:
        """The questions of one article. Its id must be a string, unique
        in the split: predictions.jsonl names each question by id."""
        if not isinstance(article, dict):
            raise ValueError(f"{where}: a RACE article must be a JSON object, "
                             f"got {type(article).__name__}")
        for key in ("article", "questions", "options"):
            if key not in article:
                raise ValueError(f"{where}: RACE article has no {key!r} "
                                 f"field (it has {sorted(article)})")
        questions, options = article["questions"], article["options"]
        answers = article.get("answers")
        if not isinstance(article["article"], str):
            raise ValueError(f"{where}: 'article' must be a string")
        for key, value in (("questions", questions), ("options", options),
                           ("answers", answers)):
            if value is not None and not isinstance(value, list):
                raise ValueError(f"{where}: {key!r} must be a list, got "
                                 f"{type(value).__name__}")
        if len(options) != len(questions) or (
                answers is not None and len(answers) != len(questions)):
            raise ValueError(
                f"{where}: {len(questions)} questions, {len(options)} option "
                f"lists and {'no' if answers is None else len(answers)} "
                f"answers; each question needs its options and answer")
        example_id = article.get("id", default_id)
        if not isinstance(example_id, str) or not example_id:
            raise ValueError(f"{where}: 'id' must be a non-empty string, "
                             f"got {example_id!r}")
        if example_id in seen:
            raise ValueError(f"{where}: article id {example_id!r} also "
                             f"appears at {seen[example_id]}; ids must be "
                             f"unique (predictions are keyed by id)")
        seen[example_id] = where
        context = self.process_text(article["article"])
        examples = []
        for index, raw_question in enumerate(questions):
            here = f"{where}: question {index}"
            raw_options = options[index]
            if not isinstance(raw_question, str):
                raise ValueError(f"{here}: the question must be a string")
            if (not isinstance(raw_options, list)
                    or len(raw_options) != NUM_CHOICES):
                count = (len(raw_options) if isinstance(raw_options, list)
                         else type(raw_options).__name__)
                raise ValueError(f"{here}: has {count} options; RACE needs "
                                 f"exactly {NUM_CHOICES} (A-D)")
            if not all(isinstance(o, str) for o in raw_options):
                raise ValueError(f"{here}: options must be strings")
            label = None
            if answers is not None:
                answer = answers[index]
                letter = answer.strip() if isinstance(answer, str) else answer
                if letter not in LABELS:
                    raise ValueError(f"{here}: answer {answer!r} is not one "
                                     f"of {', '.join(LABELS)}")
                label = LABELS.index(letter)
            question = self.process_text(raw_question)
            endings = tuple(build_qa_text(question, self.process_text(o))
                            for o in raw_options)
            examples.append(RaceExample(
                example_id=example_id, question_index=index, level=level,
                context=context, endings=endings, label=label,
                article=article["article"], question=raw_question,
                options=tuple(raw_options)))
        return examples


def _read_utf8(path: str) -> str:
    """A RACE file's text; bytes that are not UTF-8 name the file and line."""
    with tf.io.gfile.GFile(path, "rb") as f:
        return fileio.decode_utf8(f.read(), path)


def _article_files(directory: str) -> list[str]:
    """The released layout's article files in `directory`, by name."""
    return sorted(name for name in tf.io.gfile.listdir(directory)
                  if name.endswith(".txt") and not name.startswith("."))


def _parse_json(text: str, where: str, path: str,
                line_number: Optional[int]):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        line = e.lineno if line_number is None else line_number
        raise ValueError(f"{path}:{line}: not valid JSON ({e.msg}, column "
                         f"{e.colno})") from None


def build_qa_text(question: str, option: str) -> str:
    """One choice's QA side, as race_utils.RaceProcessor.read_examples.

    Both are already processed: a cloze question has every `_` replaced by
    the option, any other question is followed by a space and the option.
    """
    if "_" in question:
        return question.replace("_", option)
    return question + " " + option


def check_lengths(max_seq_length: int, max_qa_length: int) -> None:
    """The original asserts deep in conversion; we check the flags first."""
    if max_qa_length < 1:
        raise ValueError(f"max_qa_length={max_qa_length} must be >= 1")
    if max_qa_length > max_seq_length - 3:
        raise ValueError(
            f"max_qa_length={max_qa_length} must be <= max_seq_length - 3 = "
            f"{max_seq_length - 3} ([CLS] and two [SEP] take 3 positions)")


def pack_choice(context_tokens: Sequence[str], qa_tokens: Sequence[str],
                max_seq_length: int, max_qa_length: int
                ) -> tuple[list[str], list[int]]:
    """`[CLS] context [SEP] qa [SEP]` tokens and their segment ids.

    As race_utils.convert_single_example: the QA side keeps its last
    max_qa_length pieces, then the context is cut at its end to fit.
    """
    qa_tokens = list(qa_tokens)[-max_qa_length:]
    context_tokens = list(context_tokens)[
        :max_seq_length - 3 - len(qa_tokens)]
    tokens = [CLS, *context_tokens, SEP, *qa_tokens, SEP]
    segment_ids = ([0] * (len(context_tokens) + 2)
                   + [1] * (len(qa_tokens) + 1))
    return tokens, segment_ids


def convert_single_example(example: Union[RaceExample, PaddingInputExample],
                           max_seq_length: int, max_qa_length: int,
                           tokenizer: full_tokenizer.FullTokenizer,
                           context_tokens: Optional[list[str]] = None
                           ) -> dict[str, list]:
    """RaceExample (or PaddingInputExample) -> feature name -> values.

    input_ids, input_mask, segment_ids: [C * L], the choices one after the
    other; label_ids, is_real_example: [1]. Padding examples are all zeros.
    context_tokens, if given, are `tokenizer.tokenize(example.context)`
    (questions of one article share them).
    """
    length = NUM_CHOICES * max_seq_length
    if isinstance(example, PaddingInputExample):
        zeros = [0] * length
        return {"input_ids": zeros, "input_mask": zeros, "segment_ids": zeros,
                "label_ids": [0], "is_real_example": [0]}
    check_lengths(max_seq_length, max_qa_length)
    if context_tokens is None:
        context_tokens = tokenizer.tokenize(example.context)
    input_ids, input_mask, segment_ids = [], [], []
    for ending in example.endings:
        tokens, segments = pack_choice(context_tokens,
                                       tokenizer.tokenize(ending),
                                       max_seq_length, max_qa_length)
        padding = [0] * (max_seq_length - len(tokens))
        input_ids += tokenizer.convert_tokens_to_ids(tokens) + padding
        input_mask += [1] * len(tokens) + padding
        segment_ids += segments + padding
    label = 0 if example.label is None else example.label
    return {"input_ids": input_ids, "input_mask": input_mask,
            "segment_ids": segment_ids, "label_ids": [label],
            "is_real_example": [1]}


def write_features(examples: Sequence, max_seq_length: int,
                   max_qa_length: int,
                   tokenizer: full_tokenizer.FullTokenizer,
                   path: str) -> int:
    """Converts examples (padding included) to a TFRecord, atomically.

    Returns the number of records written. Pad eval/predict first with
    `pad_examples(examples, batch_size)`.
    """
    check_lengths(max_seq_length, max_qa_length)
    tmp = fileio.temp_path(path)
    last_context, context_tokens = None, None
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for index, example in enumerate(examples):
                if isinstance(example, RaceExample):
                    if example.context is not last_context:
                        last_context = example.context
                        context_tokens = tokenizer.tokenize(example.context)
                    values = convert_single_example(
                        example, max_seq_length, max_qa_length, tokenizer,
                        context_tokens)
                else:
                    values = convert_single_example(
                        example, max_seq_length, max_qa_length, tokenizer)
                if index < 3 and isinstance(example, RaceExample):
                    _log_example(example, values, max_seq_length, tokenizer)
                writer.write(features.encode_example(features.RACE, values))
        tf.io.gfile.rename(tmp, path, overwrite=True)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)
    logging.info("Wrote %d RACE records to %s", len(examples), path)
    return len(examples)


def _log_example(example: RaceExample, values: dict, max_seq_length: int,
                 tokenizer: full_tokenizer.FullTokenizer) -> None:
    logging.info("RACE example %s question %d (%s), label %s",
                 example.example_id, example.question_index, example.level,
                 example.label)
    for choice, row in enumerate(unflatten(values["input_ids"],
                                           max_seq_length)):
        length = sum(unflatten(values["input_mask"], max_seq_length)[choice])
        logging.info("  choice %s: %s", LABELS[choice],
                     " ".join(tokenizer.convert_ids_to_tokens(row[:length])))


def unflatten(values: Sequence, max_seq_length: int) -> list[list]:
    """[C * L] -> C rows of [L] (the reverse of the TFRecord layout)."""
    if len(values) != NUM_CHOICES * max_seq_length:
        raise ValueError(f"{len(values)} values are not {NUM_CHOICES} "
                         f"choices of max_seq_length={max_seq_length}")
    return [list(values[i * max_seq_length:(i + 1) * max_seq_length])
            for i in range(NUM_CHOICES)]


# The [B, C, L] features that dynamic padding cuts.
SEQUENCE_FEATURES = ("input_ids", "input_mask", "segment_ids")


def make_dataset(path: Union[str, Sequence[str]], max_seq_length: int,
                 batch_size: int, is_training: bool,
                 drop_remainder: bool = False,
                 input_context: Optional[tf.distribute.InputContext] = None,
                 seed: Optional[int] = None,
                 pad_to_multiple: int = 0) -> tf.data.Dataset:
    """RACE TFRecords -> batches shaped for AlbertMultipleChoice.

    Yields dicts: input_ids, input_mask, segment_ids int32 [B, C, L];
    label_ids int32 [B]; is_real_example int32 [B]. As glue.make_dataset:
    training repeats, then shuffles with the original's buffer of 100
    (`seed` makes that reproducible); batch_size is per replica; with an
    `input_context` each pipeline reads every n-th record (keep predict
    unsharded so its order matches the examples). pad_to_multiple > 0:
    dynamic padding (finetune_input.make_batches), L varies by batch,
    the longest over every choice.
    """
    def unflatten_choices(parsed):
        for name in ("input_ids", "input_mask", "segment_ids"):
            # [B, C * L] -> [B, C, L]
            parsed[name] = tf.reshape(parsed[name],
                                      [-1, NUM_CHOICES, max_seq_length])
        return parsed

    return finetune_input.make_batches(
        path, features.to_tf_spec(features.RACE, L=max_seq_length),
        batch_size, is_training, drop_remainder, input_context, seed,
        postprocess=unflatten_choices, pad_to_multiple=pad_to_multiple,
        sequence_features=SEQUENCE_FEATURES)


# --------------------------------------------------------------------------
# In-graph text building for a raw-text SavedModel.


class RaceTextBuilder(tf.Module):
    """Raw article [B], question [B], options [B, C] -> features [B, C, L].

    The same features as `RaceProcessor` + `convert_single_example` with
    SentencePiece, in TF ops: each text is normalised as `preprocess_text`
    (InGraphTokenizer.normalize), the QA side is built as `build_qa_text`,
    then tokenized and packed as `pack_choice`. The QA text is normalised a
    second time by the tokenizer; `preprocess_text` is idempotent up to
    runs of spaces that NFKD can create, which SentencePiece collapses.

    Example:
        builder = RaceTextBuilder(InGraphTokenizer.from_file(spm), 512, 128)
        feats = builder(articles, questions, options)  # input_ids [B, 4, 512]
    """

    def __init__(self, tokenizer, max_seq_length: int, max_qa_length: int,
                 name: Optional[str] = None):
        super().__init__(name=name)
        check_lengths(max_seq_length, max_qa_length)
        self.tokenizer = tokenizer  # in_graph.InGraphTokenizer
        self.max_seq_length = max_seq_length
        self.max_qa_length = max_qa_length

    def qa_text(self, question: tf.Tensor, options: tf.Tensor) -> tf.Tensor:
        """Normalised question [B] and options [B, C] -> QA text [B, C]."""
        question = self.tokenizer.normalize(question)  # [B]
        flat_options = self.tokenizer.normalize(
            tf.reshape(options, [-1]))  # [B * C]
        flat_question = tf.repeat(question, NUM_CHOICES)  # [B * C]
        # str.replace("_", option): split on "_" and join with the option.
        parts = tf.strings.split(flat_question, sep="_")  # [B*C, (k)]
        fill = tf.gather(flat_options, parts.value_rowids())  # [M]
        pairs = tf.reshape(tf.stack([parts.flat_values, fill], axis=1), [-1])
        row_lengths = 2 * parts.row_lengths()
        position = tf.range(tf.size(pairs, out_type=tf.int64)) - tf.repeat(
            parts.row_splits[:-1] * 2, row_lengths)
        keep = position < tf.repeat(row_lengths - 1, row_lengths)
        interleaved = tf.RaggedTensor.from_row_lengths(
            tf.boolean_mask(pairs, keep),
            tf.maximum(row_lengths - 1, 0))  # drop the trailing option
        replaced = tf.strings.reduce_join(interleaved, axis=1)
        has_blank = tf.strings.regex_full_match(flat_question, "(?s).*_.*")
        qa = tf.where(has_blank, replaced,
                      tf.strings.join([flat_question, flat_options],
                                       separator=" "))
        return tf.reshape(qa, [-1, NUM_CHOICES])

    def __call__(self, article: tf.Tensor, question: tf.Tensor,
                 options: tf.Tensor) -> dict[str, tf.Tensor]:
        """input_ids, input_mask, segment_ids int32 [B, C, L]."""
        length = self.max_seq_length
        article_ids = self.tokenizer(article)  # Normalises, as process_text.
        article_ids = tf.cast(article_ids, tf.int32).with_row_splits_dtype(
            tf.int64)  # [B, (Ta)]
        qa_ids = self.tokenizer(tf.reshape(self.qa_text(question, options),
                                           [-1]))
        qa_ids = tf.cast(qa_ids, tf.int32).with_row_splits_dtype(
            tf.int64)  # [B * C, (Tq)]
        # Each article once per choice: [B * C, (Ta)].
        article_ids = tf.gather(article_ids,
                                tf.repeat(tf.range(tf.shape(article)[0]),
                                          NUM_CHOICES))
        len_a = tf.cast(article_ids.row_lengths(), tf.int32)  # [B * C]
        len_q = tf.cast(qa_ids.row_lengths(), tf.int32)
        keep_q = tf.minimum(len_q, self.max_qa_length)
        keep_a = tf.minimum(len_a, length - 3 - keep_q)
        # The QA side keeps its last keep_q pieces, the article its first.
        qa_ids = tf.ragged.boolean_mask(
            qa_ids, tf.ragged.range(len_q) >= (len_q - keep_q)[:, None])
        article_ids = tf.ragged.boolean_mask(
            article_ids, tf.ragged.range(len_a) < keep_a[:, None])

        def column(value, count):  # [N, (count)] filled with value
            return tf.RaggedTensor.from_row_lengths(
                tf.fill([tf.reduce_sum(count)], value),
                tf.cast(count, tf.int64))

        one = tf.ones_like(len_a)
        cls_id = self.tokenizer_id(CLS)
        sep_id = self.tokenizer_id(SEP)
        ids = tf.concat([column(cls_id, one), article_ids,
                         column(sep_id, one), qa_ids, column(sep_id, one)],
                        axis=1)  # [B * C, (T)]
        segments = tf.concat([column(0, keep_a + 2), column(1, keep_q + 1)],
                             axis=1)
        shape = [None, length]
        out = {"input_ids": ids.to_tensor(0, shape=shape),
               "input_mask": tf.ones_like(ids).to_tensor(0, shape=shape),
               "segment_ids": segments.to_tensor(0, shape=shape)}
        return {name: tf.reshape(value, [-1, NUM_CHOICES, length])
                for name, value in out.items()}

    @staticmethod
    def tokenizer_id(token: str) -> int:
        # Fixed by the original vocabulary; InGraphTokenizer checks them.
        return full_tokenizer.SPM_SPECIAL_IDS[token]
