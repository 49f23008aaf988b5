"""Dynamic batching: the expressions of concurrent requests share forward passes.

A request is a job: one image and its expressions. One thread owns the model: it first prepares it (compiles
the forward when asked; the server says it is ready only after that), then takes the oldest waiting
job, waits up to `max_wait` from that job's arrival for others, then runs one forward pass over up to
`max_batch` expressions taken in arrival order (a job with more expressions than fit goes on in the next pass).
Jobs whose image has the same content hash share one canvas in the pass, so the backbone encodes each distinct
image once. A failure of the model fails only the jobs of that pass; a job whose caller gave up is skipped.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

import numpy as np

from simrec_cli.serve.metrics import ServerMetrics
from simrec_cli.serve.model import ServedModel


@dataclass(frozen=True)
class RawAnswers:
    """A job's outputs in letterbox pixels: boxes [K, 5] (x1, y1, x2, y2, score) and masks [K, H, W] or None."""

    boxes: np.ndarray
    masks: np.ndarray | None


@dataclass(eq=False)
class Job:
    """One image (its content hash and letterboxed canvas) and the token rows of its expressions."""

    image_key: str
    canvas: np.ndarray
    tokens: np.ndarray
    future: Future[RawAnswers] = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)
    taken: int = 0  # rows handed to a forward pass so far
    boxes: list[np.ndarray] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.tokens)

    @property
    def abandoned(self) -> bool:
        return self.future.cancelled()


class Batcher:
    """Owns the model's thread; `submit` queues a job and returns the future of its answers."""

    def __init__(
        self,
        model: ServedModel,
        max_batch: int,
        max_wait_s: float,
        metrics: ServerMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.metrics = metrics
        self._clock = clock
        self._pending: deque[Job] = deque()
        self._condition = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="simrec-batcher", daemon=True)
        self._start_lock = threading.Lock()
        self._prepared = threading.Event()
        self._prepare_error: BaseException | None = None

    def start(self) -> None:
        """Start the model's thread (a second call does nothing); it prepares the model before the first pass."""
        with self._start_lock:
            if self._thread.ident is None:
                self._thread.start()

    def wait_ready(self) -> None:
        """Block until the model is prepared; raise what preparing it raised (the thread has ended then)."""
        self._prepared.wait()
        if self._prepare_error is not None:
            raise self._prepare_error

    def stop(self, timeout: float | None = None) -> None:
        """Answer every queued job, then end the thread."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, job: Job) -> Future[RawAnswers]:
        with self._condition:
            if self._stopping:
                raise RuntimeError("the batcher is stopping")
            self._pending.append(job)
            self.metrics.queue_length.add(job.rows)
            self._condition.notify_all()
        return job.future

    def _run(self) -> None:
        try:
            self.model.prepare()
        except BaseException as exc:  # handed to wait_ready's caller, which decides what it means
            self._prepare_error = exc
            self._refuse_all(exc)
            return
        finally:
            self._prepared.set()
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._answer(batch)

    def _refuse_all(self, exc: BaseException) -> None:
        """No model to answer with: fail what is queued and refuse what comes."""
        with self._condition:
            self._stopping = True
            for job in self._pending:
                self.metrics.queue_length.add(-(job.rows - job.taken))
                _settle(job.future, exception=exc)
            self._pending.clear()

    def _waiting_rows(self) -> int:
        return sum(job.rows - job.taken for job in self._pending if not job.abandoned)

    def _next_batch(self) -> list[tuple[Job, int]] | None:
        """Block until a batch is due; (job, row) pairs in arrival order, or None once stopped and drained."""
        with self._condition:
            while True:
                self._drop_abandoned()
                if self._pending:
                    break
                if self._stopping:
                    return None
                self._condition.wait()
            deadline = self._pending[0].arrived + self.max_wait_s
            while not self._stopping and self._waiting_rows() < self.max_batch:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
                self._drop_abandoned()
                if not self._pending:  # every waiting caller gave up meanwhile
                    return []
            return self._take_rows()

    def _drop_abandoned(self) -> None:
        for job in [job for job in self._pending if job.abandoned]:
            self._pending.remove(job)
            self.metrics.queue_length.add(-(job.rows - job.taken))

    def _take_rows(self) -> list[tuple[Job, int]]:
        batch: list[tuple[Job, int]] = []
        now = self._clock()
        while self._pending and len(batch) < self.max_batch:
            job = self._pending[0]
            if job.taken == 0:
                self.metrics.queue_wait.observe(now - job.arrived)
            count = min(job.rows - job.taken, self.max_batch - len(batch))
            batch.extend((job, row) for row in range(job.taken, job.taken + count))
            job.taken += count
            if job.taken == job.rows:
                self._pending.popleft()
        self.metrics.queue_length.add(-len(batch))
        return batch

    def _answer(self, batch: list[tuple[Job, int]]) -> None:
        if not batch:
            return
        slots: dict[str, int] = {}
        canvases: list[np.ndarray] = []
        for job, _ in batch:
            if job.image_key not in slots:
                slots[job.image_key] = len(canvases)
                canvases.append(job.canvas)
        rows = [slots[job.image_key] for job, _ in batch]
        tokens = np.stack([job.tokens[row] for job, row in batch])
        started = self._clock()
        try:
            outputs = self.model.forward(canvases, rows, tokens)
        except Exception as exc:  # the model failing (out of memory, a bad kernel) must not end the thread
            for job in dict.fromkeys(job for job, _ in batch):
                _settle(job.future, exception=exc)
            return
        self.metrics.forward.observe(self._clock() - started)
        self.metrics.batch_expressions.observe(len(batch))
        self.metrics.batch_images.observe(len(canvases))
        masks = outputs.get("masks")
        for index, (job, _) in enumerate(batch):
            job.boxes.append(outputs["boxes"][index])
            if masks is not None:
                job.masks.append(masks[index])
            if len(job.boxes) == job.rows:
                answers = RawAnswers(np.stack(job.boxes), np.stack(job.masks) if job.masks else None)
                _settle(job.future, result=answers)


def _settle(
    future: Future[RawAnswers], result: RawAnswers | None = None, exception: BaseException | None = None
) -> None:
    """Complete a future unless its caller cancelled it meanwhile."""
    with contextlib.suppress(InvalidStateError):
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)  # type: ignore[arg-type]
