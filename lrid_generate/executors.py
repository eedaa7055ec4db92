"""Running a sweep on a cluster: the grid as one Slurm job array, through submitit.

:func:`submit_sweep` splits the networks still missing under ``out`` into
packs of ``networks_per_task`` (contiguous in grid order, so a pack shares a
task and architecture) and submits one array task per pack with `submitit
<https://github.com/facebookincubator/submitit>`_: ``submitit-slurm`` makes a
single ``sbatch --array=0-(n-1)%parallelism`` submission, ``submitit-local``
runs the same tasks as local subprocesses (what CI tests). Each array task
calls :func:`~lrid_generate.sweep.run_sweep` on its pack, so claims, shard
verification, device placement and thread settings are those of a local
sweep; several submissions (or a local sweep) may share the folder. When
every task is done, :func:`~lrid_generate.store.finalize` checks and compacts.

Options (:class:`ClusterOptions`) come from a TOML file (a ``[cluster]``
table, see :func:`load_cluster_config`) overridden by command-line flags.
submitit is optional: ``pip install "lrid[cluster]"``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from lrid_generate.presets import SweepError, get_preset

__all__ = ["EXECUTORS", "ClusterOptions", "load_cluster_config", "make_executor", "plan_tasks", "run_array_task",
           "submit_sweep"]

#: ``local``: worker processes of this machine (:func:`run_sweep`); the others go through submitit.
EXECUTORS = ("local", "submitit-local", "submitit-slurm")


@dataclass
class ClusterOptions:
    """Where and how array tasks run.

    Attributes
    ----------
    executor : {"local", "submitit-local", "submitit-slurm"}
    partition : str, optional
        Slurm partition (``--partition``).
    time : int
        Wall-clock limit of one array task in minutes (``--time``); a task
        cut short leaves its unfinished networks to a resubmission.
    gpus_per_task : int
        GPUs of one array task (``--gpus-per-node``; its workers share them
        as ``cuda:{rank % gpus}``).
    cpus_per_task : int, optional
        Default: ``workers * threads`` of the sweep.
    mem_gb : float, optional
    array_parallelism : int
        Array tasks running at once (the ``%P`` of ``--array``).
    networks_per_task : int
        Networks one array task trains (its pack): fewer, longer jobs than
        one per network.
    log_dir : str, optional
        submitit's folder (job pickles, logs); default ``<out>/.submitit``.
    account, qos, constraint : str, optional
    setup : list of str
        Shell lines run before the task (``module load ...``, activating an
        environment).
    slurm_extra : dict
        Further ``#SBATCH`` parameters, e.g. ``{"mail-type": "END"}``.
    """

    executor: str = "local"
    partition: str | None = None
    time: int = 60
    gpus_per_task: int = 0
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    array_parallelism: int = 64
    networks_per_task: int = 8
    log_dir: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: list = field(default_factory=list)
    slurm_extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise SweepError(f"executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")
        for name in ("time", "array_parallelism", "networks_per_task"):
            if int(getattr(self, name)) < 1:
                raise SweepError(f"cluster option {name} must be >= 1, got {getattr(self, name)}")
        if int(self.gpus_per_task) < 0:
            raise SweepError(f"cluster option gpus_per_task must be >= 0, got {self.gpus_per_task}")

    def updated(self, **overrides):
        """A copy with the options that are not None in ``overrides`` replaced."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


