"""The training loop: fast steps, exact resume, checkpoints, divergence and Ctrl-C handling.

Speed rules: the step never reads a number back from the device. Loss and correct counts are
summed on the device and read only at a *sync point* (every ``REFRESH_S`` seconds on one process,
every ``DDP_SYNC_STEPS`` steps under DDP so that all ranks decide together), at checkpoints and at
the end of the epoch. Validation runs under ``torch.inference_mode()``; gradients are dropped with
``zero_grad(set_to_none=True)``; the optimizer is fused where PyTorch has a fused kernel.

Exactness: the learning rate is a function of the step; the batch size of an epoch is a function
of the epoch (``batches.BatchPlan``, for ``--batch-schedule``); the data order and augmentation are
functions of ``(seed, epoch, batch)``; dropout draws from the global generator, which is
reseeded each step from ``(seed, rank, step)`` (``dropout_seed``); optimizer state is restored in
its parameters' memory format. So a resumed run repeats the uninterrupted one bit for bit (same
device and threads).
"""

from __future__ import annotations

import dataclasses
import math
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import torch
import torch.nn.functional as F

from cnnlab.errors import TrainingDiverged
from cnnlab.train import checkpoint as ckpt
from cnnlab.train.batches import BatchPlan, scaled_lr
from cnnlab.train.config import DEFAULT_WARMUP, Precision, TrainConfig
from cnnlab.train.progress import REFRESH_S, Progress
from cnnlab.train.run import RunDir
from cnnlab.train.schedule import LRSchedule
from cnnlab.train.setup import Parts
from cnnlab.train.state import autocast, capture_rng, restore_rng
from cnnlab.utils.testpoints import point

DDP_SYNC_STEPS = 25


@dataclasses.dataclass
class Position:
    """Where the loop stands; saved in every resume checkpoint."""

    epoch: int = 0  # epoch in progress (0-based)
    batch: int = 0  # next batch of that epoch
    step: int = 0  # optimizer steps done in total
    best_acc: float = -1.0
    best_epoch: int = 0
    stale: int = 0  # epochs since the best one (early stopping)
    loss_sum: float = 0.0  # partial epoch sums (this rank)
    correct: float = 0.0
    seen: int = 0
    train_time: float = 0.0  # seconds of training in this epoch so far


def dropout_seed(seed: int, rank: int, step: int) -> int:
    """The seed of step ``step``'s random draws (dropout) on process ``rank``: its own stream per rank,
    and a function of the step alone, so a resumed run draws exactly what the uninterrupted one did."""
    return ((seed * 1_000_003 + rank) * 1_000_000_007 + step) % (2**63 - 1)


