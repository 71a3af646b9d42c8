"""Raw text -> ALBERT pretraining TFRecords (SOP + n-gram masking).

Every flag of the original create_pretraining_data.py, with the same name
and default, plus flags for streaming and parallelism. The algorithm and
the output features are the original's; see albert_tf/data/create_pretraining.py
for what changed (bounded memory, workers, seeded numpy draws) and
albert_tf/data/pretraining_data.py for the algorithm.

  python create_pretraining_data.py --input_file='corpus/*.txt' \
      --output_file=out/train-0.tfrecord,out/train-1.tfrecord \
      --spm_model_file=30k-clean.model --vocab_file=30k-clean.vocab \
      --num_workers=2 --stats_file=out/stats.json

Input: one sentence per line, a blank line between documents.

Deviations in flag handling: `vocab_file` is required only without
`spm_model_file` (the original always required it and ignored it with
SPM); `input_file_mode` is accepted ('r' or 'rb') but files are always read
as bytes and decoded as strict UTF-8 (see --invalid_utf8); a glob that
matches nothing is an error instead of silently producing nothing; every
output is checked (directory created if missing, writable) before any work.
Inputs and outputs may be gs:// (tf.io.gfile). On SIGTERM or Ctrl-C the
temporary outputs and the document cache are removed and the exit status
is non-zero.

--masked_lm_budget is not a flag of this script: it belongs to the
original run_pretraining.py (see run_pretraining.py here).
"""

from absl import app
from absl import flags

from albert_tf.data import create_pretraining
from albert_tf.data import pretraining_data

FLAGS = flags.FLAGS

# The original's flags, names and defaults unchanged.
flags.DEFINE_string("input_file", None,
                    "Input raw text file (or comma-separated list of files); "
                    "each entry may be a glob.")
flags.DEFINE_string("output_file", None,
                    "Output TF example file (or comma-separated list of "
                    "files); instances are written round-robin.")
flags.DEFINE_string("vocab_file", None,
                    "The vocabulary file that the ALBERT model was trained "
                    "on (WordPiece vocab.txt when no spm_model_file).")
flags.DEFINE_string("spm_model_file", None,
                    "The model file for sentence piece tokenization.")
flags.DEFINE_string("input_file_mode", "r",
                    "The data format of the input file. Accepted for "
                    "compatibility; input is always decoded as UTF-8.")
flags.DEFINE_bool("do_lower_case", True,
                  "Whether to lower case the input text. Should be True for "
                  "uncased models and False for cased models.")
flags.DEFINE_bool("do_whole_word_mask", True,
                  "Whether to use whole word masking rather than per-piece "
                  "masking.")
flags.DEFINE_bool("do_permutation", False,
                  "Whether to do the permutation training. The masked_lm_* "
                  "features get 2 * max_predictions_per_seq slots, as in the "
                  "original; run_pretraining reads them with the same "
                  "--max_predictions_per_seq.")
flags.DEFINE_bool("favor_shorter_ngram", True,
                  "Whether to set higher probabilities for sampling shorter "
                  "ngrams.")
flags.DEFINE_bool("random_next_sentence", False,
                  "True: NSP-style negatives (B from a random document). "
                  "False (default): SOP, negatives swap A and B. (The "
                  "original help text had this inverted.)")
flags.DEFINE_bool("skip_single_segment_chunks", False,
                  "Not in the original: drop one-segment chunks instead of "
                  "pairing them with a random document (label 1) in SOP "
                  "mode too, so SOP data is pure sentence order; for "
                  "held-out SOP/NSP evaluation sets.")
flags.DEFINE_integer("max_seq_length", 512, "Maximum sequence length.")
flags.DEFINE_integer("ngram", 3, "Maximum number of ngrams to mask.")
flags.DEFINE_integer("max_predictions_per_seq", 20,
                     "Maximum number of masked LM predictions per sequence.")
flags.DEFINE_integer("random_seed", 12345, "Random seed for data generation.")
flags.DEFINE_integer("dupe_factor", 40,
                     "Number of times to duplicate the input data (with "
                     "different masks).")
flags.DEFINE_float("masked_lm_prob", 0.15, "Masked LM probability.")
flags.DEFINE_float("short_seq_prob", 0.1,
                   "Probability of creating sequences which are shorter than "
                   "the maximum length.")

# Additions: parallelism, bounded memory, reporting.
flags.DEFINE_integer("num_workers", 1,
                     "Worker processes. Output bytes do not depend on it.")
flags.DEFINE_string("stats_file", None,
                    "If set, write statistics of the output here as JSON.")
flags.DEFINE_enum("invalid_utf8", "error", ["error", "replace"],
                  "error: stop at the first invalid line, naming file and "
                  "line. replace: use U+FFFD and log how many lines.")
flags.DEFINE_integer("shuffle_buffer_docs", 10_000,
                     "Documents in the per-pass shuffle buffer.")
flags.DEFINE_integer("reservoir_docs", 256,
                     "Documents kept as random-document candidates.")
flags.DEFINE_integer("output_shuffle_buffer", 10_000,
                     "Instances in the output shuffle buffer.")
flags.DEFINE_integer("unit_tokens", 200_000,
                     "Tokens per work unit sent to a worker.")

flags.mark_flags_as_required(["input_file", "output_file"])
flags.register_validator(
    "input_file_mode", lambda mode: mode in ("r", "rb"),
    message="--input_file_mode must be 'r' or 'rb'")
flags.register_multi_flags_validator(
    ["vocab_file", "spm_model_file"],
    lambda f: bool(f["vocab_file"] or f["spm_model_file"]),
    message="one of --vocab_file or --spm_model_file is required")


def main(argv):
    del argv  # Unused.
    config = pretraining_data.PretrainingConfig(
        max_seq_length=FLAGS.max_seq_length,
        short_seq_prob=FLAGS.short_seq_prob,
        masked_lm_prob=FLAGS.masked_lm_prob,
        max_predictions_per_seq=FLAGS.max_predictions_per_seq,
        ngram=FLAGS.ngram,
        do_whole_word_mask=FLAGS.do_whole_word_mask,
        favor_shorter_ngram=FLAGS.favor_shorter_ngram,
        do_permutation=FLAGS.do_permutation,
        random_next_sentence=FLAGS.random_next_sentence,
        skip_single_segment_chunks=FLAGS.skip_single_segment_chunks)
    options = create_pretraining.PipelineOptions(
        num_workers=FLAGS.num_workers,
        shuffle_buffer_docs=FLAGS.shuffle_buffer_docs,
        reservoir_docs=FLAGS.reservoir_docs,
        unit_tokens=FLAGS.unit_tokens,
        output_shuffle_buffer=FLAGS.output_shuffle_buffer,
        invalid_utf8=FLAGS.invalid_utf8)
    create_pretraining.create_pretraining_data(
        FLAGS.input_file, FLAGS.output_file, vocab_file=FLAGS.vocab_file,
        spm_model_file=FLAGS.spm_model_file,
        do_lower_case=FLAGS.do_lower_case, config=config,
        random_seed=FLAGS.random_seed, dupe_factor=FLAGS.dupe_factor,
        options=options, stats_file=FLAGS.stats_file)


if __name__ == "__main__":
    app.run(main)
