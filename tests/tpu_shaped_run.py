"""Runs a runner down its TPU path with the default strategy in the TPU's place.

  python tpu_shaped_run.py RUNNER.py --use_tpu --tpu=local [flags...]

Everything the runners do differently under --use_tpu (static shapes, no
dynamic padding, one-hot word embeddings) runs as it would on a TPU VM;
only distribute._tpu_strategy, which needs TPU hardware, is replaced.
"""

import runpy
import sys

import tensorflow as tf

from albert_tf import distribute

distribute._tpu_strategy = lambda *args, **kwargs: tf.distribute.get_strategy()
runner = sys.argv[1]
sys.argv = [runner] + sys.argv[2:]
runpy.run_path(runner, run_name="__main__")
