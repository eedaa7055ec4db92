"""Where joblib runs the analysis: this machine's processes or threads, a Dask cluster, a Ray cluster.

Every parallel loop of lrid (:func:`lrid_analysis.evaluate.cross_validate`,
the experiments, the benchmark harness) is a ``joblib.Parallel``; inside
:func:`parallel_backend` it runs on the chosen engine through
``joblib.parallel_config``, unchanged:

========== =============================================================
backend    runs on
========== =============================================================
loky       worker processes of this machine (joblib's default)
threading  threads of this process (estimators that release the GIL)
dask       a Dask cluster: ``scheduler_address`` of a running one
           (``tcp://host:8786``), else a ``distributed.LocalCluster``
           started for the block and closed after it
ray        a Ray cluster (``scheduler_address``, else a local one)
========== =============================================================

Large arrays are sent to the Dask workers once: pass them as ``scatter``
(broadcast to every worker when the block starts; joblib then hands the
workers a reference wherever the same object is an argument). Without it
joblib's Dask backend still scatters each large argument once per
``Parallel`` call. Dask and Ray are optional: ``pip install "lrid[cluster]"``
(Dask), ``pip install "ray[default]"`` (Ray).

Call ``Parallel`` / lrid functions inside the block with ``n_jobs=None`` (or
``-1``): an explicit ``n_jobs=1`` runs in the calling process, whatever the
backend.
"""

from __future__ import annotations

import contextlib

import joblib

__all__ = ["BACKENDS", "BackendError", "parallel_backend"]

#: Names accepted by :func:`parallel_backend`.
BACKENDS = ("loky", "threading", "dask", "ray")


class BackendError(RuntimeError):
    """A backend cannot be used (unknown name, its package missing, cluster unreachable)."""


def _import(module, extra):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as err:
        raise BackendError(f"backend {extra[0]!r} needs {module}: {extra[1]}") from err


@contextlib.contextmanager
def _dask(n_jobs, scheduler_address, scatter, n_workers, threads_per_worker, processes, timeout):
    distributed = _import("distributed", ("dask", 'pip install "lrid[cluster]" (dask[distributed])'))
    cluster = None
    try:
        if scheduler_address:
            client = distributed.Client(scheduler_address, timeout=timeout, set_as_default=False)
        else:
            cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                               processes=processes, dashboard_address=None)
            client = distributed.Client(cluster, set_as_default=False)
    except (OSError, TimeoutError) as err:
        if cluster is not None:
            cluster.close()
        where = scheduler_address or "a local cluster"
        raise BackendError(f"cannot connect to the Dask scheduler at {where}: {err}") from err
    try:
        with joblib.parallel_config(backend="dask", n_jobs=n_jobs, client=client,
                                    scatter=list(scatter) if scatter else None):
            yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def _ray(n_jobs, scheduler_address):
    ray = _import("ray", ("ray", 'pip install "ray[default]"'))
    joblib_ray = _import("ray.util.joblib", ("ray", 'pip install "ray[default]"'))
    started = not ray.is_initialized()
    if started:
        ray.init(address=scheduler_address or None)
    joblib_ray.register_ray()
    try:
        with joblib.parallel_config(backend="ray", n_jobs=n_jobs):
            yield None
    finally:
        if started:
            ray.shutdown()


@contextlib.contextmanager
def parallel_backend(backend="loky", n_jobs=None, scheduler_address=None, scatter=None, n_workers=None,
                     threads_per_worker=1, processes=True, timeout=30):
    """Run the ``joblib.Parallel`` loops of the block on ``backend``.

    Parameters
    ----------
    backend : {"loky", "threading", "dask", "ray"}
    n_jobs : int, optional
        Parallel tasks (joblib's meaning; default: the backend's, -1 on Dask:
        every worker thread).
    scheduler_address : str, optional
        Dask: a running scheduler (``tcp://host:8786``); default a
        ``LocalCluster`` for the block. Ray: the cluster address
        (``ray://host:10001`` or ``auto``).
    scatter : sequence of objects, optional
        Dask: arrays (e.g. ``[X, y]``) broadcast to every worker once; the
        same objects passed to tasks then travel as references.
    n_workers, threads_per_worker, processes
        The ``LocalCluster`` started when Dask has no ``scheduler_address``
        (default workers: one per core; ``processes=False``: threads of this
        process).
    timeout : float
        Seconds to wait for a Dask scheduler.

    Yields
    ------
    distributed.Client or None
        The Dask client (inspect the cluster); None for the other backends.

    Raises
    ------
    BackendError
        Unknown backend, its package missing (with the command installing
        it), scheduler unreachable.

    Examples
    --------
    >>> from joblib import Parallel, delayed
    >>> with parallel_backend("threading", n_jobs=2):
    ...     Parallel()(delayed(pow)(k, 2) for k in range(4))
    [0, 1, 4, 9]
    """
    if backend not in BACKENDS:
        raise BackendError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend in ("loky", "threading"):
        if scheduler_address:
            raise BackendError(f"--scheduler-address is for the dask or ray backend, not {backend!r}")
        with joblib.parallel_config(backend=backend, n_jobs=n_jobs):
            yield None
    elif backend == "dask":
        with _dask(n_jobs, scheduler_address, scatter, n_workers, threads_per_worker, processes, timeout) as client:
            yield client
    else:
        with _ray(n_jobs, scheduler_address):
            yield None
