"""Data-parallel placement on JAX's own machinery: a ``jax.sharding.Mesh`` of devices, the batch
axis of every minibatch sharded across it, everything else replicated.

The rule (used by :func:`fnnjax.fit` with ``mesh=`` or ``devices=``):

- params, optimizer state, the PRNG key and the data sets are replicated on every device of the
  mesh (``NamedSharding(mesh, PartitionSpec())``); each device holds the whole training set, so
  every device can gather its own rows of any shuffled batch without communication;
- inside the compiled epoch, each step's batch indices (and hence the batch ``x[i]``, its targets
  and the weight-0 padding mask of the last batch) are constrained to
  ``NamedSharding(mesh, PartitionSpec(mesh.axis_names))``: the batch axis is split into
  ``mesh.size`` equal, contiguous slices, one per device;
- the gradient is the mean over the whole batch (F12-F13 with the 1/B, or 1/(number of real
  samples) for the padded last batch) written for the whole batch; XLA's partitioner sees a sum
  over a sharded axis feeding replicated params and inserts the all-reduce itself. Nothing here
  communicates by hand.

So the batch size B must be a multiple of the device count D (each device gets B / D rows of every
batch, the padded last batch included); otherwise :func:`check_batch_divides` raises. The result
is the single-device result up to the order of float32 additions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["data_mesh", "batch_sharding", "replicated", "resolve_mesh", "check_batch_divides"]

BATCH_AXIS = "batch"
"""The axis name of the mesh :func:`data_mesh` builds."""


def _available(n: int, what: str) -> None:
    import jax

    have = jax.device_count()
    if n > have:
        platform = jax.devices()[0].platform
        remedy = (
            f"on CPU, set XLA_FLAGS=--xla_force_host_platform_device_count={n} in the "
            "environment before Python imports jax"
            if platform == "cpu"
            else "run on a host with more devices, or on several hosts after jax.distributed.initialize(...)"
        )
        raise ValueError(
            f"{what} = {n} but only {have} {platform} device(s) are available; use {what} <= {have}, or {remedy}"
        )


def data_mesh(devices: int | None = None, *, what: str = "devices"):
    """A 1-D ``jax.sharding.Mesh`` named ``"batch"`` over the first ``devices`` devices.

    Args:
      devices: the number of devices D (default: all of ``jax.devices()``, which after
        ``jax.distributed.initialize`` are the devices of every process).
      what: the name of the argument, for the error message.

    Returns:
      ``Mesh(jax.devices()[:D], ("batch",))`` with an ``Auto`` axis (XLA propagates shardings).

    Raises:
      ValueError: when D is not a positive integer or exceeds ``jax.device_count()`` (the message
        gives the ``XLA_FLAGS`` remedy on CPU).

    Example:
      >>> import fnnjax
      >>> dict(fnnjax.data_mesh(1).shape)
      {'batch': 1}
    """
    import jax
    from jax.sharding import AxisType

    if devices is None:
        devices = jax.device_count()
    if isinstance(devices, bool) or not isinstance(devices, (int, np.integer)) or devices < 1:
        raise ValueError(f"{what} = {devices!r} but it must be a positive integer (a device count)")
    _available(int(devices), what)
    return jax.make_mesh(
        (int(devices),), (BATCH_AXIS,), axis_types=(AxisType.Auto,), devices=jax.devices()[: int(devices)]
    )


def resolve_mesh(mesh=None, devices: int | None = None):
    """The mesh :func:`fnnjax.fit` trains on: ``mesh``, or ``data_mesh(devices)``, or None (one device).

    Raises:
      ValueError: when both are given. TypeError: when ``mesh`` is not a ``jax.sharding.Mesh``.
    """
    from jax.sharding import Mesh

    if mesh is not None and devices is not None:
        raise ValueError(f"pass mesh or devices, not both (got mesh {dict(mesh.shape)} and devices = {devices!r})")
    if mesh is not None:
        if not isinstance(mesh, Mesh):
            raise TypeError(f"mesh must be a jax.sharding.Mesh (e.g. fnnjax.data_mesh(4)), got {type(mesh).__name__}")
        return mesh
    return None if devices is None else data_mesh(devices)


def batch_sharding(mesh):
    """``NamedSharding`` splitting axis 0 (the batch) over every axis of ``mesh``."""
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec(tuple(mesh.axis_names)))


def replicated(mesh):
    """``NamedSharding`` holding a full copy on every device of ``mesh``."""
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec())


def check_batch_divides(batch_size: int, mesh) -> None:
    """Raise unless the batch size splits evenly over the mesh's devices (the exact-mean rule).

    Raises:
      ValueError: naming the batch size, the device count and the nearest valid batch sizes.
    """
    d = int(mesh.size)
    if batch_size % d:
        lower, upper = (batch_size // d) * d, -(-batch_size // d) * d
        choices = f"{lower} or {upper}" if lower else f"{upper}"
        raise ValueError(
            f"batch_size = {batch_size} does not divide over the {d} devices of the mesh; every "
            f"device takes batch_size / {d} samples of each batch, so use a multiple of {d} "
            f"(e.g. {choices})"
        )
