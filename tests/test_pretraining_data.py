"""Pretraining data: the original algorithm, reproducibility, bad input."""

import collections
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from albert_tf.data import create_pretraining as pipeline
from albert_tf.data import features
from albert_tf.data import pretraining_data as pd
from albert_tf.tokenization import FullTokenizer
from conftest import make_sentences

CLS, SEP, MASK = 2, 3, 4
# Synthetic vocabulary: ids 0..V-1; random replacements draw from all.
VOCAB = pd.VocabIds(cls_id=CLS, sep_id=SEP, mask_id=MASK,
                    vocab_ids=tuple(range(5000)))


def synthetic_documents(num_docs=12, seed=0):
    """Every token id encodes (doc, segment, position): 1000*d+50*s+k+100.

    All tokens are word starts, so masking never has to respect words.
    """
    rng = random.Random(seed)
    docs = []
    for d in range(num_docs):
        num_segments = 1 if d % 5 == 0 else rng.randint(2, 8)
        docs.append([[pd.pack_token(100 + 1000 * d + 50 * s + k, True)
                      for k in range(rng.randint(2, 9))]
                     for s in range(num_segments)])
    return docs


def decode(token_id):
    t = token_id - 100
    return t // 1000, (t % 1000) // 50


def split_pair(ids):
    first_sep = ids.index(SEP)
    assert ids[0] == CLS and ids[-1] == SEP
    return ids[1:first_sep], ids[first_sep + 1:-1]


def make(docs, config, seed=0, stats=None):
    rng, np_rng = random.Random(seed), np.random.RandomState(seed)
    sampler = pd.NgramSampler(config.ngram, config.favor_shorter_ngram)
    out = []
    for i in range(len(docs)):
        out += pd.create_instances_from_document(
            docs, i, config, VOCAB, sampler, rng, np_rng, stats)
    return out


@pytest.mark.parametrize("random_next_sentence", [False, True])
def test_sop_labels_by_reconstructing_a_and_b(random_next_sentence):
    # Long enough that nothing is truncated (documents have <= 72 tokens).
    config = pd.PretrainingConfig(max_seq_length=200, short_seq_prob=0.0,
                                  masked_lm_prob=0.0,
                                  random_next_sentence=random_next_sentence)
    docs = synthetic_documents(30)
    labels = collections.Counter()
    for seed in range(20):
        for inst in make(docs, config, seed):
            a, b = split_pair(inst.input_ids)
            assert inst.segment_ids == [0] * (len(a) + 2) + [1] * (len(b) + 1)
            a_docs = {decode(t)[0] for t in a}
            b_docs = {decode(t)[0] for t in b}
            assert len(a_docs) == 1 and len(b_docs) == 1
            a_seg = [decode(t)[1] for t in a]
            b_seg = [decode(t)[1] for t in b]
            if a_docs != b_docs:
                kind = "random_document"
                assert inst.is_random_next
                if not random_next_sentence:  # Only one-segment chunks.
                    assert len(set(a_seg)) == 1
            elif max(a_seg) < min(b_seg):
                kind = "in_order"
                assert not inst.is_random_next
                assert min(b_seg) == max(a_seg) + 1  # B continues A.
            else:
                kind = "swapped"
                assert inst.is_random_next and not random_next_sentence
                assert min(a_seg) == max(b_seg) + 1  # A and B swapped.
            labels[kind] += 1
    assert labels["random_document"] > 0 and labels["in_order"] > 0
    if not random_next_sentence:
        # Multi-segment chunks: swapped with probability 1/2.
        pairs = labels["in_order"] + labels["swapped"]
        assert labels["in_order"] / pairs == pytest.approx(0.5, abs=0.08)


