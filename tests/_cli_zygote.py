"""A pre-loaded interpreter that forks real ``cnnlab`` CLI processes on request (for kill tests).

Starting ``python -m cnnlab train`` costs seconds of imports (torch, and torch._dynamo, which
building an optimizer imports); the exact-resume kill test starts dozens. This script imports
everything once, then for each JSON line ``{"argv": [...], "env": {...}, "log": PATH}`` on stdin
forks a child that runs ``cnnlab.cli.main(argv)`` with that environment, stdout/stderr to ``log``,
and exits with its code. It prints ``pid N`` after the fork and ``exit N CODE`` when the child is
gone (``CODE`` negative: killed by that signal). Run: ``python tests/_cli_zygote.py``.
"""

from __future__ import annotations

import json
import os
import sys

import torch

torch.set_num_threads(1)  # no thread pool exists before the fork: children start clean

import cnnlab.cli  # noqa: E402
import cnnlab.report  # noqa: E402,F401
import cnnlab.train.api  # noqa: E402,F401
import cnnlab.workflows  # noqa: E402,F401

torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], fused=True)  # imports what optimizers import


def serve() -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.environ.update(req.get("env", {}))
            code = 1
            try:
                code = cnnlab.cli.main(req["argv"])
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(f"exit {pid} {code}", flush=True)


if __name__ == "__main__":
    serve()
