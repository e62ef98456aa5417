"""Training throughput (images/s) of ``resnet18`` at 32x32 and ``keras-mnist``, bf16 vs fp32.

For each net and precision, two numbers on the same data (random uint8 images, 10 classes):
- ``cnnlab``: ``cnnlab.train`` (SGD, channels-last, no augmentation, no validation), images/s
  of its second epoch from ``metrics.jsonl`` (the first pays for cuDNN autotuning);
- ``plain``: the same ``cnnlab.model.build`` module in a bare PyTorch loop with the batches
  already on the GPU (the ceiling: no data movement, no bookkeeping).
``cnnlab / plain`` shows what the trainer's loop costs. resnet18 is the zoo's torchvision-layout
ResNet-18 with its input set to 3x32x32 and 10 outputs.

    python bench/gpu_throughput.py                # on a CUDA machine (bench/gpu_run.sh)
    python bench/gpu_throughput.py --smoke        # CPU check of the code path only
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gpu_common import device_facts, now, pick_device, write_result


def net_spec(name: str) -> dict[str, Any]:
    """The zoo spec as a dict; resnet18 re-targeted to CIFAR-sized input (3x32x32, 10 classes)."""
    from cnnlab.spec import load_spec

    spec = load_spec(name).to_dict()
    if name == "resnet18":
        spec["name"], spec["input"] = "resnet18-32", [3, 32, 32]
        assert "output" in spec["layers"][-1], spec["layers"][-1]
        spec["layers"][-1] = {"output": 10}
    return spec


def fake_bundle(shape: tuple[int, int, int], n: int) -> Any:
    from cnnlab.data import DataBundle, ImageSet

    rng = np.random.default_rng(0)
    classes = [str(i) for i in range(10)]
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)  # (N, C, H, W)
    labels = rng.integers(0, 10, size=n).astype(np.int64)
    train = ImageSet(images, labels, classes, [f"gen:{i}" for i in range(n)])
    empty = ImageSet(images[:0], labels[:0], classes, [])
    return DataBundle(train, empty, None, classes, (0.5,) * shape[0], (0.25,) * shape[0], shape, source="random")


def cnnlab_ips(spec: dict[str, Any], data: Any, batch: int, steps: int, precision: str, device: str) -> float:
    import cnnlab

    with tempfile.TemporaryDirectory() as tmp:
        cnnlab.train(spec, data, out=Path(tmp) / "run", quiet=True, report=False, epochs=2, batch_size=batch,
                     optimizer="sgd", lr=0.01, schedule="constant", augment=False, precision=precision,
                     channels_last=True, device=device, max_steps_per_epoch=steps, checkpoint_minutes=1e6)
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    return float(rows[-1]["images_per_s"])


def plain_ips(spec: dict[str, Any], batch: int, steps: int, precision: str, device: torch.device) -> float:
    from cnnlab.model import build
    from cnnlab.spec import load_spec

    torch.manual_seed(0)
    model = build(load_spec(spec)).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    c, h, w = spec["input"]
    x = torch.randn(batch, c, h, w, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=precision == "bf16"):
            loss = F.cross_entropy(model(x).float(), y)  # model(x): (B, 10)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(max(3, steps // 5)):  # warm-up
        step()
    start = now(device)
    for _ in range(steps):
        step()
    return batch * steps / (now(device) - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="CPU check: 3 steps of batch 8, fp32 and bf16")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per measurement")
    args = parser.parse_args()
    device = pick_device(args.smoke)
    torch.backends.cudnn.benchmark = True
    plan = {"keras-mnist": ((1, 28, 28), 512), "resnet18": ((3, 32, 32), 256)}
    steps = 3 if args.smoke else args.steps
    rows: list[dict[str, Any]] = []
    out_name = "gpu_throughput" + ("_smoke" if args.smoke else "")
    for name, (shape, batch) in plan.items():
        batch = 8 if args.smoke else batch
        spec = net_spec(name)
        data = fake_bundle(shape, batch * steps)
        for precision in ("fp32", "bf16"):
            ours = cnnlab_ips(spec, data, batch, steps, precision, device.type)
            ceiling = plain_ips(spec, batch, steps, precision, device)
            rows.append({"net": name, "input": list(shape), "batch": batch, "precision": precision,
                         "cnnlab_images_per_s": round(ours), "plain_images_per_s": round(ceiling),
                         "ratio": round(ours / ceiling, 3)})
            print(f"{name:12s} {precision}  batch {batch:4d}  cnnlab {ours:10.0f} img/s   "
                  f"plain loop {ceiling:10.0f} img/s   ratio {ours / ceiling:.2f}", flush=True)
            write_result(out_name, {"name": "gpu_throughput", "smoke": args.smoke, "steps": steps,
                                    "facts": device_facts(device), "rows": rows})  # after every row
    for name in plan:
        fp32, bf16 = (r for r in rows if r["net"] == name)
        print(f"{name}: bf16 / fp32 = {bf16['cnnlab_images_per_s'] / max(fp32['cnnlab_images_per_s'], 1):.2f} (cnnlab), "
              f"{bf16['plain_images_per_s'] / max(fp32['plain_images_per_s'], 1):.2f} (plain)")
    print("wrote", out_name)


if __name__ == "__main__":
    main()