@pytest.mark.parametrize("random_next_sentence", [False, True])
def test_skip_single_segment_chunks_gives_pure_pairs(random_next_sentence):
    # Held-out evaluation sets: SOP without random-document negatives, NSP
    # without one-segment chunks; the default keeps the original's.
    base = pd.PretrainingConfig(max_seq_length=200, short_seq_prob=0.0,
                                masked_lm_prob=0.0,
                                random_next_sentence=random_next_sentence)
    skip = dataclasses.replace(base, skip_single_segment_chunks=True)
    docs = synthetic_documents(30)  # Every 5th has one segment.
    kinds = collections.Counter()
    default_random = 0
    for seed in range(20):
        default_random += sum(
            {decode(t)[0] for t in split_pair(i.input_ids)[0]}
            != {decode(t)[0] for t in split_pair(i.input_ids)[1]}
            for i in make(docs, base, seed))
        for inst in make(docs, skip, seed):
            a, b = split_pair(inst.input_ids)
            # Each side comes from one document.
            a_doc = {decode(t)[0] for t in a}
            b_doc = {decode(t)[0] for t in b}
            assert len(a_doc) == 1 and len(b_doc) == 1
            if a_doc != b_doc:
                assert random_next_sentence and inst.is_random_next
                kinds["random_document"] += 1
            else:
                assert decode(a[0])[0] % 5 != 0  # No one-segment document.
                kinds["same_document", inst.is_random_next] += 1
    assert default_random > 0
    if random_next_sentence:
        n = kinds["random_document"] + kinds["same_document", False]
        assert kinds["same_document", True] == 0
        assert kinds["random_document"] / n == pytest.approx(0.5, abs=0.08)
    else:
        assert kinds["random_document"] == 0
        n = kinds["same_document", True] + kinds["same_document", False]
        assert kinds["same_document", True] / n == pytest.approx(0.5,
                                                                  abs=0.08)


def test_truncate_seq_pair_trims_the_longer_side_from_both_ends():
    rng = random.Random(0)
    fronts = backs = 0
    for _ in range(200):
        a, b = list(range(30)), list(range(100, 110))
        pd.truncate_seq_pair(a, b, 25, rng)
        assert len(a) + len(b) == 25 and b == list(range(100, 110))
        fronts += a[0] != 0
        backs += a[-1] != 29
    assert fronts > 150 and backs > 150


def _original_truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng):
    """create_pretraining_data.truncate_seq_pair of the original, as is."""
    while True:
        total_length = len(tokens_a) + len(tokens_b)
        if total_length <= max_num_tokens:
            break
        trunc_tokens = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        assert len(trunc_tokens) >= 1
        if rng.random() < 0.5:
            del trunc_tokens[0]
        else:
            trunc_tokens.pop()


def test_truncate_seq_pair_equals_the_original_draw_for_draw():
    cases = random.Random(5)
    for case in range(2000):
        a = list(range(cases.randint(0, 60)))
        b = list(range(1000, 1000 + cases.randint(0, 60)))
        limit = cases.randint(2, 100)
        ours_a, ours_b, ref_a, ref_b = list(a), list(b), list(a), list(b)
        ours, ref = random.Random(case), random.Random(case)
        pd.truncate_seq_pair(ours_a, ours_b, limit, ours)
        _original_truncate_seq_pair(ref_a, ref_b, limit, ref)
        assert (ours_a, ours_b) == (ref_a, ref_b), (case, len(a), len(b))
        assert ours.random() == ref.random()  # Same number of draws.


class _CountingList(list):
    """Counts calls that remove elements (the original: one per token)."""

    removals = 0

    def __delitem__(self, index):
        type(self).removals += 1
        super().__delitem__(index)

    def pop(self, *args):
        type(self).removals += 1
        return super().pop(*args)


def test_truncate_seq_pair_cuts_a_long_document_once_per_end():
    # A one-line document of 2M tokens against a short B: the original made
    # 2M single-token deletions (quadratic in total); this cuts each end of
    # each side at most once.
    _CountingList.removals = 0
    a = _CountingList(range(2_000_000))
    b = _CountingList(range(5))
    pd.truncate_seq_pair(a, b, 509, random.Random(0))
    assert len(a) + len(b) == 509 and b == list(range(5))
    assert _CountingList.removals <= 4
    assert a == list(range(a[0], a[0] + len(a)))  # One contiguous window.
    assert 0 < a[0] < 2_000_000 - len(a)  # Cut from both ends.


def test_fast_shuffle_is_random_shuffle_draw_for_draw():
    for n in (0, 1, 2, 7, 64, 1000):
        ours, ref = random.Random(n), random.Random(n)
        x, y = list(range(n)), list(range(n))
        pd.shuffle(ours, x)
        ref.shuffle(y)
        assert x == y and ours.random() == ref.random()


