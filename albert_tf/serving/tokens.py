"""Token classification SavedModel: raw text in, entities with offsets out.

`export_token_classifier` writes a SavedModel with two signatures; both
need only tensorflow and tensorflow_text to load (`import tensorflow_text`
first: it registers the SentencePiece ops).

* `serving_default`: input_ids, input_mask, segment_ids int32 [B, T] ->
  logits and probabilities float32 [B, T, C], tag_ids int32 [B, T].
* `serve_tokens`: text string [B] -> words and entities (below).

What `serve_tokens` does, in the graph:

1. Words: the text is split on whitespace (the characters Python's
   str.split() splits on) and, with split_punctuation (default), every
   punctuation character becomes a word of its own (Unicode category P*
   and the ASCII symbols, as BERT's BasicTokenizer), which is close to
   CoNLL's tokenization ("Paris." -> "Paris", "."; but "it's" -> "it",
   "'", "s" where CoNLL has "it", "'s").
2. Pieces: each word on its own through the in-graph tokenizer
   (preprocess_text + SentencePiece, tokenization.in_graph), as
   data.conll tokenizes a CoNLL word for training.
3. `[CLS] pieces [SEP]`, cut at max_seq_length - 2 pieces; each word's
   tag is the argmax at its FIRST piece (AlbertTokenClassifier's
   convention). A word with no piece, or cut off, is tagged "O" and has
   word_tagged False.
4. Entities: the words' tags decoded with seqeval's rules (the same
   chunks token_metrics scores, IOB1/IOB2/IOBES; tables from
   token_metrics.chunk_tables baked in as constants).

Offsets: `*_start` / `*_end` count Unicode code points (Python str
indices) in the input string as given (no normalisation, no stripping),
end exclusive: in Python, `text[start:end]` is the word or entity. An
entity runs from the start of its first word to the end of its last, so
its text keeps the input's own spacing between words. Input that is not
valid UTF-8 has no meaningful offsets.

Outputs of `serve_tokens` (W: most words in a text, E: most entities;
shorter rows are padded with "" / -1 / 0 / False):
  words [B, W] string, word_start / word_end [B, W] int32,
  word_tags [B, W] string, word_probability [B, W] float32 (of the tag),
  word_tagged [B, W] bool, num_words [B] int32,
  entity_type [B, E] string (the tag without its B-/I- prefix),
  entity_text [B, E] string, entity_start / entity_end [B, E] int32,
  entity_score [B, E] float32 (mean tag probability over its words),
  num_entities [B] int32.

Legend: B texts, W words, P pieces, T sequence length, C labels, E
entities.
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from albert_tf.metrics import tokens as token_metrics
from albert_tf.models import AlbertTokenClassifier
from albert_tf.serving import checks as serving_checks
from albert_tf.serving import export
from albert_tf.tokenization import in_graph

_TEXT = serving_checks.unchecked_spec(tf.string)  # [B], checked in-graph.
_IDS = serving_checks.unchecked_spec(tf.int32)  # [B, T], checked in-graph.
# BERT BasicTokenizer's punctuation: ASCII 33-47, 58-64, 91-96, 123-126
# and every Unicode P* character (RE2's \pP).
_PUNCTUATION = r"[\x{21}-\x{2f}\x{3a}-\x{40}\x{5b}-\x{60}\x{7b}-\x{7e}\pP]"
_O, _B, _I, _E, _S, _DOT = (token_metrics.PREFIX_CODE[p]
                            for p in ("O", "B", "I", "E", "S", "."))


def _end_of_chunk(prev_p, cur_p, prev_t, cur_t):
    """seqeval's end_of_chunk on prefix codes / type ids (any shape)."""
    prev_in = tf.equal(prev_p, _B) | tf.equal(prev_p, _I)
    cur_breaks = (tf.equal(cur_p, _B) | tf.equal(cur_p, _S)
                  | tf.equal(cur_p, _O))
    return (tf.equal(prev_p, _E) | tf.equal(prev_p, _S)
            | (prev_in & cur_breaks)
            | (tf.not_equal(prev_p, _O) & tf.not_equal(prev_p, _DOT)
               & tf.not_equal(prev_t, cur_t)))


def _start_of_chunk(prev_p, cur_p, prev_t, cur_t):
    """seqeval's start_of_chunk on prefix codes / type ids (any shape)."""
    cur_cont = tf.equal(cur_p, _E) | tf.equal(cur_p, _I)
    prev_open = (tf.equal(prev_p, _E) | tf.equal(prev_p, _S)
                 | tf.equal(prev_p, _O))
    return (tf.equal(cur_p, _B) | tf.equal(cur_p, _S)
            | (prev_open & cur_cont)
            | (tf.not_equal(cur_p, _O) & tf.not_equal(cur_p, _DOT)
               & tf.not_equal(prev_t, cur_t)))


