"""get_strategy: every kind short of a real TPU, and the TPU wiring faked."""

import pytest
import tensorflow as tf

from albert_tf import distribute
from albert_tf.distribute import get_strategy

NO_GPU = not tf.config.list_physical_devices("GPU")


def test_unknown_strategy_raises_and_names_it():
    with pytest.raises(ValueError, match="'horovod'"):
        get_strategy("horovod")


def test_negative_num_gpus_raises():
    with pytest.raises(ValueError, match="num_gpus=-1"):
        get_strategy("mirrored", num_gpus=-1)


def test_one_device_on_cpu():
    strategy = get_strategy("one_device")
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    assert strategy.num_replicas_in_sync == 1
    assert strategy.extended.worker_devices[0].endswith("CPU:0")


def test_one_device_rejects_several_gpus():
    with pytest.raises(ValueError, match="num_gpus=0 or 1, got 2"):
        get_strategy("one_device", num_gpus=2)


def test_mirrored_without_gpus_uses_the_cpus():
    strategy = get_strategy("mirrored")
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == len(
        tf.config.list_logical_devices("CPU"))
    # Two logical CPUs: see test_optimization's mirrored test.


@pytest.mark.skipif(not NO_GPU, reason="needs a machine without GPUs")
def test_mirrored_asking_for_missing_gpus_raises():
    with pytest.raises(ValueError, match="num_gpus=2 but only 0 GPUs"):
        get_strategy("mirrored", num_gpus=2)


def test_multi_worker_mirrored_is_built(monkeypatch):
    # Faked: the real one configures collective ops for the whole process.
    sentinel = object()
    monkeypatch.setattr(tf.distribute, "MultiWorkerMirroredStrategy",
                        lambda: sentinel)
    assert get_strategy("multi_worker_mirrored") is sentinel


def test_tpu_address_only_for_tpu():
    with pytest.raises(ValueError, match="only used by strategy='tpu'"):
        get_strategy("mirrored", tpu_address="local")


def test_tpu_needs_an_address_and_no_gpus():
    with pytest.raises(ValueError, match="needs tpu_address"):
        get_strategy("tpu")
    with pytest.raises(ValueError, match="takes no GPUs"):
        get_strategy("tpu", num_gpus=1, tpu_address="local")


@pytest.fixture
def fake_tpu(monkeypatch):
    """Records the TPU calls instead of making them."""
    calls = []

    class FakeResolver:
        def __init__(self, tpu=None, zone=None, project=None):
            self.tpu = tpu
            calls.append(("resolver", tpu) if zone is None and project is None
                         else ("resolver", tpu, zone, project))

    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver",
                        FakeResolver)
    monkeypatch.setattr(tf.config, "experimental_connect_to_cluster",
                        lambda r: calls.append(("connect", r.tpu)))
    monkeypatch.setattr(tf.tpu.experimental, "initialize_tpu_system",
                        lambda r: calls.append(("initialize", r.tpu)))
    monkeypatch.setattr(tf.distribute, "TPUStrategy",
                        lambda r: ("TPUStrategy", r.tpu))
    return calls


def test_tpu_vm_local(fake_tpu):
    strategy = get_strategy("tpu", tpu_address=distribute.LOCAL_TPU)
    assert strategy == ("TPUStrategy", "local")
    # A TPU VM's chips are local: no cluster to connect to.
    assert fake_tpu == [("resolver", "local"), ("initialize", "local")]


def test_remote_tpu_connects_first(fake_tpu):
    address = "grpc://10.240.1.2:8470"
    strategy = get_strategy("tpu", tpu_address=address)
    assert strategy == ("TPUStrategy", address)
    assert fake_tpu == [("resolver", address), ("connect", address),
                        ("initialize", address)]


def test_named_tpu_with_zone_and_project(fake_tpu):
    get_strategy("tpu", tpu_address="my-tpu", tpu_zone="europe-west4-a",
                 gcp_project="proj")
    assert fake_tpu[0] == ("resolver", "my-tpu", "europe-west4-a", "proj")
    with pytest.raises(ValueError, match="tpu_zone='europe-west4-a' is only"):
        get_strategy("one_device", tpu_zone="europe-west4-a")