def test_ngram_sampler_equals_numpy_choice_and_follows_one_over_n():
    for favor_shorter in (True, False):
        sampler = pd.NgramSampler(3, favor_shorter)
        ours, ref = np.random.RandomState(7), np.random.RandomState(7)
        draws = [sampler.draw(ours) for _ in range(20000)]
        expected = [ref.choice(np.arange(1, 4), p=sampler.pvals)
                    for _ in range(20000)]
        assert draws == expected
        p = np.array([6, 3, 2]) / 11
        if not favor_shorter:
            p = p[::-1]
        freq = np.bincount(draws, minlength=4)[1:] / len(draws)
        sigma = np.sqrt(p * (1 - p) / len(draws))
        assert np.all(np.abs(freq - p) < 4 * sigma), freq


def test_masking_budget_specials_and_80_10_10():
    config = pd.PretrainingConfig(max_seq_length=128, short_seq_prob=0.1,
                                  max_predictions_per_seq=7)
    docs = synthetic_documents(40, seed=3)
    stats = pd.Stats()
    kinds = collections.Counter()
    for seed in range(30):
        for inst in make(docs, config, seed, stats):
            ids, pos = inst.input_ids, inst.masked_lm_positions
            n = len(ids)
            expected = min(7, max(1, int(round(n * 0.15))))
            assert len(pos) <= expected
            assert pos == sorted(set(pos)) and all(0 <= p < n for p in pos)
            for p, label in zip(pos, inst.masked_lm_ids):
                assert label not in (CLS, SEP)
                kinds["mask" if ids[p] == MASK else
                      "keep" if ids[p] == label else "random"] += 1
            original = list(ids)  # Random replacements may draw [SEP].
            for p, label in zip(pos, inst.masked_lm_ids):
                original[p] = label
            specials = [i for i, t in enumerate(original) if t in (CLS, SEP)]
            assert len(specials) == 3 and not set(specials) & set(pos)
            assert all(inst.token_boundary[i] == 1 for i in specials)
    total = sum(kinds.values())
    assert total > 3000
    for kind, p in (("mask", 0.8), ("keep", 0.1), ("random", 0.1)):
        sigma = np.sqrt(p * (1 - p) / total)
        assert abs(kinds[kind] / total - p) < 4 * sigma, kinds
    assert stats.masked == total
    assert stats.replaced_mask + stats.replaced_keep + stats.replaced_random \
        == total


def _words(tokens):
    """The original's words: a non-start piece joins the previous word."""
    words, ids = [], [t >> 1 for t in tokens]
    for i, t in enumerate(tokens):
        if ids[i] in (CLS, SEP):
            continue
        if words and not t & 1:
            words[-1].append(i)
        else:
            words.append([i])
    return words


def _tokenized_docs(tiny_spm, block_bytes=1 << 20):
    pipeline.init_worker(None, tiny_spm["model"], True)
    options = pipeline.PipelineOptions(block_bytes=block_bytes)
    blocks = pipeline.read_blocks([tiny_spm["corpus"]], options,
                                  collections.Counter())
    docs = []
    for item in enumerate(blocks):
        docs += pipeline.tokenize_block(item)[0]
    return docs


def _partial_words(tiny_spm, whole_word):
    docs = [pipeline.unpack(d) for d in _tokenized_docs(tiny_spm)]
    config = pd.PretrainingConfig(max_seq_length=64, short_seq_prob=0.0,
                                  max_predictions_per_seq=12,
                                  do_whole_word_mask=whole_word)
    partial = multi_piece = 0
    for seed in range(3):
        rng, np_rng = random.Random(seed), np.random.RandomState(seed)
        sampler = pd.NgramSampler(3, True)
        for i in range(len(docs)):
            for inst in pd.create_instances_from_document(
                    docs, i, config, VOCAB, sampler, rng, np_rng):
                # Rebuild packed input tokens: labels restore masked ids.
                ids = list(inst.input_ids)
                for p, label in zip(inst.masked_lm_positions,
                                    inst.masked_lm_ids):
                    ids[p] = label
                starts = [inst.token_boundary[i] for i in range(len(ids))]
                tokens = [t << 1 | s for t, s in zip(ids, starts)]
                masked = set(inst.masked_lm_positions)
                for word in _words(tokens):
                    multi_piece += len(word) > 1
                    hit = len(masked.intersection(word))
                    partial += 0 < hit < len(word)
    assert multi_piece > 100  # The fixture has many multi-piece words.
    return partial


