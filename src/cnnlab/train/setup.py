"""Building what the loop needs: data, model (DDP, compile, channels-last), optimizer, loaders.

Each function takes the resolved ``TrainConfig`` and returns plain objects; ``trainer.py`` runs them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from cnnlab.train.config import Optimizer, TrainConfig

if TYPE_CHECKING:
    from cnnlab.data import BatchLoader, DataBundle
    from cnnlab.distributed import DistInfo


@dataclass
class Parts:
    """The built pieces of one training run."""

    model: torch.nn.Module  # what the step calls (maybe DDP- and compile-wrapped)
    raw: torch.nn.Module  # the user's module (weights are saved from it)
    optimizer: torch.optim.Optimizer
    train_loader: BatchLoader
    val_loader: BatchLoader | None
    device: torch.device
    finetune: Any = None  # FreezeSchedule with --init-from (train/finetune.py), else None


def load_bundle(source: Any, input_shape: tuple[int, int, int], cfg: TrainConfig, show: bool) -> DataBundle:
    """A ``DataBundle`` as given, or loaded from ``source`` with the config's split, seed and resize."""
    from cnnlab.data import DataBundle, load_data

    if isinstance(source, DataBundle):
        return source
    return load_data(str(source), input_shape, val_split=cfg.val_split, seed=cfg.seed,
                     resize=cfg.resize, strict=cfg.strict, progress=show)


def data_info(bundle: DataBundle, source: Any) -> dict[str, Any]:
    """What ``RUN/data.json`` records about the data (contract: source, input_shape, resize, mean, std...)."""
    counts = {"train": len(bundle.train.labels), "val": len(bundle.val.labels)}
    if bundle.test is not None:
        counts["test"] = len(bundle.test.labels)
    return {
        "source": _source_text(source, bundle),
        "input_shape": list(bundle.input_shape),
        "resize": bundle.resize,
        "mean": [float(m) for m in bundle.mean],
        "std": [float(s) for s in bundle.std],
        "counts": counts,
        "skipped": len(bundle.skipped),
        "description": getattr(bundle, "description", ""),
    }


def build_model(spec: Any, cfg: TrainConfig, device: torch.device, dist: DistInfo) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(model to call, raw module): seeded init, SyncBN, channels-last, DDP, compile, in that order."""
    from cnnlab.distributed import wrap_model
    from cnnlab.model import build

    torch.manual_seed(cfg.seed)  # same initial weights on every rank and every run
    raw = build(spec)
    if cfg.sync_bn and dist.distributed:
        if device.type != "cuda":  # DDP would raise "SyncBatchNorm layers only work with GPU modules"
            from cnnlab.errors import CnnlabError

            raise CnnlabError(f"--sync-bn needs CUDA GPUs: PyTorch's SyncBatchNorm does not run on {device.type}; "
                              "drop --sync-bn (each process then normalises with its own batch's statistics)")
        raw = torch.nn.SyncBatchNorm.convert_sync_batchnorm(raw)  # statistics over the global batch
    raw = raw.to(device)
    if cfg.channels_last:
        raw = raw.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    model = wrap_model(raw, dist)
    if cfg.compile:
        model = torch.compile(model)  # type: ignore[assignment]
    return model, raw


def build_optimizer(raw: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW or SGD+Nesterov; no weight decay on biases and norm scales; fused kernels where they exist."""
    decay = [p for p in raw.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in raw.parameters() if p.requires_grad and p.ndim <= 1]
    groups: list[dict[str, Any]] = [{"params": decay, "weight_decay": cfg.weight_decay},
                                    {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if cfg.init_from or (cfg.lr_ratio or 1.0) != 1.0:  # per-layer groups with lr_scale (train/finetune.py)
        from cnnlab.train.finetune import param_groups

        groups = param_groups(raw, float(cfg.weight_decay or 0.0), float(cfg.lr_ratio or 1.0))
    lr = float(cfg.lr or 0.0)
    choices: list[dict[str, Any]] = [{"fused": True}, {"foreach": True}, {}]
    for fast in choices:
        if "fused" in fast and device.type not in ("cpu", "cuda"):
            continue
        try:
            if cfg.optimizer is Optimizer.SGD:
                return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=True, **fast)
            return torch.optim.AdamW(groups, lr=lr, **fast)
        except (RuntimeError, ValueError, TypeError):  # this build/device lacks that kernel
            continue
    raise AssertionError("unreachable: the plain optimizer always builds")


def build_loaders(bundle: DataBundle, cfg: TrainConfig, device: torch.device,
                  dist: DistInfo) -> tuple[BatchLoader, BatchLoader | None]:
    """Training loader (shuffled, augmented, sharded per rank) and validation loader (disjoint shards)."""
    from cnnlab.data import Augment, BatchLoader
    from cnnlab.train.batches import drop_last

    augment = (Augment(translate=int(cfg.translate or 0), hflip=bool(cfg.hflip), zoom=float(cfg.zoom),
                       rotate=float(cfg.rotate), scale=float(cfg.scale))
               if cfg.augment else None)
    n_train = len(bundle.train.labels)
    train_loader = BatchLoader(
        bundle.train, cfg.batch_size, shuffle=True, seed=cfg.seed, mean=bundle.mean, std=bundle.std,
        device=device, augment=augment, drop_last=drop_last(n_train, cfg.batch_size, dist.world_size),
        rank=dist.rank, world_size=dist.world_size,
    )
    val_loader = None
    if len(bundle.val.labels):
        val_loader = BatchLoader(
            bundle.val, cfg.eval_batch_size, shuffle=False, seed=cfg.seed, mean=bundle.mean, std=bundle.std,
            device=device, rank=dist.rank, world_size=dist.world_size,
        )
    return train_loader, val_loader


def _source_text(source: Any, bundle: DataBundle) -> str:
    """The data source as ``--resume`` can load it again: absolute for paths (not resolved through
    symlinks, so it reads as the user's path), the name otherwise."""
    from pathlib import Path

    from cnnlab.data import DataBundle

    if isinstance(source, DataBundle):
        return bundle.source or "in-memory"
    text = str(source)
    return os.path.abspath(text) if Path(text).exists() else text