class StopRequest:
    """SIGINT/SIGTERM set a flag that the loop checks after each step; a second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


def peak_lr(cfg: TrainConfig, world_size: int = 1) -> float:
    """The schedule's peak: ``cfg.lr``, scaled by ``lr_scaling`` from ``lr_reference_batch`` to the
    initial global batch (``batch_size`` x processes; a batch schedule does not rescale it)."""
    return scaled_lr(float(cfg.lr or 0), cfg.lr_scaling, cfg.batch_size * world_size, cfg.lr_reference_batch)


class Interrupted(Exception):
    """Raised inside the loop after the state was saved; ``train()`` turns it into exit 130."""


class Trainer:
    """Runs epochs over ``parts``; rank 0 writes the run folder.

    ``plan``: the run's ``BatchPlan`` (batch size and steps of each epoch), or a constant number of
    steps per epoch.
    """

    def __init__(self, parts: Parts, cfg: TrainConfig, run_dir: RunDir, progress: Progress, dist: Any,
                 plan: BatchPlan | int, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.p, self.cfg, self.run_dir, self.progress, self.dist = parts, cfg, run_dir, progress, dist
        self.plan = plan if isinstance(plan, BatchPlan) else BatchPlan.constant(cfg.batch_size, plan, cfg.epochs)
        self.on_epoch = on_epoch  # called with each epoch's metrics row (the sweep's pruning hook)
        self.peak_lr = peak_lr(cfg, dist.world_size)
        warmup = cfg.warmup if cfg.warmup is not None else DEFAULT_WARMUP[cfg.schedule]
        self.schedule = LRSchedule(cfg.schedule, self.peak_lr, self.plan.total, warmup,
                                   milestones=self.plan.step_milestones(cfg.lr_steps))
        if parts.finetune is not None:  # --init-from: a fresh schedule once the body unfreezes
            self.schedule = parts.finetune.lr_schedule(self.schedule, self.plan)
        fp16 = cfg.precision is Precision.FP16
        self.scaler = torch.amp.GradScaler(parts.device.type) if fp16 else None
        self.stop = StopRequest()
        if parts.device.type == "cuda":
            # Every step of a run sees the same input shape (one spec, one batch size; the last batch and
            # validation add a shape or two), so cuDNN's one-off timing of its convolution algorithms per
            # shape is paid back within the first steps (typically 10-30% faster convolutions). Price: the
            # algorithm picked may differ between processes, so GPU runs are not bit-identical run to run
            # (they are not anyway with atomics in cuDNN backward); CPU runs are unaffected.
            torch.backends.cudnn.benchmark = True
        self.pos = Position()
        self.eval_model = parts.raw

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps of the epoch in progress (a batch schedule changes it)."""
        return self.plan.steps_in(self.pos.epoch)

    # ----------------------------------------------------------------- state
    def restore(self, state: ckpt.TrainingState) -> None:
        """Load weights, optimizer, scaler, RNG and loop position from a resume checkpoint."""
        self.p.raw.load_state_dict(state.weights)
        self.p.optimizer.load_state_dict(state.optimizer)
        ckpt.match_parameter_layout(self.p.optimizer)  # fused AdamW + channels-last needs it (issue 10)
        if self.scaler is not None and state.meta.get("scaler"):
            self.scaler.load_state_dict(state.meta["scaler"])
        restore_rng(state.rng)
        self.pos = Position(**state.meta["position"])
        if self.dist.distributed and not self.dist.is_main:  # the saved partial sums already count every rank
            self.pos.loss_sum, self.pos.correct, self.pos.seen = 0.0, 0.0, 0

    def _save_resume(self, partial: tuple[float, float, int] | None = None) -> None:
        """``partial``: this epoch's (loss_sum, correct, seen) over all ranks, saved instead of rank 0's."""
        if not self.dist.is_main:
            return
        position = dataclasses.asdict(self.pos)
        if partial is not None:
            position["loss_sum"], position["correct"], position["seen"] = partial
        meta = {"position": position, "config": self.cfg.to_dict(),
                "runtime": {"threads": torch.get_num_threads(), "device": str(self.p.device), "torch": torch.__version__}}
        if self.scaler is not None:
            meta["scaler"] = self.scaler.state_dict()
        state = ckpt.TrainingState(ckpt.model_weights(self.p.raw), self.p.optimizer.state_dict(), capture_rng(), meta)
        ckpt.write_state(self.run_dir.checkpoints / "resume.safetensors", state)

    # ----------------------------------------------------------------- loop
    def fit(self) -> str:
        """Train to the last epoch (or early stop). Returns ``finished`` or ``stopped_early``."""
        with self.stop:
            while self.pos.epoch < self.cfg.epochs:
                self._train_epoch()
                row, is_best = self._end_epoch()
                self.progress.end_epoch(row, is_best)
                if self.on_epoch is not None:
                    self.on_epoch(row)
                if self.cfg.patience and self.pos.stale >= self.cfg.patience:
                    self.progress.info("train.early_stop", epoch=row["epoch"], patience=self.cfg.patience,
                                       best_epoch=self.pos.best_epoch)
                    return "stopped_early"
        return "finished"

    def _train_epoch(self) -> None:
        pos, loader = self.pos, self.p.train_loader
        loader.set_epoch(pos.epoch)
        loader.set_batch_size(self.plan.batch_size(pos.epoch), self.plan.drop_last(pos.epoch))
        self.p.model.train()
        if self.p.finetune is not None:  # --init-from: freeze all but the head in the first epochs
            self.p.finetune.start_epoch(pos.epoch)
        dev = self.p.device
        loss_sum = torch.tensor(pos.loss_sum, dtype=torch.float32, device=dev)
        correct = torch.tensor(int(pos.correct), dtype=torch.int64, device=dev)
        steps = self.steps_per_epoch
        self.progress.start_epoch(pos.epoch + 1, self.cfg.epochs, steps, pos.batch)
        start, last_sync, base_time = time.perf_counter(), time.perf_counter(), pos.train_time
        batches = loader.iter_from(pos.batch) if pos.batch else iter(loader)
        for x, y in batches:
            if pos.batch >= steps:
                break
            loss, logits = self._step(x, y)
            loss_sum += loss * y.shape[0]
            correct += (logits.argmax(1) == y).sum()
            pos.batch, pos.step, pos.seen = pos.batch + 1, pos.step + 1, pos.seen + int(y.shape[0])
            due_ckpt = bool(self.cfg.checkpoint_steps) and pos.step % self.cfg.checkpoint_steps == 0
            if self._sync_due(last_sync) or due_ckpt:
                pos.train_time = base_time + time.perf_counter() - start
                self._sync_point(loss_sum, correct, due_ckpt)
                last_sync = time.perf_counter()
        pos.loss_sum, pos.correct = float(loss_sum), float(correct)
        pos.train_time = base_time + time.perf_counter() - start

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on batch ``x`` (B, C, H, W), ``y`` (B,); returns detached loss and logits."""
        lr = self.schedule.lr_at(self.pos.step)
        for group in self.p.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)  # discriminative LRs (train/finetune.py)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        torch.manual_seed(dropout_seed(self.cfg.seed, self.dist.rank, self.pos.step))
        with autocast(self.cfg.precision, self.p.device):
            logits = self.p.model(x)  # (B, K)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=self.cfg.label_smoothing)
        point("step", epoch=self.pos.epoch, batch=self.pos.batch)
        self.p.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.p.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.p.optimizer.step()
        return loss.detach(), logits.detach()

    def _sync_due(self, last_sync: float) -> bool:
        if self.dist.distributed:
            return self.pos.step % DDP_SYNC_STEPS == 0
        return self.stop.requested or time.perf_counter() - last_sync >= REFRESH_S

    def _sync_point(self, loss_sum: torch.Tensor, correct: torch.Tensor, due_ckpt: bool) -> None:
        """Read the sums (one host sync), agree across ranks on stop/checkpoint, then act."""
        pos = self.pos
        pos.loss_sum, pos.correct = float(loss_sum), float(correct)
        want_time_ckpt = pos.train_time >= self._next_time_ckpt()
        flags = torch.tensor([not math.isfinite(pos.loss_sum), self.stop.requested, want_time_ckpt],
                             dtype=torch.float64)
        from cnnlab.distributed import all_reduce_sum

        diverged, stop, time_ckpt = (bool(v) for v in all_reduce_sum(flags).tolist())
        if diverged:
            self._diverged()
        if stop or due_ckpt or time_ckpt:
            from cnnlab.distributed import reduce_sums

            # every rank is here: save the partial epoch summed over ranks (restore gives it to rank 0)
            loss_all, correct_all, seen_all = reduce_sums([pos.loss_sum, pos.correct, pos.seen])
            self._save_resume((loss_all, correct_all, int(seen_all)))
            self._last_ckpt_time = pos.train_time
        if stop:
            raise Interrupted
        seen = max(1, pos.seen)
        ips = pos.seen * self.dist.world_size / max(pos.train_time, 1e-9)
        self.progress.update(pos.batch, self.steps_per_epoch, pos.loss_sum / seen, pos.correct / seen, ips)

    def _next_time_ckpt(self) -> float:
        return getattr(self, "_last_ckpt_time", 0.0) + 60.0 * self.cfg.checkpoint_minutes

    def _diverged(self) -> None:
        lr = self.schedule.lr_at(self.pos.step)
        raise TrainingDiverged(
            f"the training loss became NaN or infinite in epoch {self.pos.epoch + 1} (around step "
            f"{self.pos.step}, learning rate {lr:.3g}); training stopped and the last good checkpoint "
            f"in {self.run_dir.checkpoints} is kept. Try a lower learning rate, e.g. --lr "
            f"{float(self.cfg.lr or lr) / 10:.2g}"
            " (or --precision fp32 if you used fp16)"
        )

    # ----------------------------------------------------------------- epoch end
    def _end_epoch(self) -> tuple[dict[str, Any], bool]:
        from cnnlab.distributed import reduce_sums

        pos = self.pos
        loss_sum, correct, seen = reduce_sums([pos.loss_sum, pos.correct, pos.seen])
        if not math.isfinite(loss_sum):
            self._diverged()
        point("epoch_end", epoch=pos.epoch)
        val_loss, val_acc, val_time = self.validate()
        train_acc = correct / max(seen, 1)
        score = val_acc if val_acc is not None else train_acc
        is_best = score > pos.best_acc
        row = {
            "epoch": pos.epoch + 1, "train_loss": loss_sum / max(seen, 1), "train_acc": train_acc,
            "val_loss": val_loss, "val_acc": val_acc, "lr": self.schedule.lr_at(pos.step - 1),
            "epoch_time_s": pos.train_time + val_time, "images_per_s": seen / max(pos.train_time, 1e-9),
        }
        if is_best:
            pos.best_acc, pos.best_epoch, pos.stale = score, pos.epoch + 1, 0
        else:
            pos.stale += 1
        pos.epoch, pos.batch, pos.loss_sum, pos.correct, pos.seen, pos.train_time = pos.epoch + 1, 0, 0.0, 0.0, 0, 0.0
        self._last_ckpt_time = 0.0
        if self.dist.is_main:
            self._write_epoch(row, is_best)
        return row, is_best

    def _write_epoch(self, row: dict[str, Any], is_best: bool) -> None:
        """Metrics, then weights, then the resume state (the truth for --resume), then status.

        A crash between two of these makes --resume redo the epoch, which repeats it bit for bit;
        rows of epochs that the resume state does not include are dropped on resume.
        """
        epoch = row["epoch"]
        self.run_dir.append_metrics(row)
        point("checkpoint", epoch=epoch, after="metrics")
        weights = ckpt.model_weights(self.p.raw)
        meta = {"epoch": epoch, "step": self.pos.step, "metrics": row,
                "best_epoch": self.pos.best_epoch, "best_acc": self.pos.best_acc}
        ckpt.write_weights(self.run_dir.checkpoints / "last", weights, meta)
        point("checkpoint", epoch=epoch, after="last")
        if is_best:
            ckpt.write_weights(self.run_dir.checkpoints / "best", weights, meta)
            point("checkpoint", epoch=epoch, after="best")
        self._save_resume()
        point("checkpoint", epoch=epoch, after="resume")
        self.run_dir.set_status("running", epoch, step=self.pos.step)

    @torch.inference_mode()
    def _val_sums(self) -> torch.Tensor:
        model, dev = self.eval_model, self.p.device
        dtype = torch.float32 if dev.type == "mps" else torch.float64
        sums = torch.zeros(3, dtype=dtype, device=dev)  # loss sum, correct, count
        assert self.p.val_loader is not None
        for i, (x, y) in enumerate(self.p.val_loader):
            if self.cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(self.cfg.precision, dev):
                logits = model(x).float()  # (B, K)
            sums[0] += F.cross_entropy(logits, y, reduction="sum")
            sums[1] += (logits.argmax(1) == y).sum()
            sums[2] += y.shape[0]
            point("validation", epoch=self.pos.epoch, batch=i)
        return sums.cpu().double()

    def validate(self) -> tuple[float | None, float | None, float]:
        """(val loss, val accuracy, seconds) over the whole validation split, exact under DDP."""
        if self.p.val_loader is None:
            return None, None, 0.0
        from cnnlab.distributed import all_reduce_sum

        start = time.perf_counter()
        self.eval_model.eval()
        try:
            sums = self._val_sums().clone()
        finally:
            self.p.model.train()
        loss, correct, count = all_reduce_sum(sums).tolist()
        return loss / max(count, 1), correct / max(count, 1), time.perf_counter() - start