def test_whole_word_masking_never_masks_part_of_a_word(tiny_spm):
    assert _partial_words(tiny_spm, whole_word=True) == 0
    # The check can fail: per-piece masking does split words.
    assert _partial_words(tiny_spm, whole_word=False) > 0


def test_word_start_rule_matches_original_quirks():
    assert pd.is_start_piece_sp("▁the") and pd.is_start_piece_sp("<unk>")
    assert not pd.is_start_piece_sp("ing") and not pd.is_start_piece_sp("S")
    assert pd.is_start_piece_sp(",") and pd.is_start_piece_sp("9")
    assert pd.is_start_piece_sp("é") and pd.is_start_piece_sp("€")
    assert pd.is_start_piece_sp("'s")  # "'" is missing from the set.
    assert not pd.is_start_piece_sp("a.b")
    assert pd.is_start_piece_bert("un") and not pd.is_start_piece_bert("##a")


def test_block_boundaries_do_not_change_documents(tiny_spm):
    big = _tokenized_docs(tiny_spm)
    small = _tokenized_docs(tiny_spm, block_bytes=200)
    assert len(big) == len(small) == 40
    for (t1, l1), (t2, l2) in zip(big, small):
        assert np.array_equal(t1, t2) and np.array_equal(l1, l2)


def test_encode_example_parses_like_tf_train_example():
    values = {"input_ids": [0, 1, 127, 128, 29999, 40000, 2**40],
              "input_mask": [], "masked_lm_weights": [1.0, 0.5, 0.0],
              "next_sentence_labels": [1]}
    ours = tf.train.Example.FromString(
        features.encode_example(features.PRETRAINING, values))
    ref = tf.train.Example()
    for name in ("input_ids", "input_mask", "next_sentence_labels"):
        ref.features.feature[name].int64_list.value.extend(values[name])
    ref.features.feature["masked_lm_weights"].float_list.value.extend(
        values["masked_lm_weights"])
    assert ours == ref


def _run(tiny_spm, out_dir, seed=12345, workers=1, **kwargs):
    out = f"{out_dir}/a.tfrecord,{out_dir}/b.tfrecord"
    input_file = kwargs.pop("input_file", tiny_spm["corpus"])
    config = pd.PretrainingConfig(max_seq_length=48,
                                  max_predictions_per_seq=6)
    options = pipeline.PipelineOptions(num_workers=workers, unit_tokens=300,
                                       shuffle_buffer_docs=7,
                                       reservoir_docs=5,
                                       output_shuffle_buffer=50)
    settings = dict(vocab_file=None, spm_model_file=tiny_spm["model"],
                    do_lower_case=True, config=config, random_seed=seed,
                    dupe_factor=2, options=options,
                    stats_file=f"{out_dir}/stats.json")
    settings.update(kwargs)
    summary = pipeline.create_pretraining_data(input_file, out, **settings)
    data = [open(p, "rb").read() for p in out.split(",")]
    return data, summary


def test_same_seed_same_bytes_and_workers_do_not_matter(tiny_spm, tmp_path):
    (tmp_path / "1").mkdir(), (tmp_path / "2").mkdir()
    (tmp_path / "3").mkdir(), (tmp_path / "w").mkdir()
    first, summary = _run(tiny_spm, tmp_path / "1")
    again, _ = _run(tiny_spm, tmp_path / "2")
    other, _ = _run(tiny_spm, tmp_path / "3", seed=1)
    parallel, _ = _run(tiny_spm, tmp_path / "w", workers=2)
    assert first == again and first == parallel
    assert first != other
    stats = json.loads((tmp_path / "1" / "stats.json").read_text())
    assert stats == json.loads(json.dumps(summary))
    assert stats["documents"] == 40
    # Every record parses with the original schema and is consistent.
    spec = features.to_tf_spec(features.PRETRAINING, L=48, P=6)
    count = 0
    for path in (tmp_path / "w" / "a.tfrecord", tmp_path / "w" / "b.tfrecord"):
        for record in tf.data.TFRecordDataset(str(path)):
            ex = {k: v.numpy() for k, v in
                  tf.io.parse_single_example(record, spec).items()}
            n = int(ex["input_mask"].sum())
            assert np.all(ex["input_mask"][:n] == 1)
            assert np.all(ex["input_ids"][n:] == 0)
            m = int(ex["masked_lm_weights"].sum())
            assert np.all(ex["masked_lm_positions"][:m] < n)
            assert ex["next_sentence_labels"][0] in (0, 1)
            count += 1
    assert count == stats["instances"] > 100
    assert sum(stats["ngram_histogram"].values()) > 0
    assert stats["sop"]["label_0"] + stats["sop"]["label_1"] == count


