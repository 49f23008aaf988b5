"""torchrun (`torch.distributed.run`), ending quietly when it is asked to stop.

On SIGTERM or SIGINT torchrun stops its workers, then lets a SignalException escape as a traceback. By then the
workers have said where the run stopped and how to resume it, so the launcher only needs the exit status.
"""

from __future__ import annotations

import sys

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.run import main

from simrec_cli.errors import EXIT_INTERRUPTED

if __name__ == "__main__":
    try:
        main()
    except SignalException:
        sys.exit(EXIT_INTERRUPTED)
