"""The batch axis across devices: one mesh, and the one way a batch goes onto it.

With one device nothing here does anything: a batch goes to the device as a plain array and
a function runs as it is. With several (GPUs, TPUs, or CPU devices: the `alta run`, `verify`
and `test` commands make one per core, `one_device_per_core`; JAX_NUM_CPU_DEVICES=N or
`XLA_FLAGS=--xla_force_host_platform_device_count=N` choose), every batch's
leading axis is split over a one-axis `jax.sharding.Mesh` of all devices
(`NamedSharding(mesh, P("batch"))`):

- a compiled run (`per_device`) is a `jax.shard_map`: each device runs the whole Universal
  Transformer loop on its own rows and stops when they halt; rows never meet, so each
  row's result is the single-device run's (the per-device shapes differ, so residuals agree
  to float32 rounding and decoded values exactly);
- training shards its batch (`put_batch`) and lets `jax.jit` partition the step: the mean
  loss and the gradients are reduced across devices by XLA (data parallelism).

Rows of a run are padded to a multiple of the device count (`padded_rows`, with the empty
inputs of `alta.compiled._padded`). The mesh spans `jax.devices()`, all processes' devices
after `jax.distributed.initialize()`: every process then runs the same command on the same
inputs, feeds its own devices' rows (`jax.make_array_from_callback`) and reads the whole
result back (`to_host`).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, MutableMapping, Sequence

import numpy as np

AXIS = "batch"
CPU_DEVICES = "JAX_NUM_CPU_DEVICES"  # JAX's own setting: how many devices its CPU backend has
MOST_CPU_DEVICES = 8  # a batch's rows are padded to a multiple of the device count


def one_device_per_core(environ: MutableMapping[str, str] = os.environ) -> None:
    """Before JAX starts: give its CPU backend one device per core this process may use (at
    most MOST_CPU_DEVICES), so that a run's rows are split over the cores. XLA's CPU runtime
    runs one device's small operations on one thread; split in two on two cores, 2,000
    additions and 2,000 SCAN commands ran 1.2-1.3x faster whole process (and a single input
    no slower). Leaves alone a setting the user made (JAX_NUM_CPU_DEVICES, XLA_FLAGS' host
    device count) and a JAX already started; on a GPU or TPU the CPU devices go unused."""
    if "jax" in sys.modules or CPU_DEVICES in environ or \
            "xla_force_host_platform_device_count" in environ.get("XLA_FLAGS", ""):
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if cores and cores > 1:
        environ[CPU_DEVICES] = str(min(cores, MOST_CPU_DEVICES))


def device_count() -> int:
    """The devices a batch is split over (all processes' devices)."""
    import jax

    return jax.device_count()


@functools.cache
def batch_mesh():
    """The one-axis mesh of all devices (a process has one set of devices)."""
    import jax
    from jax.sharding import Mesh

    return Mesh(np.asarray(jax.devices()), (AXIS,))


def padded_rows(rows: int) -> int:
    """`rows` rounded up to a multiple of the device count (every device gets a share)."""
    count = device_count()
    return -(-rows // count) * count


def put_batch(*arrays: np.ndarray) -> tuple:
    """The arrays on the devices: split along their leading axis where the device count
    divides it, else whole on every device (one device: as `jnp.asarray` would, but a numpy
    array by `jax.device_put` of a copy of its own: `jnp.asarray` compiles that copy, since
    JAX 0.10, for every new shape and dtype (two or three compilations for each new batch
    shape of a run), and `jax.device_put` alone may alias the caller's buffer on CPU)."""
    import jax
    import jax.numpy as jnp

    count = device_count()
    if count == 1:
        return tuple(jax.device_put(np.array(a)) if isinstance(a, np.ndarray)
                     else jnp.asarray(a) for a in arrays)
    from jax.sharding import NamedSharding, PartitionSpec

    out = []
    for a in arrays:
        a = np.asarray(a)
        spec = PartitionSpec(AXIS) if a.ndim and len(a) % count == 0 else PartitionSpec()
        out.append(jax.make_array_from_callback(a.shape, NamedSharding(batch_mesh(), spec),
                                                lambda index, a=a: a[index]))
    return tuple(out)


def replicate(tree):
    """Arrays (a pytree: weights, a model's state) whole on every device, once, rather than
    copied to each device at every call; on one device, placed on it."""
    import jax

    if device_count() == 1:
        return jax.device_put(tree)
    from jax.sharding import NamedSharding, PartitionSpec

    return jax.device_put(tree, NamedSharding(batch_mesh(), PartitionSpec()))


def to_host(array) -> np.ndarray:
    """A (possibly sharded) array as one numpy array, gathered from every process where it
    spans several."""
    if getattr(array, "is_fully_addressable", True):
        return np.asarray(array)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


def per_device(fn: Callable, batched: Sequence[bool]) -> Callable:
    """`fn` run by each device on its share of the batch: the arguments marked in `batched`
    split along their leading axis, the others (weights, the model, scalars) whole on every
    device; every output is batch-first and comes back joined. On one device, `fn` itself."""
    if device_count() == 1:
        return fn
    import jax
    from jax.sharding import PartitionSpec

    specs = tuple(PartitionSpec(AXIS) if b else PartitionSpec() for b in batched)
    # No collectives inside (rows never meet): the loop's carries need not be marked as
    # varying across devices.
    return jax.shard_map(fn, mesh=batch_mesh(), in_specs=specs, out_specs=PartitionSpec(AXIS),
                         check_vma=False)