def test_glob_without_matches_is_a_clear_error(tiny_spm, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        _run(tiny_spm, tmp_path, input_file=str(tmp_path / "nothing-here*"))


def test_empty_corpus_is_a_clear_error(tiny_spm, tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n  \n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty corpus"):
        _run(tiny_spm, tmp_path, input_file=str(path))


def test_empty_documents_are_skipped_and_counted(tiny_spm, tmp_path):
    path = tmp_path / "gaps.txt"
    # Documents: [a, b], [], [] (a whitespace-only line also separates),
    # [c, d, e].
    path.write_text("ka ri to.\nne mu.\n\n\n \t\nsa lo.\npe di.\nga bu.\n",
                    encoding="utf-8")
    _, summary = _run(tiny_spm, tmp_path, input_file=str(path))
    assert summary["documents"] == 2
    assert summary["empty_documents_skipped"] == 2


def test_invalid_utf8_names_file_and_line_or_is_replaced(tiny_spm,
                                                         tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"ka ri to.\nne \xff\xfe mu.\n\nsa lo.\npe di.\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2: invalid UTF-8"):
        _run(tiny_spm, tmp_path, input_file=str(path))
    options = dataclasses.replace(pipeline.PipelineOptions(),
                                  invalid_utf8="replace", unit_tokens=300)
    _, summary = _run(tiny_spm, tmp_path, input_file=str(path),
                      options=options)
    assert summary["invalid_utf8_lines"] == 1
    assert summary["documents"] == 2


def _leftovers(directory):
    return sorted(p.name for p in directory.rglob("*") if ".tmp" in p.name
                  or p.name.startswith("albert_docs"))


def test_failed_run_leaves_no_temporaries(tiny_spm, tmp_path):
    path = tmp_path / "bad.txt"
    # The bad line comes after enough text that the document cache exists.
    path.write_bytes(open(tiny_spm["corpus"], "rb").read() + b"\n\xff\n")
    with pytest.raises(ValueError, match=r"bad\.txt:\d+: invalid UTF-8"):
        _run(tiny_spm, tmp_path, input_file=str(path))
    assert _leftovers(tmp_path) == []
    assert not (tmp_path / "a.tfrecord").exists()


def test_outputs_are_checked_before_any_work(tiny_spm, tmp_path,
                                             monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("tokenizing started before outputs were checked")

    monkeypatch.setattr(pipeline, "make_pool", no_work)
    monkeypatch.setattr(pipeline, "read_blocks", no_work)
    (tmp_path / "ok").mkdir()
    (tmp_path / "a_file").write_text("not a directory")
    settings = dict(vocab_file=None, spm_model_file=tiny_spm["model"],
                    do_lower_case=True, config=pd.PretrainingConfig(),
                    random_seed=1, dupe_factor=1,
                    options=pipeline.PipelineOptions())
    # The second output's directory cannot be created.
    second = tmp_path / "a_file" / "sub" / "b.tfrecord"
    with pytest.raises(ValueError, match=r"--output_file: cannot write .*"
                                         r"a_file/sub/b\.tfrecord"):
        pipeline.create_pretraining_data(
            tiny_spm["corpus"], f"{tmp_path / 'ok' / 'a.tfrecord'},{second}",
            **settings)
    with pytest.raises(ValueError, match=r"--stats_file: cannot write"):
        pipeline.create_pretraining_data(
            tiny_spm["corpus"], str(tmp_path / "ok" / "a.tfrecord"),
            stats_file=str(tmp_path / "a_file" / "stats.json"), **settings)
    with pytest.raises(ValueError, match=r"corpus\.txt is also an input"):
        pipeline.create_pretraining_data(
            tiny_spm["corpus"], tiny_spm["corpus"], **settings)
    with pytest.raises(ValueError, match=r"a\.tfrecord is named twice"):
        pipeline.create_pretraining_data(
            tiny_spm["corpus"], f"{tmp_path}/ok/a.tfrecord,"
            f"{tmp_path}/ok/./a.tfrecord", **settings)
    assert _leftovers(tmp_path) == []
    assert list((tmp_path / "ok").iterdir()) == []


def test_missing_output_directories_are_created(tiny_spm, tmp_path):
    data, _ = _run(tiny_spm, tmp_path / "new" / "sub")
    assert all(data) and _leftovers(tmp_path) == []


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args):
    return subprocess.run([sys.executable, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_create_pretraining_data_command_line(tiny_spm, tmp_path):
    out = f"{tmp_path}/x.tfrecord,{tmp_path}/y.tfrecord"
    result = _cli("create_pretraining_data.py",
                  f"--input_file={tiny_spm['corpus']}", f"--output_file={out}",
                  f"--spm_model_file={tiny_spm['model']}",
                  "--max_seq_length=32", "--max_predictions_per_seq=4",
                  "--dupe_factor=2", "--do_permutation", "--random_seed=3",
                  f"--stats_file={tmp_path}/stats.json")
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["settings"]["max_seq_length"] == 32
    assert stats["settings"]["do_permutation"] is True
    # The flags reached the records: L=32, 2P=8 slots with do_permutation.
    spec = features.to_tf_spec(features.PRETRAINING,
                               **features.pretraining_dims(32, 4, True))
    count = 0
    for path in out.split(","):
        for record in tf.data.TFRecordDataset(path):
            ex = tf.io.parse_single_example(record, spec)
            assert ex["input_mask"].numpy().sum() <= 32
            count += 1
    assert count == stats["instances"] > 10
    # A wrong flag is an error naming it.
    result = _cli("create_pretraining_data.py",
                  f"--input_file={tiny_spm['corpus']}", f"--output_file={out}")
    assert result.returncode != 0
    assert "--vocab_file or --spm_model_file" in result.stderr


def test_sigterm_removes_temporary_outputs_and_cache(tiny_spm, tmp_path):
    out = f"{tmp_path}/x.tfrecord,{tmp_path}/y.tfrecord"
    proc = subprocess.Popen(
        [sys.executable, "create_pretraining_data.py",
         f"--input_file={tiny_spm['corpus']}", f"--output_file={out}",
         f"--spm_model_file={tiny_spm['model']}", "--max_seq_length=32",
         "--max_predictions_per_seq=4", "--dupe_factor=1000000",
         "--output_shuffle_buffer=10", "--num_workers=2"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)
    temp = tmp_path / f"x.tfrecord.tmp{proc.pid}"
    try:
        deadline = time.time() + 120
        # Wait until it is writing records (past tokenizing).
        while not (temp.exists() and temp.stat().st_size > 0):
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.time() < deadline, "never started writing"
            time.sleep(0.05)
        assert _leftovers(tmp_path)  # Temporaries and the cache exist.
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "SIGTERM" in stderr
    assert _leftovers(tmp_path) == []
    assert not (tmp_path / "x.tfrecord").exists()


def test_train_spm_command_line(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(make_sentences(3, 2000)) + "\n",
                    encoding="utf-8")
    prefix = tmp_path / "cli_spm"
    result = _cli("-m", "albert_tf.tokenization.train_spm",
                  f"--input={text}", f"--model_prefix={prefix}",
                  "--vocab_size=200", "--hard_vocab_limit=false",
                  "--preprocess")
    assert result.returncode == 0, result.stderr[-3000:]
    tokenizer = FullTokenizer(spm_model_file=f"{prefix}.model")
    assert [tokenizer.special_id(s) for s in ("[CLS]", "[SEP]", "[MASK]")] \
        == [2, 3, 4]
    ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize("ka ri to."))
    assert ids and all(0 <= i < 200 for i in ids)
    assert os.path.exists(f"{prefix}.vocab")
