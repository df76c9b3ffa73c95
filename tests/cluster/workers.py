"""ledger_worker.py processes: one SDK worker per process, each polling one node."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import List, Optional

from cluster import LIVE_GROUPS, Node, tail

HERE = os.path.dirname(os.path.abspath(__file__))


class WorkerProcess:
    def __init__(self, workdir: str, node: Node, task_queue: str, ledger: str, sleep_s: float):
        self.node = node
        self.args = [node.address, task_queue, ledger, str(sleep_s)]
        self.log_path = os.path.join(workdir, f"worker-node{node.node_id}-{task_queue[-8:]}.log")
        self.proc: Optional[subprocess.Popen] = None

    def spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== worker start at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "ledger_worker.py")]
                                         + self.args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        LIVE_GROUPS.add(self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
            LIVE_GROUPS.discard(self.proc.pid)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)


def start_workers(workdir: str, nodes: List[Node], task_queue: str, ledger: str,
                  sleep_s: float) -> List[WorkerProcess]:
    workers = [WorkerProcess(workdir, n, task_queue, ledger, sleep_s) for n in nodes]
    for w in workers:
        w.spawn()
    return workers