def decode_chunks(prefix: tf.Tensor, kind: tf.Tensor
                  ) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """Entities of each row of tags, as seqeval.get_entities.

    prefix, kind: int32 [B, W] (token_metrics.PREFIX_CODE, type ids;
    padding words must be "O", type 0). Returns the first and last word
    of each entity, int32 [B, (E)] each, in order.
    """
    batch = tf.shape(prefix)[0]
    # seqeval appends an "O" (type "_" = 0); before the first word its
    # previous tag is "O" with a type no tag has (-1).
    o_col = tf.fill([batch, 1], _O)
    p_ext = tf.concat([o_col, prefix, o_col], 1)  # [B, W + 2]
    t_ext = tf.concat([tf.fill([batch, 1], -1), kind,
                       tf.zeros([batch, 1], tf.int32)], 1)
    # The chunk ending at word j: end_of_chunk between j and j + 1.
    is_end = _end_of_chunk(p_ext[:, 1:-1], p_ext[:, 2:], t_ext[:, 1:-1],
                           t_ext[:, 2:])  # [B, W]
    is_start = _start_of_chunk(p_ext[:, :-2], p_ext[:, 1:-1],
                               t_ext[:, :-2], t_ext[:, 1:-1])  # [B, W]
    index = tf.broadcast_to(tf.range(tf.shape(prefix)[1])[None],
                            tf.shape(prefix))  # [B, W]
    # seqeval's begin_offset: the latest start at or before j (0 if none).
    starts = tf.ragged.boolean_mask(index, is_start).to_tensor(0)  # [B, S]
    starts = tf.concat([starts, tf.zeros([batch, 1], tf.int32)], 1)
    seen = tf.cumsum(tf.cast(is_start, tf.int32), axis=1)  # [B, W]
    begin = tf.gather(starts, tf.maximum(seen - 1, 0), batch_dims=1)
    return (tf.ragged.boolean_mask(begin, is_end),
            tf.ragged.boolean_mask(index, is_end))