def load_cluster_config(path):
    """Read cluster options from a TOML file: its ``[cluster]`` table (or its top level).

    Example file::

        [cluster]
        executor = "submitit-slurm"
        partition = "gpu"
        time = 120                # minutes per array task
        gpus_per_task = 1
        cpus_per_task = 4
        array_parallelism = 32
        networks_per_task = 16
        setup = ["source ~/venvs/lrid/bin/activate"]

    Returns
    -------
    ClusterOptions

    Raises
    ------
    SweepError
        Unreadable file, or keys that are not options (named).
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError as err:
            raise SweepError("reading --config needs Python >= 3.11 or `pip install tomli`") from err
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise SweepError(f"{path}: cannot read the cluster config ({err})") from err
    data = data.get("cluster", data)
    known = {f.name for f in dataclasses.fields(ClusterOptions)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SweepError(f"{path}: unknown cluster option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    try:
        return ClusterOptions(**data)
    except TypeError as err:
        raise SweepError(f"{path}: {err}") from err


def plan_tasks(packs, networks_per_task):
    """Group consecutive packs into array tasks of at most ``networks_per_task`` networks.

    A pack is never split (its networks train together, see
    :func:`lrid_generate.sweep.run_sweep`); a pack larger than
    ``networks_per_task`` is a task of its own.

    Parameters
    ----------
    packs : list of list of str
        Run ids of each pack, in grid order.
    networks_per_task : int

    Returns
    -------
    list of list of str
        The run ids of each task.

    Examples
    --------
    >>> plan_tasks([["a", "b"], ["c"], ["d", "e", "f"], ["g"]], 3)
    [['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]
    """
    tasks = []
    for members in packs:
        if tasks and len(tasks[-1]) + len(members) <= int(networks_per_task):
            tasks[-1].extend(members)
        else:
            tasks.append(list(members))
    return tasks


def _submitit():
    try:
        import submitit
    except ImportError as err:
        raise SweepError('--executor submitit-* needs submitit: pip install "lrid[cluster]" '
                         "(or pip install submitit)") from err
    return submitit


def make_executor(options, folder, cpus_per_task=1, job_name="lrid-sweep"):
    """A configured ``submitit.AutoExecutor`` for ``options.executor``.

    Parameters
    ----------
    options : ClusterOptions
    folder : str or Path
        submitit's job folder (pickles, logs).
    cpus_per_task : int
        Used when ``options.cpus_per_task`` is None.
    """
    submitit = _submitit()
    cluster = {"submitit-local": "local", "submitit-slurm": "slurm"}.get(options.executor)
    if cluster is None:
        raise SweepError(f"executor {options.executor!r} does not go through submitit")
    try:
        executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    except RuntimeError as err:  # e.g. no srun: not on a Slurm cluster
        raise SweepError(f"cannot use {options.executor}: {err}") from err
    params = {"name": job_name, "timeout_min": int(options.time), "gpus_per_node": int(options.gpus_per_task),
              "cpus_per_task": int(options.cpus_per_task or cpus_per_task), "nodes": 1, "tasks_per_node": 1}
    if options.mem_gb is not None:
        params["mem_gb"] = float(options.mem_gb)
    if cluster == "slurm":
        params["slurm_array_parallelism"] = int(options.array_parallelism)
        for name in ("partition", "account", "qos", "constraint"):
            if getattr(options, name) is not None:
                params[f"slurm_{name}"] = getattr(options, name)
        if options.setup:
            params["slurm_setup"] = list(options.setup)
        if options.slurm_extra:
            params["slurm_additional_parameters"] = dict(options.slurm_extra)
    executor.update_parameters(**params)
    return executor


def run_array_task(preset, out, run_ids, run_kwargs):
    """What one array task runs: :func:`run_sweep` on its pack, without compaction or a progress bar.

    Returns
    -------
    dict
        The counts of :func:`run_sweep`.
    """
    from lrid_generate.sweep import run_sweep

    kwargs = {"progress": False, "compact_when_done": False, **run_kwargs}
    return run_sweep(preset, out, run_ids=run_ids, **kwargs)


def submit_sweep(preset, out, options, **run_kwargs):
    """Submit the missing networks of a preset as one job array.

    Parameters
    ----------
    preset : str or Preset
    out : str or Path
        Shared output folder (on a file system every node sees).
    options : ClusterOptions
    **run_kwargs
        Passed to :func:`run_sweep` in every task (``device``, ``workers``,
        ``threads``, ``data_dir``, ``pack``, ``device_memory_gb``...).
        ``threads`` defaults to 1 (per worker), so results do not depend on
        the nodes' core counts. With ``device="cuda"`` and default packs,
        ``device_memory_gb`` defaults to the total memory of this machine's
        GPU (an error without one), passed to every task, so the tasks form
        the packs planned here.

    Returns
    -------
    jobs : list of submitit.Job
        One per array task (empty when nothing is missing).
    packs : list of list of str
        The run ids of each task.
    """
    import torch

    from lrid_generate.packing import device_memory
    from lrid_generate.store import _update_sweep_json, check_writable
    from lrid_generate.sweep import _select_todo, grid_packs

    preset = get_preset(preset)
    if int(run_kwargs.get("workers", 1)) < 1:
        raise SweepError(f"workers must be >= 1, got {run_kwargs['workers']}")
    out = check_writable(out).resolve()
    specs = preset.specs()
    todo = _select_todo(specs, out)
    _update_sweep_json(out, preset, run_kwargs.get("device", "cpu"), run_kwargs.get("workers", 1),
                       {"total": len(specs)}, run_ids=[s.run_id for s in specs])
    missing = {s.run_id for s in todo}
    device = str(run_kwargs.get("device", "cpu"))
    if device.startswith("cuda") and run_kwargs.get("pack") is None and run_kwargs.get("device_memory_gb") is None:
        # every task must form the packs planned here: size them for a declared capacity, measured here
        if not torch.cuda.is_available():
            raise SweepError("sizing packs for --device cuda needs the GPUs' memory: submit from a machine with "
                             "the nodes' GPU, or give --device-memory-gb (the memory of one GPU of the nodes, "
                             "GiB) or --pack")
        run_kwargs = {**run_kwargs, "device_memory_gb": device_memory(device) / 2 ** 30}
    packed = grid_packs(specs, run_kwargs.get("pack"), device, int(run_kwargs.get("workers", 1)),
                        max(1, int(options.gpus_per_task)), run_kwargs.get("device_memory_gb"))
    task_packs = [[s.run_id for s in members if s.run_id in missing] for members in packed]
    packs = plan_tasks([members for members in task_packs if members], options.networks_per_task)
    if not packs:
        return [], packs
    folder = Path(options.log_dir) if options.log_dir else out / ".submitit"
    # the same thread count wherever a network trains: 1 per worker unless asked (not the node's default)
    run_kwargs = {**run_kwargs, "threads": int(run_kwargs.get("threads") or 1)}
    cpus = int(run_kwargs.get("workers", 1)) * run_kwargs["threads"]
    executor = make_executor(options, folder / "%j", cpus_per_task=cpus, job_name=f"lrid-{preset.name}")
    n = len(packs)
    jobs = executor.map_array(run_array_task, [preset] * n, [str(out)] * n, packs, [dict(run_kwargs)] * n)
    return jobs, packs
