"""torchrun (`torch.distributed.run`), ending in one line instead of a traceback.

- Asked to stop (SIGTERM, SIGINT): torchrun stops its workers, then lets a SignalException escape. The workers have
  said where the run stopped and how to resume it, so only the exit status is left to give.
- A worker failed (and no restart is left): the worker printed its own error line or traceback; torchrun's
  report of it is left out and its exit status passed on, or one line when a signal killed it.
- The nodes did not meet (a node cannot reach the master, the nodes disagree on --nnodes): torchrun gives up after
  `--rdzv-conf timeout=S`, and this says so in one line that names the master and the setting to change.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from argparse import Namespace

# torchrun's C++ side logs every failed connection attempt with a stack of frames while the nodes meet; a failed
# rendezvous is reported below in one line. The level is read when torch loads, so it is set for this process
# alone and given back before the workers start (they inherit this environment).
_WORKERS_LOG_LEVEL = os.environ.get("TORCH_CPP_LOG_LEVEL")
os.environ["TORCH_CPP_LOG_LEVEL"] = "FATAL"

from torch.distributed import DistError, DistNetworkError  # noqa: E402
from torch.distributed.elastic.multiprocessing.api import SignalException  # noqa: E402
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError  # noqa: E402
from torch.distributed.run import main, parse_args  # noqa: E402

from simrec_cli.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, SimrecError  # noqa: E402

if _WORKERS_LOG_LEVEL is None:
    del os.environ["TORCH_CPP_LOG_LEVEL"]
else:
    os.environ["TORCH_CPP_LOG_LEVEL"] = _WORKERS_LOG_LEVEL


def rendezvous_error(error: DistError, args: Namespace) -> SimrecError:
    """What went wrong while the nodes were meeting, for the node that ran `args`."""
    master = f"{args.master_addr}:{args.master_port}"
    timeout = args.rdzv_conf.removeprefix("timeout=") if args.rdzv_conf.startswith("timeout=") else "the set"
    reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
    if isinstance(error, DistNetworkError) and "in use" in reason:
        return SimrecError(f"node {args.node_rank} cannot listen on {master}: {reason}", "choose a free --master-port")
    if isinstance(error, DistNetworkError):
        return SimrecError(
            f"node {args.node_rank} could not reach the master node at {master} within {timeout} s",
            "start node 0 too, check --master-addr, --master-port and the firewall, or raise "
            "train.ddp.rendezvous_timeout",
        )
    return SimrecError(
        f"the {args.nnodes} nodes did not all meet at {master} within {timeout} s ({reason})",
        "start every node with the same --nnodes and its own --node-rank, or raise train.ddp.rendezvous_timeout",
    )


def failed_worker_status(failure: ChildFailedError) -> int:
    """The first failed worker's exit status; a line when a signal killed it, since it could not say so itself."""
    rank, first = failure.get_first_failure()
    if first.exitcode >= 0:
        return first.exitcode or 1
    name = signal.Signals(-first.exitcode).name if -first.exitcode in signal.valid_signals() else -first.exitcode
    print(f"error: worker process of rank {rank} was killed by {name}", file=sys.stderr)
    return 128 - first.exitcode


def stop_when_orphaned(parent: int) -> None:
    """SIGTERM to this torchrun when the `simrec` that started it dies, even by SIGKILL.

    torchrun runs in a session of its own (so a signal reaches it once, through the launching command), which also
    shields it from the launcher's death: without this watch it would train on with no one waiting for it.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run() -> int:
    stop_when_orphaned(os.getppid())
    # torchrun's own log of a failed worker or rendezvous repeats what this module reports in one line
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        main()
    except SignalException:
        return EXIT_INTERRUPTED
    except ChildFailedError as failure:
        return failed_worker_status(failure)
    except DistError as error:
        print(f"error: {rendezvous_error(error, parse_args(sys.argv[1:]))}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(run())
