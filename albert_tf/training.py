"""The one train / eval loop, shared by every task.

A task supplies the model, the optimizer and two functions of (outputs,
features): `loss_terms` -> {name: (numerator, denominator)} and
`metric_sums` -> {name: (numerator, denominator)}. The loop divides each loss
numerator by the denominator summed over all replicas, so a run over N
replicas computes the same loss and gradients as one device at the same
global batch (the original's TPU shards each normalised their own loss in
run_pretraining.model_fn, under CrossShardOptimizer). Gradients are clipped
to global norm 1.0 after they are summed over replicas, for the same reason.

With gradient_accumulation_steps = K > 1, each replica's batch is cut into
K micro-batches run one after another in a tf.while_loop (one copy of the
model in the graph). Each micro-batch's loss numerator is divided by the
denominator of the whole global batch (Task.loss_denominators, known from
the features before any forward pass), so the summed gradient is exactly
that of the unaccumulated batch; clipping, the optimizer update and the
learning-rate schedule then see one step, as without accumulation.

Training runs `iterations_per_loop` steps per host call inside one
tf.function. Checkpoints (model, optimizer, step and, where the strategy
allows, the input iterator) go through tf.train.CheckpointManager, so a rerun
of the same command resumes where the last checkpoint left off.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import time
from typing import Callable, Protocol

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from albert_tf import fileio
from albert_tf import optimization

DTYPE_POLICIES = {"float32": None, "bfloat16": "mixed_bfloat16",
                  "float16": "mixed_float16"}
CHECKPOINT_NAME = "ckpt"
BEST_DIR = "best"
EVAL_HISTORY = "eval_history.json"
BEST_TRIAL = "best_trial.txt"


def dtype_policy(dtype: str) -> str | None:
    """The Keras policy for --dtype (variables stay float32)."""
    if dtype not in DTYPE_POLICIES:
        raise ValueError(f"dtype={dtype!r}; expected one of "
                         f"{sorted(DTYPE_POLICIES)}")
    return DTYPE_POLICIES[dtype]


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """How long and how to train, independent of the task."""

    output_dir: str
    num_train_steps: int
    train_batch_size: int  # Global, over all replicas.
    save_checkpoints_steps: int = 5000
    keep_checkpoint_max: int | None = 5  # None keeps every checkpoint.
    iterations_per_loop: int = 1000
    log_every_n_steps: int = 100
    jit_compile: bool = False
    checkpoint_input_pipeline: bool = True
    # Micro-batches per optimizer step; train_batch_size stays the global
    # batch of one step (so the update and the schedule do not change).
    gradient_accumulation_steps: int = 1
    # An evaluator without training polls output_dir this often.
    eval_poll_seconds: float = 60.0

    def __post_init__(self):
        for name in ("num_train_steps", "train_batch_size",
                     "save_checkpoints_steps", "iterations_per_loop",
                     "log_every_n_steps", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.train_batch_size % self.gradient_accumulation_steps:
            raise ValueError(
                f"train_batch_size={self.train_batch_size} is not divisible "
                f"by gradient_accumulation_steps="
                f"{self.gradient_accumulation_steps}: each micro-batch is "
                f"train_batch_size / gradient_accumulation_steps examples")


class Task(Protocol):
    """What the loop needs from a task (pretraining, GLUE, ...)."""

    def build_model(self) -> keras.Model: ...

    def build_optimizer(self) -> keras.optimizers.Optimizer: ...

    def loss_terms(self, outputs: dict, features: dict,
                   num_replicas: int) -> dict: ...

    def metric_sums(self, outputs: dict, features: dict) -> dict: ...

    def loss_denominators(self, features: dict,
                          num_replicas: int) -> dict:
        """{name: denominator} of loss_terms, from the features alone.

        Needed for gradient accumulation only: the denominators of the
        whole batch must be known before its micro-batches run.
        """


def _training_name(metric: str) -> str:
    """A metric of the training batches, named as such in logs and
    TensorBoard: a task's `eval_accuracy` measured on the batches just
    trained on is `train_batch_accuracy`, not a dev-set result."""
    if metric.startswith("eval_"):
        return "train_batch_" + metric[len("eval_"):]
    return metric


def _ratio(sums: dict) -> dict[str, float]:
    return {name: float(num) / max(float(den), 1e-12)
            for name, (num, den) in sums.items()}


def format_results(results: dict) -> str:
    """`key = value` lines, sorted, as the original eval_results.txt."""
    return "".join(f"{key} = {results[key]}\n" for key in sorted(results))


def write_results(path: str, results: dict) -> None:
    fileio.write_atomic(path, format_results(results))


def read_results(path: str) -> dict[str, float]:
    """Parses a `key = value` file written by write_results."""
    results = {}
    for line in fileio.read_text(path).splitlines():
        key, _, value = line.partition(" = ")
        results[key] = float(value)
    return results


def best_checkpoint(history: dict, key_metric: str) -> str | None:
    """The name of the best evaluated checkpoint; ties keep the earliest.

    As the original's `if result[key_name] > best_perf` over checkpoints in
    step order: a later checkpoint must be strictly better to win.
    """
    best = None
    for name in sorted(history, key=lambda n: history[n]["global_step"]):
        if best is None or (history[name][key_metric]
                            > history[best][key_metric]):
            best = name
    return best


def checkpoint_step(path: str) -> int | None:
    match = re.search(rf"{CHECKPOINT_NAME}-(\d+)(\.index)?$", path)
    return int(match.group(1)) if match else None


def replica_loss_shares(terms: dict, num_replicas: int) -> dict:
    """{name: (numerator, denominator)} -> {name: this replica's share}.

    Each numerator is divided by its denominator summed over the replicas,
    so the replicas' gradients add up to the global batch's (the strategy
    sums them). Called in a replica context (strategy.run, Keras fit).
    """
    context = tf.distribute.get_replica_context()
    share = {}
    for name, (num, den) in terms.items():
        if num_replicas > 1:
            den = context.all_reduce(tf.distribute.ReduceOp.SUM, den)
        share[name] = num / den
    return share


class Trainer:
    """Owns the strategy, model, optimizer and checkpoints of one run."""

    def __init__(self, task: Task, strategy: tf.distribute.Strategy,
                 run_config: RunConfig):
        self.task = task
        self.strategy = strategy
        self.config = run_config
        self.num_replicas = strategy.num_replicas_in_sync
        if run_config.train_batch_size % self.num_replicas:
            raise ValueError(
                f"train_batch_size={run_config.train_batch_size} is not "
                f"divisible by the {self.num_replicas} replicas")
        k = run_config.gradient_accumulation_steps
        if run_config.train_batch_size % (self.num_replicas * k):
            raise ValueError(
                f"train_batch_size={run_config.train_batch_size} is not "
                f"divisible by {self.num_replicas} replicas x "
                f"gradient_accumulation_steps={k}: each replica's "
                f"micro-batch would not be a whole number of examples")
        if k > 1:
            logging.info(
                "Gradient accumulation: each optimizer step sums %d "
                "micro-batches of %d examples per replica (global batch %d)",
                k, run_config.train_batch_size // (self.num_replicas * k),
                run_config.train_batch_size)
        with strategy.scope():
            self.model = task.build_model()
            self.optimizer = task.build_optimizer()
            # Build the slots inside the scope, before the first
            # strategy.run (a Keras 3 requirement under tf.distribute).
            self.optimizer.build(self.model.trainable_variables)
            self.global_step = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="global_step")
        self._train_fn = None
        self._eval_fn = None
        self._predict_fns: dict = {}
        self.history: list[dict] = []  # The logged metrics, in order.
        # Training steps by batch width (the input_ids' last axis): with
        # dynamic padding, one XLA compilation (or trace) per width.
        self.batch_widths: collections.Counter = collections.Counter()
        self.is_chief = is_chief(strategy)
        # Every MultiWorkerMirrored worker must save (the save is a
        # collective); only the chief writes into output_dir.
        checkpoint_dir = run_config.output_dir
        if not self.is_chief:
            checkpoint_dir = fileio.join(
                run_config.output_dir,
                f"worker_{strategy.cluster_resolver.task_id}")
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer,
            global_step=self.global_step)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, checkpoint_dir,
            max_to_keep=run_config.keep_checkpoint_max,
            checkpoint_name=CHECKPOINT_NAME)

    # ------------------------------------------------------------ steps ---

    def _loss(self, outputs, features):
        share = replica_loss_shares(
            self.task.loss_terms(outputs, features, self.num_replicas),
            self.num_replicas)
        return tf.add_n(list(share.values())), share

    def _scale(self, loss):
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            return self.optimizer.scale_loss(loss)
        return loss

    def _gradients(self, features):
        """One pass over the replica's batch: (grads, loss, share, sums)."""
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self.model(features, training=True)
            loss, share = self._loss(outputs, features)
            scaled = self._scale(loss)
        grads = [tf.convert_to_tensor(g) if g is not None else g
                 for g in tape.gradient(scaled, variables)]
        return grads, loss, share, self.task.metric_sums(outputs, features)

    def _accumulated_gradients(self, features, k: int):
        """The same result as _gradients, from k micro-batches in turn.

        Loss numerators are divided by the whole global batch's
        denominators, so the k gradients add up to the batch's gradient.
        """
        variables = self.model.trainable_variables
        denominators = self.task.loss_denominators(features,
                                                   self.num_replicas)
        if self.num_replicas > 1:
            context = tf.distribute.get_replica_context()
            denominators = {
                name: context.all_reduce(tf.distribute.ReduceOp.SUM, den)
                for name, den in denominators.items()}
        micro = {name: _split_batch(value, k, name)
                 for name, value in features.items()}  # [k, B / k, ...]
        # Filled while tracing the loop body: which variables get no
        # gradient (kept None, as without accumulation) and the order of
        # the logged values packed into one vector per micro-batch.
        unconnected, layout = set(), []

        def body(i, grads, logged):
            batch = {name: value[i] for name, value in micro.items()}
            with tf.GradientTape() as tape:
                outputs = self.model(batch, training=True)
                terms = self.task.loss_terms(outputs, batch,
                                             self.num_replicas)
                share = {name: num / denominators[name]
                         for name, (num, _) in terms.items()}
                loss = tf.add_n(list(share.values()))
                scaled = self._scale(loss)
            new = tape.gradient(scaled, variables)
            sums = self.task.metric_sums(outputs, batch)
            values = [("loss", loss)] + [
                (("share", name), value) for name, value in share.items()
            ] + [(("sums", name), pair) for name, pair in sums.items()]
            layout[:] = [key for key, _ in values]
            flat = tf.nest.flatten([value for _, value in values])
            logged = logged.write(i, tf.stack(
                [tf.cast(x, tf.float32) for x in flat]))
            total = []
            for index, (acc, g) in enumerate(zip(grads, new)):
                if g is None:
                    unconnected.add(index)
                    total.append(acc)
                else:
                    total.append(acc + tf.convert_to_tensor(g))
            return i + 1, total, logged

        zeros = [tf.zeros(v.shape, v.dtype) for v in variables]
        logged = tf.TensorArray(tf.float32, size=k)
        _, grads, logged = tf.while_loop(
            lambda i, *_: i < k, body, (tf.constant(0), zeros, logged),
            parallel_iterations=1)
        grads = [None if i in unconnected else g for i, g in enumerate(grads)]
        totals = tf.unstack(tf.reduce_sum(logged.stack(), axis=0))  # summed
        values, position = {}, 0
        for key in layout:
            width = 2 if key[0] == "sums" else 1
            values[key] = totals[position:position + width]
            position += width
        loss = values["loss"][0]
        share = {key[1]: v[0] for key, v in values.items()
                 if key[0] == "share"}
        sums = {key[1]: (v[0], v[1]) for key, v in values.items()
                if key[0] == "sums"}
        return grads, loss, share, sums

    def _replica_train_step(self, features):
        variables = self.model.trainable_variables
        k = self.config.gradient_accumulation_steps
        if k == 1:
            grads, loss, share, sums = self._gradients(features)
        else:
            grads, loss, share, sums = self._accumulated_gradients(
                features, k)
        clip_norm = optimization.GRADIENT_CLIP_NORM
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            # clip(s * g, s * c) == s * clip(g, c): clip before unscaling.
            clip_norm = clip_norm * tf.cast(
                self.optimizer.dynamic_scale, tf.float32)
        if self.num_replicas > 1:
            # Clip the summed gradient, then hand Keras 1/N of it: its own
            # cross-replica sum restores the clipped total.
            context = tf.distribute.get_replica_context()
            grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            grads, _ = optimization.clip_by_global_norm(grads, clip_norm)
            grads = [g / self.num_replicas for g in grads]
        else:
            grads, _ = optimization.clip_by_global_norm(grads, clip_norm)
        self.optimizer.apply_gradients(zip(grads, variables))
        return loss, share, sums, _batch_width(features)

    def _build_train_fn(self):
        replica_step = self._replica_train_step
        if self.config.jit_compile:
            replica_step = tf.function(replica_step, jit_compile=True)
        strategy = self.strategy
        sum_op = tf.distribute.ReduceOp.SUM

        def one_step(iterator):
            loss, share, sums, width = strategy.run(replica_step,
                                                    args=(next(iterator),))
            self.global_step.assign_add(1)
            # The widest replica's batch; local values, no collective.
            width = tf.reduce_max(tf.stack(
                strategy.experimental_local_results(width)))
            reduce = lambda x: strategy.reduce(sum_op, x, axis=None)
            # Each replica's loss is its share of the global loss.
            loss = reduce(loss)
            share = {k: reduce(v) for k, v in share.items()}
            sums = {k: (reduce(n), reduce(d)) for k, (n, d) in sums.items()}
            return loss, share, sums, width

        @tf.function
        def train_steps(iterator, num_steps):
            finite = tf.constant(True)
            widths = tf.TensorArray(tf.int32, size=num_steps)  # [num_steps]
            for i in tf.range(num_steps - 1):
                loss, _, _, width = one_step(iterator)
                finite = tf.logical_and(finite, tf.math.is_finite(loss))
                widths = widths.write(i, width)
            loss, share, sums, width = one_step(iterator)
            finite = tf.logical_and(finite, tf.math.is_finite(loss))
            widths = widths.write(num_steps - 1, width)
            return finite, loss, share, sums, widths.stack()

        return train_steps

    # ------------------------------------------------------------ train ---

    def checkpoints(self) -> dict[int, str]:
        """Complete checkpoints in the checkpoint directory, by step.

        Found by their `.index` files (written last), not only through the
        `checkpoint` state file: a run killed between the two still sees
        the checkpoint it finished writing, and an evaluator beside a
        training job sees the job's checkpoints.
        """
        directory = self.manager.directory
        found = {}
        for path in tf.io.gfile.glob(
                fileio.join(directory, f"{CHECKPOINT_NAME}-*.index")):
            step = checkpoint_step(path)
            if step is not None:
                found[step] = path[:-len(".index")]
        return found

    def latest_checkpoint(self) -> str | None:
        """The newest complete checkpoint in the checkpoint directory."""
        found = self.checkpoints()
        if found:
            return found[max(found)]
        return self.manager.latest_checkpoint

    def restore_or_initialize(self, init_fn: Callable | None = None,
                              iterator=None) -> int:
        """Resumes from output_dir, else runs init_fn(model). Returns step."""
        if isinstance(iterator, tf.data.Iterator):
            self.checkpoint.iterator = iterator
        latest = self.latest_checkpoint()
        if latest:
            self.checkpoint.read(latest).assert_existing_objects_matched()
            logging.info("Resumed from %s at step %d", latest,
                         int(self.global_step.numpy()))
        elif init_fn is not None:
            init_fn(self.model)
        return int(self.global_step.numpy())

    def train(self, dataset_fn: Callable, init_fn: Callable | None = None,
              on_save: Callable[[str], None] | None = None,
              save_initial_checkpoint: bool = False) -> dict:
        """Trains to num_train_steps; returns the last logged metrics.

        on_save(path) runs after each checkpoint is written (e.g. to
        evaluate it while its weights are still in the model). With
        save_initial_checkpoint, a fresh run first saves `ckpt-0` (the
        initialised weights), as the original's Estimator did: fine-tuning
        evaluates it like any other checkpoint.
        """
        config = self.config
        if self.num_replicas == 1 and config.checkpoint_input_pipeline:
            # A plain tf.data iterator can be checkpointed, so a resumed run
            # sees exactly the batches an uninterrupted one would.
            iterator = iter(dataset_fn(tf.distribute.InputContext()))
        else:
            # Distributed iterators cannot be checkpointed: after a resume
            # the input starts over from its seed.
            iterator = iter(
                self.strategy.distribute_datasets_from_function(dataset_fn))
        step = self.restore_or_initialize(init_fn, iterator)
        if (save_initial_checkpoint and step == 0
                and self.latest_checkpoint() is None):
            path = self.manager.save(checkpoint_number=0)
            logging.info("Saved the initial weights as %s", path)
            if on_save is not None:
                on_save(path)
        if step >= config.num_train_steps:
            logging.info("Already at step %d >= num_train_steps=%d", step,
                         config.num_train_steps)
            return {}
        if self._train_fn is None:
            self._train_fn = self._build_train_fn()
        writer = _summary_writer(self.is_chief, config.output_dir, "train")
        logs = {}
        start_step, start_time = step, time.time()
        last_time, last_step = start_time, step
        while step < config.num_train_steps:
            boundaries = [config.num_train_steps,
                          _next_multiple(step, config.save_checkpoints_steps),
                          _next_multiple(step, config.log_every_n_steps),
                          step + config.iterations_per_loop]
            num_steps = min(boundaries) - step
            finite, loss, share, sums, widths = self._train_fn(
                iterator, tf.constant(num_steps, tf.int32))
            self.batch_widths.update(widths.numpy().tolist())
            step = int(self.global_step.numpy())
            if not bool(finite):
                raise FloatingPointError(
                    f"non-finite loss ({float(loss)}) within steps "
                    f"{step - num_steps + 1}..{step}; stopping without "
                    f"saving. Lower the learning rate, or check the data "
                    f"and --dtype.")
            if step % config.log_every_n_steps == 0 or (
                    step == config.num_train_steps):
                now = time.time()
                rate = (step - last_step) / max(now - last_time, 1e-9)
                eta = (config.num_train_steps - step) / max(rate, 1e-9)
                logs = {"loss": float(loss),
                        **{k: float(v) for k, v in share.items()},
                        **{_training_name(k): v
                           for k, v in _ratio(sums).items()},
                        "learning_rate": self._learning_rate(),
                        "examples_per_second": rate * config.train_batch_size}
                logging.info(
                    "step %d/%d loss %.4f lr %.3g %.1f examples/s ETA %s | %s",
                    step, config.num_train_steps, logs["loss"],
                    logs["learning_rate"], logs["examples_per_second"],
                    _duration(eta), " ".join(
                        f"{k} {v:.4f}" for k, v in sorted(logs.items())
                        if k not in ("loss", "learning_rate",
                                     "examples_per_second")))
                self.history.append({"global_step": step, **logs})
                with writer.as_default(step=step):
                    for name, value in logs.items():
                        tf.summary.scalar(name, value)
                writer.flush()
                last_time, last_step = now, step
            if (step % config.save_checkpoints_steps == 0
                    or step == config.num_train_steps):
                if not self._weights_finite():
                    raise FloatingPointError(
                        f"non-finite weights at step {step}; stopping "
                        f"without saving them. Lower the learning rate.")
                path = self.manager.save(checkpoint_number=step)
                logging.info("Saved %s", path)
                if on_save is not None:
                    on_save(path)
        logging.info("Trained %d steps in %s", step - start_step,
                     _duration(time.time() - start_time))
        self._log_batch_widths()
        return logs

    def _log_batch_widths(self) -> None:
        """How many batch widths (so traces / XLA compilations) were seen."""
        widths = dict(sorted(self.batch_widths.items()))
        if not widths or 0 in widths:  # No input_ids: nothing to say.
            return
        if self.config.jit_compile:
            logging.info("XLA compiled the train step for %d shapes: %s",
                         len(widths), widths)
        else:
            logging.info("Train batch widths (%d shapes): %s", len(widths),
                         widths)

    def _weights_finite(self) -> bool:
        return all(bool(tf.reduce_all(tf.math.is_finite(v)))
                   for v in self.model.trainable_variables)

    def _learning_rate(self) -> float:
        # Keras evaluates the schedule at the optimizer's own step.
        return float(self.optimizer.learning_rate)

    # ------------------------------------------------------------- eval ---

    def _build_eval_fn(self):
        strategy = self.strategy
        sum_op = tf.distribute.ReduceOp.SUM

        def replica_eval(features):
            outputs = self.model(features, training=False)
            return self.task.metric_sums(outputs, features)

        @tf.function
        def eval_step(iterator):
            sums = strategy.run(replica_eval, args=(next(iterator),))
            return {k: (strategy.reduce(sum_op, n, axis=None),
                        strategy.reduce(sum_op, d, axis=None))
                    for k, (n, d) in sums.items()}

        return eval_step

    def evaluate(self, dataset_fn: Callable, num_steps: int) -> dict:
        """Metric ratios accumulated exactly over num_steps batches."""
        if self._eval_fn is None:
            self._eval_fn = self._build_eval_fn()
        iterator = iter(
            self.strategy.distribute_datasets_from_function(dataset_fn))
        totals: dict = {}
        for _ in range(num_steps):
            for name, (num, den) in self._eval_fn(iterator).items():
                old = totals.get(name, (0.0, 0.0))
                totals[name] = (old[0] + float(num), old[1] + float(den))
        return _ratio(totals)

    def evaluate_checkpoints(self, evaluate_fn: Callable[[], dict],
                             key_metric: str, prune: bool = False) -> dict:
        """Evaluates every checkpoint not yet evaluated; keeps the best.

        evaluate_fn() computes the metrics of the weights currently in the
        model. Checkpoints are taken in step order. What is written, after
        each evaluation and always in agreement (the best is chosen by one
        function, `best_checkpoint`, ties keeping the earliest):
        eval_history.json; eval_results.txt with every checkpoint's results
        and the best marked (the original appended each result);
        best/ (the original's model.ckpt-best) with its eval_results.txt;
        best_trial.txt (`global_step:best_step:best_value`, as
        run_classifier). With `prune`, evaluated checkpoints other than the
        best and the latest are deleted, as run_classifier does.
        Returns the results of the last checkpoint evaluated.
        """
        output_dir = self.config.output_dir
        history = self.eval_history()
        writer = _summary_writer(self.is_chief, output_dir, "eval")
        results = {}
        for step, path in sorted(self.checkpoints().items()):
            name = os.path.basename(path)
            if name in history:
                continue
            try:
                self.checkpoint.read(path).expect_partial()
            except tf.errors.OpError as e:
                # Deleted or being replaced by the training job's manager:
                # the checkpoint reader reports a data file gone or an
                # index read half written as UNKNOWN, not NotFound.
                if not isinstance(e, (tf.errors.NotFoundError,
                                      tf.errors.DataLossError)) and (
                        e.error_code != tf.errors.UNKNOWN):
                    raise
                logging.warning("Skipping %s: %s", path, e)
                continue
            results = dict(evaluate_fn())
            results["global_step"] = int(self.global_step.numpy())
            history[name] = results
            logging.info("eval %s: %s", name, " ".join(
                f"{k} {v:.4f}" for k, v in sorted(results.items())))
            with writer.as_default(step=results["global_step"]):
                for key, value in results.items():
                    tf.summary.scalar(key, value)
            if self.is_chief:
                self._record_evaluation(history, key_metric)
        if self.is_chief and prune and history:
            best = best_checkpoint(history, key_metric)
            latest = self.latest_checkpoint()
            for path in self.checkpoints().values():
                name = os.path.basename(path)
                if name in history and name != best and path != latest:
                    for f in tf.io.gfile.glob(path + ".*"):
                        tf.io.gfile.remove(f)
        return results

    def eval_history(self) -> dict[str, dict]:
        """{checkpoint name: results} of every checkpoint evaluated so far."""
        path = fileio.join(self.config.output_dir, EVAL_HISTORY)
        if tf.io.gfile.exists(path):
            return fileio.read_json(path)
        return {}

    def _record_evaluation(self, history: dict, key_metric: str) -> None:
        output_dir = self.config.output_dir
        best = best_checkpoint(history, key_metric)
        best_dir = fileio.join(output_dir, BEST_DIR)
        best_path = fileio.join(output_dir, best)
        if tf.train.latest_checkpoint(best_dir) != fileio.join(best_dir, best):
            _copy_checkpoint(best_path, best_dir)
        write_results(fileio.join(best_dir, "eval_results.txt"),
                      history[best])
        order = sorted(history, key=lambda n: history[n]["global_step"])
        blocks = [f"checkpoint = {name}\n" + format_results(history[name])
                  for name in order]
        fileio.write_atomic(
            fileio.join(output_dir, "eval_results.txt"),
            ("=" * 50 + "\n").join(blocks) + "=" * 50 + "\n"
            + f"best_checkpoint = {best}\n"
            f"best_{key_metric} = {history[best][key_metric]}\n")
        last = history[order[-1]]["global_step"]
        fileio.write_atomic(
            fileio.join(output_dir, BEST_TRIAL),
            f"{last}:{history[best]['global_step']}:"
            f"{history[best][key_metric]}")
        # Last: a run killed before this re-evaluates, never skips.
        fileio.write_json_atomic(fileio.join(output_dir, EVAL_HISTORY),
                                 history)

    def evaluate_until(self, evaluate_fn: Callable[[], dict],
                       key_metric: str, prune: bool = False) -> dict:
        """Evaluates checkpoints as a training job writes them.

        As the original's eval loop (`while global_step < train_steps`):
        polls output_dir every eval_poll_seconds until the checkpoint of
        the last step has been evaluated, so an evaluator can run beside a
        training job on another machine (a TPU, say).
        """
        last_step = self.config.num_train_steps
        results = {}
        while True:
            results = self.evaluate_checkpoints(evaluate_fn, key_metric,
                                                prune) or results
            steps = [r["global_step"] for r in self.eval_history().values()]
            if steps and max(steps) >= last_step:
                return results
            logging.info("%s; waiting %.0f s for new checkpoints of the "
                         "training job in %s (until step %d)",
                         f"Evaluated up to step {max(steps)}" if steps
                         else "No checkpoint yet",
                         self.config.eval_poll_seconds,
                         self.manager.directory, last_step)
            time.sleep(self.config.eval_poll_seconds)

    def predict(self, dataset: tf.data.Dataset,
                keys: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Model outputs `keys` and every input feature, batch by batch.

        Runs on the host in dataset order (not sharded), so rows line up
        with the examples that were written.
        """
        step = self._predict_fns.get(keys)
        if step is None:  # Traced once per output set, not per evaluation.
            # reduce_retracing: dynamic padding varies the batch width.
            @tf.function(reduce_retracing=True)
            def step(batch):
                outputs = self.model(batch, training=False)
                return {k: tf.cast(outputs[k], tf.float32) for k in keys}
            self._predict_fns[keys] = step

        collected: dict = {}
        for batch in dataset:
            row = {**{k: v.numpy() for k, v in batch.items()},
                   **{k: v.numpy() for k, v in step(batch).items()}}
            for key, value in row.items():
                collected.setdefault(key, []).append(value)
        return {k: np.concatenate(pad_to_common_width(v))
                for k, v in collected.items()}

    def restore(self, path: str) -> None:
        """Loads a checkpoint of this run (model, optimizer, step)."""
        self.checkpoint.read(path).expect_partial()


def _split_batch(value: tf.Tensor, k: int, name: str) -> tf.Tensor:
    """[B, ...] -> [k, B / k, ...], keeping every static dimension."""
    batch = value.shape[0]
    if batch is not None and batch % k:
        raise ValueError(
            f"feature {name!r} has a batch of {batch} examples per replica, "
            f"not divisible by gradient_accumulation_steps={k}")
    dynamic = tf.shape(value)
    dims = [k, batch // k if batch is not None else dynamic[0] // k]
    dims += [d if d is not None else dynamic[i + 1]
             for i, d in enumerate(value.shape[1:])]
    return tf.reshape(value, dims)


def _batch_width(features: dict) -> tf.Tensor:
    """The batch's sequence length (0 when there is no input_ids)."""
    if "input_ids" not in features:
        return tf.constant(0, tf.int32)
    return tf.shape(features["input_ids"])[-1]


def pad_to_common_width(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Pads batches of different widths (dynamic padding) along the last
    axis to the widest, so they concatenate.

    Integer features pad with 0 (as the TFRecords' padding); float outputs
    with the float's lowest value, which no top-n ranking of logits ever
    chooses over a real one. Batches that already agree are untouched.
    """
    if len(arrays) < 2 or arrays[0].ndim < 2 or len(
            {a.shape[-1] for a in arrays}) == 1:
        return arrays
    width = max(a.shape[-1] for a in arrays)
    padded = []
    for a in arrays:
        fill = (np.finfo(a.dtype).min if np.issubdtype(a.dtype, np.floating)
                else 0)
        pad = [(0, 0)] * (a.ndim - 1) + [(0, width - a.shape[-1])]
        padded.append(np.pad(a, pad, constant_values=fill))
    return padded


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes output_dir (MultiWorker: the chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def _summary_writer(is_chief: bool, output_dir: str, name: str):
    if not is_chief:
        return tf.summary.create_noop_writer()
    return tf.summary.create_file_writer(fileio.join(output_dir, name))


def _copy_checkpoint(prefix: str, directory: str) -> None:
    """Copies one checkpoint into `directory`, replacing what was there.

    Staged in a hidden sibling and swapped in with renames, so `directory`
    always holds one whole checkpoint (briefly as the `.old` sibling). The
    siblings do not start with `directory`'s name: prefix-keyed file
    systems (object stores, ram://) would count them as its contents.
    """
    parent, name = os.path.split(directory.rstrip("/"))
    tmp = fileio.join(parent, f".{name}.tmp")
    old = fileio.join(parent, f".{name}.old")
    for stale in (tmp, old):
        if tf.io.gfile.exists(stale):
            tf.io.gfile.rmtree(stale)
    tf.io.gfile.makedirs(tmp)
    name = os.path.basename(prefix)  # The checkpoint's name, e.g. ckpt-4.
    for source in tf.io.gfile.glob(prefix + ".*"):
        tf.io.gfile.copy(source, fileio.join(tmp, os.path.basename(source)))
    fileio.write_atomic(fileio.join(tmp, "checkpoint"),
                        f'model_checkpoint_path: "{name}"\n'
                        f'all_model_checkpoint_paths: "{name}"\n')
    config = fileio.join(os.path.dirname(prefix), "albert_config.json")
    if tf.io.gfile.exists(config):
        tf.io.gfile.copy(config, fileio.join(tmp, "albert_config.json"))
    if tf.io.gfile.exists(directory):
        fileio.move_dir(directory, old)
    fileio.move_dir(tmp, directory)
    if tf.io.gfile.exists(old):
        tf.io.gfile.rmtree(old)


def _next_multiple(step: int, every: int) -> int:
    return (step // every + 1) * every


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m{seconds % 60:02d}s"