class _TokenModule(tf.Module):
    """AlbertTokenClassifier + in-graph tokenizer; signatures as methods."""

    def __init__(self, model: keras.Model,
                 tokenizer: in_graph.InGraphTokenizer,
                 label_list: Sequence[str], max_seq_length: int,
                 split_punctuation: bool):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.labels = tf.constant(list(label_list))  # [C]
        prefixes, kinds, names = token_metrics.chunk_tables(label_list)
        self.prefix_table = tf.constant(prefixes)  # [C]
        self.kind_table = tf.constant(kinds)  # [C]
        self.kind_names = tf.constant(names)
        whitespace = in_graph._patterns()[0]  # str.split()'s characters.
        if split_punctuation:
            self.delimiters = f"{whitespace}+|{_PUNCTUATION}"
            self.kept = _PUNCTUATION
        else:
            self.delimiters, self.kept = f"{whitespace}+", ""

    def _logits(self, input_ids, input_mask, segment_ids):
        features = {"input_ids": input_ids, "input_mask": input_mask,
                    "segment_ids": segment_ids}
        return tf.cast(self.model(features, training=False)["logits"],
                       tf.float32)  # [B, T, C]

    def serve(self, input_ids, input_mask, segment_ids):
        input_ids, input_mask, segment_ids = serving_checks.checked_ids(
            "serving_default", input_ids, input_mask, segment_ids,
            self.model.config)
        logits = self._logits(input_ids, input_mask, segment_ids)
        return {"logits": logits,
                "probabilities": tf.nn.softmax(logits, -1),
                "tag_ids": tf.argmax(logits, -1, output_type=tf.int32)}

    def serve_tokens(self, text):
        text, = serving_checks.checked("serve_tokens",
                                       [("text", text, ("B",))])
        words, begin, end = tf_text.regex_split_with_offsets(
            text, self.delimiters, self.kept)  # [B, (W)], byte offsets
        rows = words.value_rowids()  # [N]
        row_text = tf.gather(text, rows)  # [N]
        # Byte offsets -> code points: the length of the text before.
        zero = tf.zeros_like(begin.flat_values)
        start_char = tf.strings.length(tf.strings.substr(
            row_text, zero, begin.flat_values), unit="UTF8_CHAR")
        end_char = tf.strings.length(tf.strings.substr(
            row_text, zero, end.flat_values), unit="UTF8_CHAR")
        pieces = self.tokenizer(words.flat_values)  # [N, (p)] int32
        counts = tf.cast(pieces.row_lengths(), tf.int32)  # [N]
        ids = words.with_flat_values(pieces).merge_dims(1, 2)  # [B, (P)]
        input_ids, input_mask, segment_ids = export.pack(
            ids, None, self.max_seq_length)
        logits = self._logits(input_ids, input_mask, segment_ids)
        # Each word's first piece: after [CLS] and the pieces before it.
        before = words.with_flat_values(counts)  # [B, (W)]
        before = tf.cumsum(before.to_tensor(0), axis=1, exclusive=True)
        word_mask = tf.sequence_mask(words.row_lengths())  # [B, W]
        counts_dense = words.with_flat_values(counts).to_tensor(0)
        tagged = (word_mask & (counts_dense > 0)
                  & (before < self.max_seq_length - 2))  # [B, W]
        position = tf.where(tagged, before + 1, 0)
        at_word = tf.gather(logits, position, batch_dims=1)  # [B, W, C]
        probabilities = tf.nn.softmax(at_word, -1)
        tag_id = tf.argmax(at_word, -1, output_type=tf.int32)  # [B, W]
        prefix = tf.where(tagged, tf.gather(self.prefix_table, tag_id), _O)
        kind = tf.where(tagged, tf.gather(self.kind_table, tag_id), 0)
        word_tags = tf.where(tagged, tf.gather(self.labels, tag_id), "O")
        word_tags = tf.where(word_mask, word_tags, "")
        word_probability = tf.where(
            tagged, tf.reduce_max(probabilities, -1), 0.0)
        starts = words.with_flat_values(
            tf.cast(start_char, tf.int32)).to_tensor(-1)  # [B, W]
        ends = words.with_flat_values(
            tf.cast(end_char, tf.int32)).to_tensor(-1)  # [B, W]

        first, last = decode_chunks(prefix, kind)  # [B, (E)] each
        has_entity = tf.sequence_mask(first.row_lengths())  # [B, E]
        first, last = first.to_tensor(0), last.to_tensor(0)  # [B, E]
        entity_start = tf.gather(starts, first, batch_dims=1)
        entity_end = tf.gather(ends, last, batch_dims=1)
        entity_kind = tf.gather(kind, last, batch_dims=1)
        # Mean tag probability over the entity's words (cumulative sums).
        cum = tf.cumsum(word_probability, axis=1)  # [B, W]
        total = (tf.gather(cum, last, batch_dims=1)
                 - tf.gather(cum, first, batch_dims=1)
                 + tf.gather(word_probability, first, batch_dims=1))
        score = total / tf.cast(last - first + 1, tf.float32)
        texts = tf.broadcast_to(text[:, None], tf.shape(first))  # [B, E]
        entity_text = tf.strings.substr(
            texts, tf.maximum(entity_start, 0),
            tf.maximum(entity_end - entity_start, 0), unit="UTF8_CHAR")
        return {
            "words": words.to_tensor(""),
            "word_start": starts, "word_end": ends,
            "word_tags": word_tags, "word_probability": word_probability,
            "word_tagged": tagged,
            "num_words": tf.cast(words.row_lengths(), tf.int32),
            "entity_type": tf.where(
                has_entity, tf.gather(self.kind_names, entity_kind), ""),
            "entity_text": tf.where(has_entity, entity_text, ""),
            "entity_start": tf.where(has_entity, entity_start, -1),
            "entity_end": tf.where(has_entity, entity_end, -1),
            "entity_score": tf.where(has_entity, score, 0.0),
            "num_entities": tf.reduce_sum(
                tf.cast(has_entity, tf.int32), axis=1),
        }

    def signatures(self) -> dict:
        return {"serving_default": tf.function(
                    self.serve, input_signature=[_IDS, _IDS, _IDS]),
                "serve_tokens": tf.function(self.serve_tokens,
                                            input_signature=[_TEXT])}


def export_token_classifier(model: keras.Model, export_dir: str, *,
                            label_list: Sequence[str],
                            spm_model_file: str, do_lower_case: bool,
                            max_seq_length: int = 128,
                            split_punctuation: bool = True) -> str:
    """Writes the SavedModel (see the module docstring); returns its path.

    label_list: the tag of each label id, as the model was trained.
    The SavedModel is written beside export_dir and renamed into place.
    """
    if not isinstance(model, AlbertTokenClassifier):
        raise ValueError(f"export_token_classifier needs an "
                         f"AlbertTokenClassifier, got {type(model).__name__}")
    if len(label_list) != model.num_labels:
        raise ValueError(f"label_list has {len(label_list)} tags but the "
                         f"model has num_labels={model.num_labels}")
    if not spm_model_file:
        raise ValueError("export_token_classifier needs spm_model_file: "
                         "serve_tokens tokenizes raw text in the graph")
    export._check_max_seq_length(model, max_seq_length)
    tokenizer, _ = export._tokenizer(spm_model_file, do_lower_case,
                                     model.config.vocab_size)
    module = _TokenModule(model, tokenizer, label_list, max_seq_length,
                          split_punctuation)
    return export._save(module, export_dir, module.signatures(),
                        spm_model_file=spm_model_file,
                        do_lower_case=do_lower_case,
                        max_seq_length=max_seq_length,
                        num_labels=model.num_labels,
                        label_list=list(label_list))
