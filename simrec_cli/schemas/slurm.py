"""A SLURM job's environment, and host names for the master of a multi-node run.

SLURM writes its variables; users and scripts overwrite them. Each is read strictly: `2abc` is not 2, `-1` is a
number below the least allowed, and counts are bounded (a node count of 10**30 is a typo, not a cluster).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, Strict
from typing_extensions import TypedDict

from simrec_cli.schemas.reading import InputFormat
from simrec_cli.schemas.types import WholeText, expected, rule
from simrec_cli.schemas.violations import Location

MAX_NODES = 100_000  # beyond the largest machines' node counts
MAX_PROCESSES_PER_NODE = 1024  # GPUs or tasks on one node

_TASKS = re.compile(r"([0-9]{1,18})(?:\(x[0-9]{1,18}\))?(?:,[0-9]{1,18}(?:\(x[0-9]{1,18}\))?)*")


def _tasks_per_node(value: object) -> object:
    """SLURM's task counts: `8`, or `8(x2)` (8 tasks on each of 2 nodes), or a list `8(x2),4`: this node's first."""
    if isinstance(value, str):
        match = _TASKS.fullmatch(value)
        if match is None:
            raise expected("a number of tasks such as 4 or 4(x2)")
        return int(match.group(1))
    return value


NodeCount = Annotated[WholeText, Field(ge=1, le=MAX_NODES)]
ProcessCount = Annotated[WholeText, Field(ge=0, le=MAX_PROCESSES_PER_NODE)]
TaskCount = Annotated[int, BeforeValidator(_tasks_per_node), Strict(), Field(ge=1, le=MAX_PROCESSES_PER_NODE)]


class SlurmVariables(TypedDict, total=False):
    """The variables simrec reads (those set and not blank; each optional here, required where it is used)."""

    SLURM_JOB_ID: WholeText
    SLURM_JOB_NUM_NODES: NodeCount
    SLURM_NNODES: NodeCount
    SLURM_NODEID: Annotated[WholeText, Field(ge=0, le=MAX_NODES - 1)]
    SLURM_GPUS_ON_NODE: ProcessCount
    SLURM_NTASKS_PER_NODE: TaskCount
    SLURM_STEP_NUM_TASKS: Annotated[WholeText, Field(ge=1)]
    SLURM_STEP_NUM_NODES: NodeCount
    SLURM_JOB_NODELIST: str
    SLURM_NODELIST: str


def _variable(data: Any, location: Location) -> tuple[str, str]:
    return (f"SLURM variable {location[0]}" if location else "", "")


SLURM_ENVIRONMENT = InputFormat[SlurmVariables](
    name="SLURM environment",
    schema=SlurmVariables,
    fix="check the job's SLURM_* variables: srun and sbatch set them, and a script may have changed them",
    locate=_variable,
)

MAX_HOST_NAME = 253  # DNS: a name of at most 253 characters, labels of at most 63
_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def host_rule(text: str) -> str | None:
    """What a master address must be when `text` is not one: an IP address or a host name."""
    try:
        ipaddress.ip_address(text)
        return None
    except ValueError:
        pass
    labels = text.removesuffix(".").split(".")
    if 0 < len(text) <= MAX_HOST_NAME and all(_LABEL.fullmatch(label) for label in labels):
        return None
    return "a host name (letters, digits and '-' in labels of up to 63, split by '.') or an IP address"


HOST = InputFormat[str](
    name="host",
    schema=Annotated[str, Strict(), rule(host_rule)],
    fix="give the host name or IP address of node 0",
)
