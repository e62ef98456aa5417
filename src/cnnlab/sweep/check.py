"""Before anything runs: try every value of a space on the spec and the training config.

Spec values are tried one at a time on the spec; training options are tried together, as trials get
them (an ``lr_steps`` needs ``schedule=step``, a ``batch_schedule`` milestone must lie inside every
``epochs`` value, a batch must stay whole). A value or combination that cannot work is a
``CnnlabError`` naming it, so a bad sweep fails before its first trial.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.sweep.space import Param, Space, apply_spec, build_space


def check_space(params: list[Param], base_spec: dict[str, Any], base_config: dict[str, Any],
                sampler: str | None, trials: int | None) -> Space:
    """Build the space, then try every listed value (and each range's ends): spec values on the spec,
    training options together on the config (``_check_options``)."""
    import dataclasses

    from cnnlab.spec import load_spec
    from cnnlab.train import TrainConfig

    options = [f.name for f in dataclasses.fields(TrainConfig)]
    space = build_space(params, options, sampler, trials)
    if trials is not None and trials < 1:
        raise CnnlabError(f"--trials {trials}: use a whole number >= 1")
    load_spec(base_spec)
    for p in space.params + [Param(k, "choice", values=[v]) for k, v in space.fixed.items()]:
        if p.is_spec:
            for v in _checked_values(p):
                try:
                    load_spec(apply_spec(base_spec, {p.name: v}))
                except CnnlabError as exc:
                    raise CnnlabError(f"search space: {p.name}={v!r} cannot work: {exc}") from None
    _check_options(space, base_config)
    return space


MAX_CHECKED = 4096  # training-option combinations tried before a sweep starts (beyond: each value once)


def _checked_values(p: Param) -> list[Any]:
    values = p.grid() if p.gridable() else [p.low, p.high]
    return [int(v) for v in values] if p.kind == "int" else values


def _check_options(space: Space, base_config: dict[str, Any]) -> None:
    """Every combination of the training options (fixed ones, listed values, range ends) on the config,
    as a trial would get it: an ``lr_steps`` needs ``schedule=step``, a ``batch_schedule`` milestone must
    lie inside every ``epochs`` value. Past ``MAX_CHECKED`` combinations each value is tried once, with
    the other options at their first value. The error names the value, or the combination, that fails."""
    import itertools
    import math

    axes = [[(p.name, v) for v in _checked_values(p)] for p in space.params if not p.is_spec]
    axes += [[(k, v)] for k, v in space.fixed.items() if not k.startswith("layers")]
    if math.prod(len(a) for a in axes) <= MAX_CHECKED:
        combos: Iterable[Iterable[tuple[str, Any]]] = itertools.product(*axes)
    else:
        first = [a[0] for a in axes]
        combos = ([*first[:i], pair, *first[i + 1:]] for i, a in enumerate(axes) for pair in a)
    for combo in combos:
        pairs = list(combo)
        try:
            _trial_config(base_config, pairs)
        except CnnlabError as exc:
            raise _blame(base_config, pairs, exc, space.names) from None


def _trial_config(base_config: dict[str, Any], pairs: list[tuple[str, Any]]) -> Any:
    """The ``TrainConfig`` of a trial with these option values (``"none"`` turns a schedule off)."""
    from cnnlab.train import TrainConfig

    return TrainConfig.from_dict({**base_config, **dict(pairs)})


def _blame(base_config: dict[str, Any], pairs: list[tuple[str, Any]], exc: CnnlabError,
           searched: list[str]) -> CnnlabError:
    """``name=value cannot work`` when that searched value with the fixed options alone fails the same way
    (``lr_steps='none'`` with a fixed ``schedule=step``), else the whole combination."""
    fixed = [(k, v) for k, v in pairs if k not in searched]
    for name, value in pairs:
        if name not in searched and len(pairs) > 1:
            continue
        try:
            _trial_config(base_config, [*fixed, (name, value)])
        except CnnlabError as alone:
            if str(alone) == str(exc):
                return CnnlabError(f"search space: {name}={value!r} cannot work: {exc}")
    given = ", ".join(f"{k}={v!r}" for k, v in pairs)
    return CnnlabError(f"search space: the trial {given} cannot work: {exc}; change one of these values "
                       "or sweep them separately")
