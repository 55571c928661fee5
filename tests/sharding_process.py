"""One process of a two-process data-parallel run (several hosts simulated on one):
started twice by tests/test_sharding.py with XLA_FLAGS=--xla_force_host_platform_device_count=2,
so that ``jax.distributed.initialize`` joins 2 processes x 2 CPU devices into one 4-device mesh
(CPU collectives over gloo). Usage: python sharding_process.py PROCESS_ID PORT OUT_DIR"""

import sys

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")
process_id, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=process_id)

import numpy as np  # noqa: E402
from test_sharding import tiny_problem  # noqa: E402

import fnnjax  # noqa: E402

assert jax.device_count() == 4 and jax.local_device_count() == 2, jax.devices()
mlp, p0, data, kw = tiny_problem()
params, history = fnnjax.fit(mlp, p0, data, **kw, mesh=fnnjax.data_mesh())
assert params[0].W.sharding.num_devices == 4 and not params[0].W.sharding.is_fully_addressable
np.savez(
    f"{out}/process{process_id}.npz",
    loss=history["train_loss"],
    **{f"p{i}": np.asarray(leaf.addressable_data(0)) for i, leaf in enumerate(jax.tree.leaves(params))},
)
jax.distributed.shutdown()
