"""``cnnlab devices``: what this machine offers for training (``--devices N`` on ``train`` uses
``cnnlab.distributed.launch``).

    cnnlab devices                 # what this machine offers: CPU, CUDA GPUs, MPS, bf16, backends
    cnnlab devices --json
    cnnlab train lenet5 --data mnist --devices 2     # = torchrun --standalone --nproc_per_node=2 -m cnnlab train ...

Registration never imports torch; the handlers do.
"""

from __future__ import annotations

import argparse
import json

from cnnlab.cli.help import HelpFormatter


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "devices",
        help="show the CPU/GPU devices and distributed backends PyTorch sees here",
        description="Show what this machine offers for training: CPU threads, CUDA GPUs (name, "
                    "memory, bf16), Apple MPS, the distributed backends (nccl, gloo) and, inside a "
                    "torchrun job, what this rank sees.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=_devices)


def _devices(args: argparse.Namespace) -> int:
    from cnnlab.distributed import device_report

    report = device_report()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"torch {report['torch']}; CPU: {report['cpu_count']} cores, {report['cpu_threads']} threads used")
    if report["cuda"]:
        for gpu in report["cuda"]:
            print(f"cuda:{gpu['index']}  {gpu['name']}  {gpu['memory_gib']} GiB  "
                  f"compute capability {gpu['capability']}")
        print(f"bf16 on CUDA: {'yes' if report['bf16_cuda'] else 'no'}")
    else:
        print("CUDA: no GPU visible")
    print(f"Apple MPS: {'yes' if report['mps'] else 'no'}")
    backends = ", ".join(name for name, ok in report["backends"].items() if ok) or "none"
    print(f"distributed backends: {backends}")
    default = "cuda" if report["cuda"] else ("mps" if report["mps"] else "cpu")
    print(f"--device auto picks: {default}")
    if report["torchrun"]:
        env = report["torchrun"]
        print(f"inside torchrun: rank {env.get('RANK')} of {env.get('WORLD_SIZE')} "
              f"(local rank {env.get('LOCAL_RANK')})")
    return 0
