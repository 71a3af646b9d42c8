"""get_strategy: the tf.distribute strategy for --strategy and --num_gpus.

The original ran on TPUEstimator only (or one device); this chooses among
one_device, mirrored (one host, several devices), multi_worker_mirrored
(TF_CONFIG describes the cluster) and tpu (a TPU VM with --tpu=local, or a
named / grpc:// TPU).
"""

from __future__ import annotations

import tensorflow as tf
from absl import logging

STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")
# TPUClusterResolver's name for the TPU attached to this host (a TPU VM).
LOCAL_TPU = "local"


def _tpu_strategy(tpu_address: str, tpu_zone: str | None = None,
                  gcp_project: str | None = None
                  ) -> tf.distribute.TPUStrategy:
    # As the original's TPUClusterResolver(FLAGS.tpu_name, zone=...,
    # project=...); None lets the resolver read them from GCE metadata.
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=tpu_address, zone=tpu_zone, project=gcp_project)
    # A TPU VM's chips are local devices: there is no remote cluster to join.
    if tpu_address != LOCAL_TPU:
        tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def get_strategy(strategy: str, num_gpus: int = 0,
                 tpu_address: str | None = None,
                 tpu_zone: str | None = None,
                 gcp_project: str | None = None) -> tf.distribute.Strategy:
    """Builds the strategy named by `strategy`.

    Args:
        strategy: one of STRATEGIES.
        num_gpus: GPUs per worker for one_device (0 or 1) and mirrored
            (0 means every logical CPU device, e.g. 2 CPUs configured for a
            test). multi_worker_mirrored uses every local GPU; tpu takes none.
        tpu_address: for tpu only: "local" on a TPU VM, else the TPU name or
            its grpc:// address.
        tpu_zone, gcp_project: for tpu only, as the original's --tpu_zone
            and --gcp_project (None: from the VM's metadata).

    Example:
        strategy = get_strategy("mirrored", num_gpus=8)
        with strategy.scope():
            model = ...
    """
    if strategy not in STRATEGIES:
        raise ValueError(
            f"strategy={strategy!r} is not one of {STRATEGIES}")
    if num_gpus < 0:
        raise ValueError(f"num_gpus={num_gpus} must be >= 0")
    if strategy == "tpu":
        if not tpu_address:
            raise ValueError(
                f"strategy='tpu' needs tpu_address: {LOCAL_TPU!r} on a TPU VM, "
                "or the TPU's name or grpc:// address")
        if num_gpus:
            raise ValueError(
                f"strategy='tpu' takes no GPUs; got num_gpus={num_gpus}")
        logging.info("TPUStrategy on tpu_address=%r zone=%r project=%r",
                     tpu_address, tpu_zone, gcp_project)
        return _tpu_strategy(tpu_address, tpu_zone, gcp_project)
    for name, value in (("tpu_address", tpu_address), ("tpu_zone", tpu_zone),
                        ("gcp_project", gcp_project)):
        if value:
            raise ValueError(
                f"{name}={value!r} is only used by strategy='tpu', not "
                f"strategy={strategy!r}")

    if strategy == "one_device":
        if num_gpus > 1:
            raise ValueError(
                f"strategy='one_device' takes num_gpus=0 or 1, got {num_gpus}; "
                "use strategy='mirrored' for several GPUs")
        device = "/gpu:0" if num_gpus else "/cpu:0"
        logging.info("OneDeviceStrategy on %s", device)
        return tf.distribute.OneDeviceStrategy(device)
    if strategy == "mirrored":
        if num_gpus:
            available = len(tf.config.list_logical_devices("GPU"))
            if num_gpus > available:
                raise ValueError(
                    f"num_gpus={num_gpus} but only {available} GPUs are "
                    "visible")
            devices = [f"/gpu:{i}" for i in range(num_gpus)]
        else:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        logging.info("MirroredStrategy on %s", devices)
        return tf.distribute.MirroredStrategy(devices)
    # multi_worker_mirrored: the cluster comes from the TF_CONFIG variable,
    # and each worker uses all of its visible GPUs (CUDA_VISIBLE_DEVICES).
    if num_gpus:
        logging.info("num_gpus=%d is not used by multi_worker_mirrored: each "
                     "worker takes its visible GPUs", num_gpus)
    logging.info("MultiWorkerMirroredStrategy (cluster from TF_CONFIG)")
    return tf.distribute.MultiWorkerMirroredStrategy()
