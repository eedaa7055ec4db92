"""Learning-rate tuning: a short pilot per (task, architecture, rule) over a grid of rates.

The paper's base learning rate was "optimal for a given architecture on a
particular dataset", rescaled for each batch size. :func:`tune` does that for
a preset: for every (task, architecture, rule) of its grid it trains one
pilot network per candidate rate (the preset's default rate times each of
``preset.lr_grid``) at the preset's ``base_batch``, model and dataset seeds
``None``, for ``preset.tune_epochs`` epochs, and scores it by its accuracy on
a held-out part of the *training* data (``validation="train_split"`` of
:func:`lrid_generate.tasks.make_task`; the task's own held-out examples, on
which the dataset's validation accuracy is measured, are never seen). The
most accurate rate wins (ties: the smaller rate); diverged pilots score
nothing. The choices go into the preset's learning-rate file (see
:attr:`lrid_generate.presets.Preset.learning_rate_file`), which the preset
reads, so a user can retune for other tasks or sizes.

Resuming. Every finished pilot is stored at once (atomically) in
``OUT/pilots.json``; running again skips them, so an interrupted tuning
resumes where it stopped and gives the same result (training is seeded).
Pilots stored with other settings (epochs, batch, data options) are an error.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from lrid_analysis.atomic import write_text_atomic
from lrid_generate.presets import SweepError, get_preset, learning_rate_path
from lrid_generate.recorder import FULL_ACCESS

__all__ = ["choose_rate", "pilot_specs", "tune"]

_PILOTS = "pilots.json"


def _key(task, architecture, rule):
    return f"{task}/{architecture}/{rule}"


def pilot_specs(preset, tasks=None, architectures=None, rules=None, epochs=None, lr_grid=None):
    """The pilot networks of a tuning run, grouped by (task, architecture, rule).

    Parameters
    ----------
    preset : str or Preset
    tasks, architectures, rules : sequence of str, optional
        Restrict the tuning to these (default: the whole grid).
    epochs : int, optional
        Pilot length (default ``preset.tune_epochs``).
    lr_grid : sequence of float, optional
        Multipliers of the default rate (default ``preset.lr_grid``).

    Returns
    -------
    dict
        ``"task/architecture/rule"`` -> list of ``(multiplier, RunSpec)``,
        one per entry of ``preset.lr_grid``, in grid order.
    """
    preset = get_preset(preset)
    first = {}
    for spec in preset.specs():
        first.setdefault((spec.task, spec.architecture, spec.learning_rule), spec)
    out = {}
    pairs = set(preset.pairs())
    for task, arch in preset.pairs():
        if (tasks and task not in tasks) or (architectures and arch not in architectures):
            continue
        if (task, preset.tune_representative(arch)) in pairs and preset.tune_representative(arch) != arch:
            continue  # takes its representative's rates
        for rule in preset.rules:
            if rules and rule not in rules:
                continue
            spec = first[task, arch, rule]
            n_epochs = epochs if epochs is not None else (
                preset.tune_epochs[task] if isinstance(preset.tune_epochs, dict) else preset.tune_epochs)
            default = preset.default_learning_rate(task, arch, rule)
            options = dict(spec.task_options, validation="train_split")
            options.setdefault("n_eval", preset.n_val)
            out[_key(task, arch, rule)] = [
                (float(m), dataclasses.replace(
                    spec, source=f"{preset.name}-tune", batch_size=int(preset.base_batch), model_seed=None,
                    dataset_seed=None, epochs=int(n_epochs), lr=default * float(m), n_checkpoints=2,
                    conditions=(FULL_ACCESS,), task_options=tuple(sorted(options.items())),
                ))
                for m in (preset.lr_grid if lr_grid is None else lr_grid)
            ]
    if not out:
        raise SweepError(f"nothing to tune in preset {preset.name!r} with tasks={tasks}, "
                         f"architectures={architectures}, rules={rules}")
    return out


def choose_rate(scores):
    """The winning rate among pilot results.

    Parameters
    ----------
    scores : dict
        Rate -> validation accuracy, or None for a diverged pilot.

    Returns
    -------
    rate : float or None
        The most accurate rate (the smaller one on a tie); None if every
        pilot diverged.
    at_edge : bool
        Whether the winner is the smallest or largest rate tried (the grid
        may need extending).
    """
    finite = {float(r): float(a) for r, a in scores.items() if a is not None}
    if not finite:
        return None, False
    best = max(finite.values())
    rate = min(r for r, a in finite.items() if a == best)
    rates = sorted(float(r) for r in scores)
    return rate, len(rates) > 1 and rate in (rates[0], rates[-1])


def _load_pilots(path):
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        return dict(data["pilots"])
    except (ValueError, KeyError, TypeError) as err:
        raise SweepError(f"{path}: not a tuning record ({type(err).__name__}: {err}); delete it to start over") \
            from err


def _pilot_id(spec):
    return f"{_key(spec.task, spec.architecture, spec.learning_rule)}/lr{spec.lr:.6g}"


def tune(preset, out, lr_file=None, tasks=None, architectures=None, rules=None, epochs=None, device="cpu",
         data_dir=None, limit=None, progress=True, pack=None, lr_grid=None):
    """Run (or resume) the learning-rate pilots of a preset and write the chosen rates.

    Parameters
    ----------
    preset : str or Preset
    out : str or Path
        Folder for the pilot records (``pilots.json``).
    lr_file : str or Path, optional
        Learning-rate file to write (default: the preset's
        ``learning_rate_file``). Entries for other (task, architecture,
        rule) already in it are kept.
    tasks, architectures, rules : sequence of str, optional
        Tune only these.
    epochs : int, optional
        Pilot length (default ``preset.tune_epochs``).
    device, data_dir
        As for :func:`lrid_generate.train.train_network`.
    limit : int, optional
        Train the missing pilots of whole packs, in grid order, until at
        least this many are trained, then stop (resume later); the file is
        written only once every pilot is done.
    progress : bool
        Show a progress bar.
    lr_grid : sequence of float, optional
        Multipliers to try instead of ``preset.lr_grid``, e.g. to extend the
        grid of a cell whose winner sat at its edge. Every rate stored for a
        cell (same pilot settings) competes, whichever grid it came from.
    pack : int, optional
        Pilots trained together as one packed model (the rates of one
        (task, architecture) and rule family differ only in their learning
        rate); default :func:`~lrid_generate.packed.default_pack_size`,
        ``1`` trains them one at a time. Packed training gives the same
        result as training alone (see :mod:`lrid_generate.packed`).

    Returns
    -------
    dict
        ``chosen`` (``"task/architecture/rule"`` -> rate at ``base_batch``;
        architectures of a ``preset.tune_family`` take their
        representative's, listed in ``inherited``),
        ``pilots`` (the same keys -> {rate: accuracy or None}), ``at_edge``
        (keys whose winner is at the end of the grid), ``trained`` (pilots
        trained by this call), ``missing`` (pilots still to run) and
        ``lr_file`` (the path written, or None while pilots are missing).
    """
    from tqdm.auto import tqdm

    from lrid_generate.packed import make_packs, train_pack

    preset = get_preset(preset)
    target = lr_file or preset.learning_rate_file
    if target is None:
        raise SweepError(f"preset {preset.name!r} has no learning_rate_file; pass lr_file")
    target = learning_rate_path(target) if lr_file is None else Path(lr_file)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / _PILOTS
    pilots = _load_pilots(record_path)
    groups = pilot_specs(preset, tasks, architectures, rules, epochs, lr_grid)
    todo = []
    for items in groups.values():
        for _, spec in items:
            stored = pilots.get(_pilot_id(spec))
            if stored is None:
                todo.append(spec)
            elif stored["spec"] != spec.to_dict():
                raise SweepError(f"{record_path} holds pilot {_pilot_id(spec)} with other settings; "
                                 "use another folder or delete the file")
    # pilots of one (task, architecture, rule family) train together; a limit takes whole packs, so an
    # interrupted tuning trains every pilot with the pack-mates of an uninterrupted one
    packs = make_packs(todo, pack=pack)
    if limit is not None:
        kept, n = [], 0
        for members in packs:
            if n >= int(limit):
                break
            kept.append(members)
            n += len(members)
        packs = kept
    trained = 0
    bar = tqdm(total=sum(map(len, packs)), disable=not progress, desc=f"tune {preset.name}", unit="pilot")
    for pack in packs:
        start = time.perf_counter()
        results = train_pack(pack, device=device, data_dir=data_dir)
        seconds = (time.perf_counter() - start) / len(pack)
        for spec, (_, summary) in zip(pack, results):
            pilots[_pilot_id(spec)] = {
                "spec": spec.to_dict(), "status": summary["status"],
                "val_accuracy": summary.get("val_accuracy") if summary["status"] == "complete" else None,
                "train_accuracy": summary.get("train_accuracy"), "seconds": seconds,
            }
        write_text_atomic(record_path, json.dumps({"preset": preset.name, "pilots": pilots}, indent=1))
        trained += len(pack)
        bar.update(len(pack))
    bar.close()

    scores, chosen, at_edge = {}, {}, []
    missing = 0
    for key, items in groups.items():
        scores[key] = {}
        done = 0
        for _, spec in items:
            done += _pilot_id(spec) in pilots
        missing += len(items) - done
        settings = _without_rate(items[0][1].to_dict())
        for stored in pilots.values():  # every rate tried for this cell, from any grid
            if _without_rate(stored["spec"]) == settings:
                scores[key][float(stored["spec"]["lr"])] = stored["val_accuracy"]
        if done == len(items):
            rate, edge = choose_rate(scores[key])
            if rate is not None:
                chosen[key] = rate
            if edge:
                at_edge.append(key)
    inherited = _inherited(preset, chosen)
    chosen.update({key: chosen[source] for key, source in inherited.items()})
    result = {"chosen": chosen, "pilots": scores, "at_edge": at_edge, "trained": trained, "missing": missing,
              "lr_file": None, "inherited": inherited}
    if missing == 0:
        _write_rates(target, preset, chosen, scores, at_edge, groups, inherited)
        result["lr_file"] = str(target)
    return result


def _without_rate(spec_dict):
    return {k: v for k, v in spec_dict.items() if k != "lr"}


def _inherited(preset, chosen):
    """``"task/architecture/rule"`` -> the representative's key it takes its rate from (``preset.tune_family``)."""
    out = {}
    pairs = set(preset.pairs())
    for task, arch in preset.pairs():
        source = preset.tune_representative(arch)
        if source == arch or (task, source) not in pairs:
            continue
        for rule in preset.rules:
            if _key(task, source, rule) in chosen:
                out[_key(task, arch, rule)] = _key(task, source, rule)
    return out


def _write_rates(path, preset, chosen, scores, at_edge, groups, inherited=None):
    from lrid_generate.store import versions

    old = {}
    if Path(path).is_file():
        try:
            old = json.loads(Path(path).read_text())
        except ValueError as err:
            raise SweepError(f"{path}: not a learning-rate file ({err})") from err
    rates = dict(old.get("learning_rates", {}))
    rates.update(chosen)
    pilots = dict(old.get("pilots", {}))
    pilots.update({k: {f"{r:.6g}": a for r, a in v.items()} for k, v in scores.items()})
    first = next(iter(groups.values()))[0][1]
    data = {
        "preset": preset.name,
        "base_batch": int(preset.base_batch),
        "lr_scaling": preset.lr_scaling,
        "description": (
            "base learning rates at base_batch chosen by `python -m lrid_generate tune`: one pilot per rate "
            "(default x lr_grid), model/dataset seeds None, scored by accuracy on a held-out part of the "
            "training data"
        ),
        "lr_grid": list(preset.lr_grid),
        "pilot_epochs": dict(sorted({**old.get("pilot_epochs", {}),
                                     **{k: v[0][1].epochs for k, v in groups.items()}}.items())),
        "pilot_n_eval": dict(first.task_options).get("n_eval"),
        "learning_rates": dict(sorted(rates.items())),
        "at_edge_of_grid": sorted(set(at_edge) | (set(old.get("at_edge_of_grid", [])) - set(chosen))),
        # a cell tuned directly now no longer inherits (its family changed since the old file)
        "inherited_from": dict(sorted({**{k: v for k, v in old.get("inherited_from", {}).items()
                                          if k not in chosen or k in (inherited or {})},
                                       **(inherited or {})}.items())),
        "pilots": dict(sorted(pilots.items())),
        "versions": versions(),
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")
