"""The officer panel's appliance entries: enrolment from a provisioning QR and the self-test.

What the panel needs from the running appliance beyond the scan loop is one
:class:`Appliance` (built by ``kiosk.main.run_kiosk``).  Background work follows the
house rule, threads post and the main loop acts: a :class:`Job` runs one function in a
thread and puts messages on a queue the screen polls every frame; a question for the
officer (the self-test's ``confirm``) waits on a queue the screen answers when a button is
tapped.  Nothing here draws.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiosk.ops.provision import Result as ProvisionResult
    from kiosk.ops.selftest import SelfTestReport

log = logging.getLogger(__name__)

# progress(check name), confirm(question) -> True / False / None (nobody answered)
Progress = Callable[[str], None]
Confirm = Callable[[str], "bool | None"]
SelfTestRunner = Callable[[Progress, Confirm], "SelfTestReport"]
SHOWN_FILE = "provision-result.shown"


@dataclass(frozen=True)
class Appliance:
    """What the officer panel needs from the appliance; ``None`` leaves an entry disabled."""

    config_path: Path | None = None  # the config a provisioning QR rewrites
    state_dir: Path | None = None  # where provision-result.json is kept (kiosk.ops.provision)
    selftest: SelfTestRunner | None = None  # runs kiosk.ops.selftest.run_selftest in-process
    provision_timeout: float = 10.0

    @property
    def can_provision(self) -> bool:
        return self.config_path is not None

    @property
    def can_selftest(self) -> bool:
        return self.selftest is not None


class Job:
    """One function on a background thread; its messages are polled by the main loop.

    ``work(job)`` may call :meth:`post` and :meth:`ask`; its return value arrives as
    ``("done", value)``, an exception as ``("error", exc)`` (never re-raised on screen).
    """

    def __init__(self, name: str, work: Callable[[Job], Any]) -> None:
        self.name = name
        self._work = work
        self._messages: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._answers: queue.Queue[bool | None] = queue.Queue(maxsize=1)
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ui-{name}", daemon=True)
        self.finished = False

    def start(self) -> Job:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            value = self._work(self)
        except Exception as e:  # shown on screen as a clear message, never a traceback
            log.debug("%s failed", self.name, exc_info=True)
            self._messages.put(("error", e))
        else:
            self._messages.put(("done", value))

    # -- the worker's side -----------------------------------------------------------------

    def post(self, kind: str, value: Any = None) -> None:
        self._messages.put((kind, value))

    def ask(self, question: str, timeout: float) -> bool | None:
        """Ask the officer; None when cancelled or unanswered within ``timeout`` seconds."""
        if self._cancelled.is_set():
            return None
        with contextlib.suppress(queue.Empty):
            self._answers.get_nowait()  # an answer that came too late for the last question
        self.post("question", question)
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            answer = None
        self.post("answered", answer)
        return answer

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    # -- the main loop's side --------------------------------------------------------------

    def poll(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        while True:
            try:
                message = self._messages.get_nowait()
            except queue.Empty:
                return out
            if message[0] in ("done", "error"):
                self.finished = True
            out.append(message)

    def answer(self, value: bool | None) -> None:
        with contextlib.suppress(queue.Full):
            self._answers.put_nowait(value)

    def cancel(self) -> None:
        """Answer None to the pending and every later question; the work ends soon after."""
        self._cancelled.set()
        self.answer(None)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout: float = 2.0) -> None:
        """Cancel and join; a thread stuck in I/O is left (daemon) and said so once."""
        self.cancel()
        if self._thread.ident is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s did not stop within %.0f s; leaving it", self.name, timeout)

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def enrol_from_qr(request: Any, appliance: Appliance) -> Any:
    """Enrol with ``request`` and keep the result for ``status``; runs on a Job's thread."""
    from kiosk.ops import provision as prov

    assert appliance.config_path is not None
    source = "provisioning QR"
    try:
        # The officer chose "Provision from QR" behind the PIN: that is the confirmation
        # to replace this kiosk's own device token (logged, and named in the result).
        result = prov.provision(request, config_path=appliance.config_path,
                                replace_token=True, timeout=appliance.provision_timeout,
                                source=source)
    except prov.ProvisionError as e:
        if appliance.state_dir is not None:
            prov.save_result(prov.Result(ok=False, message=str(e), source=source,
                                         at=datetime.now(UTC).isoformat(timespec="seconds")),
                             appliance.state_dir)
        raise
    if appliance.state_dir is not None:
        prov.save_result(result, appliance.state_dir)
    return result


class ResultWatch:
    """Tells when ``provision-result.json`` holds a result not shown on this kiosk yet.

    A file import happens in another process (the provisioning unit); the kiosk shows its
    result once, at start-up or as soon as it appears.  "Shown" is the SHA-256 of the file,
    kept beside it so a restart does not show it again (and in memory when that folder
    is read-only, so it is not shown every few seconds either).
    """

    def __init__(self, state_dir: Path | None) -> None:
        self.state_dir = state_dir
        self._shown: str | None = None
        if state_dir is not None:
            with contextlib.suppress(OSError):
                self._shown = (state_dir / SHOWN_FILE).read_text(encoding="ascii").strip()

    def _digest(self) -> str | None:
        from kiosk.ops.provision import RESULT_FILE

        if self.state_dir is None:
            return None
        try:
            return hashlib.sha256((self.state_dir / RESULT_FILE).read_bytes()).hexdigest()
        except OSError:
            return None

    def unseen(self) -> ProvisionResult | None:
        """The last provisioning result if it was not shown yet, else None."""
        from kiosk.ops.provision import last_result

        digest = self._digest()
        if self.state_dir is None or digest is None or digest == self._shown:
            return None
        result = last_result(self.state_dir)
        if result is None:
            self._shown = digest  # unreadable: do not try again every poll
        return result

    def mark_shown(self) -> None:
        digest = self._digest()
        if digest is None:
            return
        self._shown = digest
        assert self.state_dir is not None
        path = self.state_dir / SHOWN_FILE
        try:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(digest + "\n", encoding="ascii")
            os.replace(tmp, path)
        except OSError as e:
            log.info("cannot remember that the provisioning result was shown (%s); "
                     "it will be shown again after a restart", e)
