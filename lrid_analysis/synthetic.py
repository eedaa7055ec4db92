"""Synthetic tidy tables with a planted learning-rule signal, for tests and benchmarks.

The metadata of the public dataset (all 20,736 rows, without the
observables) ships with the package, so schema-identical synthetic data of
public size can be built anywhere with :func:`public_meta` and
:func:`synthetic_table`.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa

from .dataset import OPTIONAL_COLUMNS, SCHEMA
from .observables import ADMISSIBLE_NAMES, FORWARD_GRADIENT_NAMES, OBSERVABLE_NAMES

__all__ = ["FEEDBACK_RULES", "public_meta", "synthetic_table", "network_id"]

_NETWORK_COLUMNS = ["task", "architecture", "learning_rule", "batch_size", "model_seed", "dataset_seed"]
#: The rules whose layers run their own backward through feedback weights B (FA, IA).
FEEDBACK_RULES = ("feedback", "information")
_GRADAVG = [OBSERVABLE_NAMES.index(f"gradavg{name[len('gradfwd'):]}") for name in FORWARD_GRADIENT_NAMES]


def public_meta():
    """The 20,736 metadata rows of the public dataset, in file order.

    Returns
    -------
    pandas.DataFrame, shape (20736, 10)
        Columns ``task``, ``start_idxs``, ``learning_rule``, ``dataset_seed``,
        ``end_idxs``, ``model_seed``, ``architecture``, ``batch_size``,
        ``layer_name``, ``layer_position_inferred``; seeds are nullable
        integers (``None`` in the public file).
    """
    path = resources.files("lrid_analysis").joinpath("data", "public_meta.parquet")
    with resources.as_file(path) as file:
        return pd.read_parquet(file, page_checksum_verification=True)


def network_id(meta):
    """A stable run id per network from its task, architecture, rule and settings.

    Parameters
    ----------
    meta : pandas.DataFrame
        Columns ``task``, ``architecture``, ``learning_rule``, ``batch_size``,
        ``model_seed``, ``dataset_seed``.

    Returns
    -------
    pandas.Series of str
        e.g. ``imagenet-resnet18-adam-bs256-ms0-dsNone``.
    """
    def seed(col):
        return meta[col].astype("Int64").astype("string").fillna("None")

    return (
        meta["task"].astype(str) + "-" + meta["architecture"].astype(str) + "-"
        + meta["learning_rule"].astype(str) + "-bs" + meta["batch_size"].astype(str)
        + "-ms" + seed("model_seed") + "-ds" + seed("dataset_seed")
    ).astype(str)


def synthetic_table(meta, n_checkpoints=21, signal=1.0, seed=0, source="synthetic",
                    conditions=((1.0, 0.0, 0),), forward_gradient=False, feedback_artifact=0.0):
    """A tidy table whose observables carry a planted learning-rule signal.

    Every observable trajectory is ``base + signal * effect[rule, obs] * t +
    noise`` with ``t`` in [0, 1] along training and unit-variance Gaussian
    noise, so classifiers separate the rules well above chance when
    ``signal`` is large and at chance when it is 0. Non-admissible
    statistics are occasionally infinite, as in the public data.

    ``feedback_artifact`` plants what the public ``gradavg`` shows under FA
    and IA (its backward reads the feedback weights B): an offset of the
    three ``gradavg`` statistics of FA / IA networks, the same at every
    checkpoint (present at checkpoint 0, before any learning).
    ``forward_gradient`` records the ``gradfwd`` columns: the ``gradavg``
    values without that offset (equal to ``gradavg`` for the other rules,
    as for backprop networks in generated data).

    Parameters
    ----------
    meta : pandas.DataFrame, shape (n_trajectories, ...)
        One row per (network, layer) with columns ``task``, ``architecture``,
        ``learning_rule``, ``batch_size``, ``model_seed``, ``dataset_seed``,
        ``layer_name`` and ``layer_position`` (or
        ``layer_position_inferred``); an optional ``layer_index`` is kept,
        otherwise ``layer_index`` is null (depth unknown).
    n_checkpoints : int
    signal : float
        Strength of the rule effect relative to the noise.
    seed : int
    source : str
    conditions : sequence of (unit_fraction, noise_std, obs_seed)
        Measurement conditions; each trajectory is repeated per condition,
        and the signal shrinks with noise and with fewer units.
    forward_gradient : bool
        Fill the ``gradfwd`` columns (else they are null, as in the public data).
    feedback_artifact : float
        Offset (in noise standard deviations) of FA / IA's ``gradavg``
        statistics at every checkpoint (0: none).

    Returns
    -------
    pandas.DataFrame, shape (n_trajectories * len(conditions) * n_checkpoints, 71)
        Columns in :data:`lrid_analysis.dataset.COLUMNS` order (the optional
        ones null unless given: ``gradfwd`` with ``forward_gradient``, the
        learning curve and layer sizes when ``meta`` has them); extra columns
        of ``meta`` follow.

    Examples
    --------
    >>> meta = public_meta().head(64)
    >>> table = synthetic_table(meta, n_checkpoints=3, forward_gradient=True, feedback_artifact=5.0)
    >>> fa = table["learning_rule"].isin(FEEDBACK_RULES)
    >>> gap = table["gradavgraw_id"] - table["gradfwdraw_id"]
    >>> bool(np.allclose(gap[fa], 5.0, atol=1e-5)), bool((gap[~fa] == 0).all())
    (True, True)
    """
    rng = np.random.default_rng(seed)
    meta = meta.reset_index(drop=True).copy()
    if "layer_position" not in meta.columns:
        meta["layer_position"] = meta["layer_position_inferred"]
    rules = sorted(meta["learning_rule"].unique())
    effect = rng.normal(size=(len(rules), len(OBSERVABLE_NAMES)))
    base = rng.normal(size=len(OBSERVABLE_NAMES))
    rule_code = meta["learning_rule"].map({r: i for i, r in enumerate(rules)}).to_numpy()
    t = np.linspace(0.0, 1.0, n_checkpoints)
    meta["run_id"] = network_id(meta)
    # Row order within a network is not depth order in the public metadata:
    # without a given layer_index the depth is unknown (null).
    if "layer_index" not in meta.columns:
        meta["layer_index"] = pd.NA
    meta["layer_index"] = meta["layer_index"].astype("Int64")
    meta["source"] = source
    inadmissible = [i for i, n in enumerate(OBSERVABLE_NAMES) if n not in ADMISSIBLE_NAMES]
    artifact = np.float32(feedback_artifact) * meta["learning_rule"].isin(FEEDBACK_RULES).to_numpy(np.float32)
    frames = []
    for unit_fraction, noise_std, obs_seed in conditions:
        strength = signal * unit_fraction / (1.0 + noise_std)
        values = (
            base[None, None, :]
            + strength * effect[rule_code][:, None, :] * t[None, :, None]
            + rng.normal(size=(len(meta), n_checkpoints, len(OBSERVABLE_NAMES)))
        ).astype(np.float32)
        blowups = rng.random((len(meta), n_checkpoints, len(inadmissible))) < 0.01
        values[:, :, inadmissible] = np.where(blowups, np.float32(np.inf), values[:, :, inadmissible])
        forward = values[:, :, _GRADAVG].copy()  # the gradient through W: no feedback-weight artifact
        values[:, :, _GRADAVG] += artifact[:, None, None]
        rows = meta.loc[np.repeat(np.arange(len(meta)), n_checkpoints)].reset_index(drop=True)
        rows["checkpoint"] = np.tile(np.arange(n_checkpoints), len(meta))
        rows["epoch"] = rows["checkpoint"] * 5.0
        rows["unit_fraction"], rows["noise_std"], rows["obs_seed"] = unit_fraction, noise_std, obs_seed
        obs = pd.DataFrame(values.reshape(-1, len(OBSERVABLE_NAMES)), columns=list(OBSERVABLE_NAMES))
        if forward_gradient:
            obs[list(FORWARD_GRADIENT_NAMES)] = forward.reshape(-1, len(FORWARD_GRADIENT_NAMES))
        frames.append(pd.concat([rows, obs], axis=1))
    out = pd.concat(frames, ignore_index=True)
    for name in OPTIONAL_COLUMNS:  # not recorded unless given above or by the caller's meta
        if name not in out.columns:
            integer = pa.types.is_integer(SCHEMA.field(name).type)
            out[name] = pd.array([pd.NA] * len(out), dtype="Int64") if integer else np.nan
    extra = [c for c in out.columns if c not in SCHEMA.names
             and c not in ("layer_position_inferred", "start_idxs", "end_idxs")]
    return out[list(SCHEMA.names) + extra]
