"""The kiosk under test in ``bench.day``: the real kiosk, driven over a pipe.

    python -m bench.day_kiosk --config kiosk.toml --state-dir DIR

Runs the kiosk exactly as ``checkpoint-kiosk run`` does (``kiosk.main.run_kiosk`` from the
configuration file: real SQLite store, sync worker, gpiozero mock pins, the screen on SDL's
dummy driver, systemd's notifications) except for the camera: a supplied feed whose codes
arrive as ``Decoded`` events on the loop's queue, either as sent (what the decoder thread
would post) or from a synthetic camera frame decoded by the real decoder.  The harness is
an in-process :class:`kiosk.main.Observer`: ticked after every frame the product's own main
loop draws; officer actions are real pygame events (taps at the centre of the current
screen's buttons, key presses) posted on SDL's queue.

Commands come on stdin, one JSON object a line, each with an ``id``:
``code`` (raw as latin-1 text), ``frame`` (payload rendered and decoded), ``tap`` (a button
action), ``key`` (a pygame key name), ``press`` (a long press on the status strip),
``text`` (typed into the field being edited), ``probe``, and ``lights`` (the harness's
self-check: set a light pattern behind the loop's back, as a wiring fault would).  Every
command is acknowledged after the first frame that handled it.
Observations go to stdout, one flushed JSON object a line (``ev``): ``ready``, ``ack``,
``result`` (after the lights were set), ``screen``, ``mismatch``, ``log`` (an error or a
traceback logged), ``exit``.  Logs go to stderr as under systemd.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import queue
import sys
import threading
import time
import traceback
from typing import Any

LIGHT_OF = {"pass": "green", "check": "amber", "stop": "red"}
# A result screen and its lights end within a frame of each other; around that instant
# (and while the self-test drives the lights on purpose) they are not compared.
EDGE_S = 0.3

_out_lock = threading.Lock()


def emit(**event: Any) -> None:
    line = json.dumps(event, ensure_ascii=False, default=str)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Watch(logging.Handler):
    """Reports every ERROR record and every record that carries a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("decisions use policy"):
            # Which policy is in force from here on, in the order of the results.
            emit(ev="policy", profile=str(record.args[0]) if record.args else None)
        if record.levelno >= logging.ERROR or record.exc_info:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a bad format string is itself worth reporting
                message = repr(record.msg)
            emit(ev="log", level=record.levelname, logger=record.name, message=message[:500],
                 traceback=bool(record.exc_info))


def _reader(commands: queue.Queue) -> None:
    for line in sys.stdin:
        line = line.strip()
        if line:
            commands.put(json.loads(line))
    commands.put({"op": "eof"})


class Feed:
    """The camera the day kiosk has (a ``kiosk.runtime.ports.FrameSource``): up from the
    start, as a camera that delivered its first frame; no preview; its threads are the
    driver's, which posts the codes."""

    ok = True
    message = None
    frames = 1

    def __init__(self, events: queue.Queue) -> None:
        self.events = events

    def latest_frame(self) -> None:
        return None

    def alive(self, *, max_age: float) -> bool:
        return True


class Driver:
    """The observer (``kiosk.main.Observer``): ticked once per completed frame by the
    kiosk's main loop, it acts on commands and reports what it observes."""

    def __init__(self, commands: queue.Queue) -> None:
        self.app: Any = None
        self.parts: Any = None
        self.stop = threading.Event()
        self.commands = commands
        self.pending: list[dict] = []  # injected, acknowledged after the next frame
        self.tags: dict[int, str | None] = {}  # by the frame time of the code posted
        self.current_tag: str | None = None
        self.state = ""
        self.lights: dict[str, bool] = {}
        # (outcome, when): the last decision signalled; a screen may show it in full or,
        # over an officer's screen, as a notice.
        self.last_decided: tuple[str, float] | None = None
        self.decoder: Any = None
        self.frames = 0
        self.ready = False
        self.last_tick: float | None = None  # the app clock at the previous frame's tick

    # -- the observer's hooks ----------------------------------------------------------

    def started(self, parts: Any, app: Any, stop: threading.Event) -> None:
        self.parts, self.app, self.stop = parts, app, stop
        parts.loop.watch(self.report)
        threading.Thread(target=_reader, args=(self.commands,), daemon=True).start()

    def finished(self, reason: str) -> None:
        emit(ev="exit", code=0, error=None, reason=reason)

    # -- results, as the loop produces them (after the lights were set) --------------

    def report(self, result: Any) -> None:
        tag = self.current_tag
        if result.source == "scan" and result.frame_ns is not None:
            tag = self.tags.pop(result.frame_ns, tag)
        outcome = str(result.decision.outcome)
        self.last_decided = (outcome, self.app.clock())
        emit(ev="result", tag=tag, how=result.source, checkin_id=result.checkin_id,
             outcome=outcome, reasons=list(result.decision.reasons), source=result.source,
             kind=str(result.credential.kind), person_key=result.credential.person_key,
             direction=result.direction, signalled=result.signalled_ns is not None,
             lights=self.parts.loop.lights(), state=self.app.state,
             found=dict(result.decision.found) if result.decision.found else None)

    # -- the per-frame hook ---------------------------------------------------------------

    def tick(self) -> None:
        self.frames += 1
        app = self.app
        if not self.ready:
            self.ready = True
            emit(ev="ready", pid=os.getpid(), state=app.state)
        self.observe()
        self.last_tick = app.clock()
        for command in self.pending:
            self.ack(command)
        self.pending = []
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                break
            self.inject(command)
            if self.stop.is_set():
                return

    def observe(self) -> None:
        app, loop = self.app, self.parts.loop
        if app.state != self.state:
            self.state = app.state
            emit(ev="screen", state=app.state, internal_error=app.internal_error)
        lights = loop.lights()
        if lights != self.lights:
            self.lights = lights
        now = app.clock()
        if not lights.get("lamp"):
            # The reading lamp is on while the kiosk runs, through results and the self-test.
            self.mismatch("reading lamp off", None, lights)
        result = getattr(app.screen, "result", None) if app.state == "result" else None
        if app.state == "selftest" or app.loop.signals_lent:
            return  # the self-test switches each light on purpose
        rs = app.settings.result_seconds
        if result is not None and now - app.entered_at < rs - EDGE_S:
            want = LIGHT_OF[str(result.decision.outcome)]
            wrong = [c for c in ("green", "amber", "red") if lights.get(c) != (c == want)]
            if wrong:
                self.mismatch("result screen", str(result.decision.outcome), lights)
            return
        last = self.last_decided
        outcome = last[0] if last is not None and now - last[1] < rs + EDGE_S else None
        if lights.get("green") and outcome != "pass":
            self.mismatch("green without a pass decided", outcome, lights)
        if lights.get("red") and outcome != "stop":
            self.mismatch("red without a stop decided", outcome, lights)

    def mismatch(self, what: str, outcome: str | None, lights: dict) -> None:
        # With the timings that tell a late frame from a light left on: how long since the
        # last decision and the previous frame, how long the screen has shown its state, and
        # when the loop means to switch the lights off (the loop's own schedule).
        app, last, now = self.app, self.last_decided, self.app.clock()
        idle_at = getattr(self.parts.loop, "_idle_at", None)

        def ago(t: float | None) -> float | None:
            return None if t is None else round(now - t, 3)

        emit(ev="mismatch", what=what, state=app.state, outcome=outcome, lights=lights,
             last_outcome=last[0] if last is not None else None,
             since_decided=ago(last[1] if last is not None else None),
             since_last_frame=ago(self.last_tick), in_state_for=ago(app.entered_at),
             lights_off_in=None if idle_at is None else round(idle_at - now, 3),
             frames=self.frames)

    def ack(self, command: dict) -> None:
        app, loop = self.app, self.parts.loop
        health = app.health
        sync = getattr(self.parts, "sync", None)
        status = sync.status() if sync is not None else None
        buttons = []
        with contextlib.suppress(Exception):
            buttons = [b.action for b in app.screen.buttons(app) if b.enabled]
        emit(ev="ack", id=command.get("id"), op=command.get("op"), state=app.state,
             error=command.get("error"), buttons=buttons, direction=loop.direction,
             lights=loop.lights(), internal_error=app.internal_error,
             store_ok=getattr(health, "store_ok", None),
             disk_low=getattr(health, "disk_low", None),
             scanner_ok=getattr(health, "scanner_ok", None),
             backlog=getattr(status, "backlog", None),
             dead_letter=getattr(status, "dead_letter", None),
             online=getattr(status, "online", None),
             reprovision=getattr(status, "reprovision_needed", None),
             sync_error=(getattr(status, "last_error", None) or "")[:200])

    def inject(self, command: dict) -> None:
        op = command.get("op")
        self.current_tag = command.get("tag", self.current_tag)
        if op in ("eof", "quit"):
            self.stop.set()
            return
        act = {"code": self.code, "frame": self.camera, "tap": self.tap, "key": self.key,
               "text": self.text,
               "press": self.press, "lights": self.set_lights,
               "probe": lambda command: None}.get(op or "")
        if act is None:
            command["error"] = f"unknown op {op!r}"
        else:
            act(command)
        self.pending.append(command)

    def code(self, command: dict) -> None:
        """A code as the decoder thread posts it."""
        from kiosk.runtime.capture import Decoded

        raw = command["raw"].encode("latin-1")
        now = time.monotonic_ns()
        self.tags[now] = command.get("tag")
        self.parts.loop.events.put(Decoded(raw, raw.decode("utf-8", "replace"),
                                           ((0, 0),), now, now))

    def tap(self, command: dict) -> None:
        """A tap at the centre of the current screen's button with that action."""
        import pygame

        buttons = {}
        with contextlib.suppress(Exception):
            buttons = {b.action: b for b in self.app.screen.buttons(self.app)}
        button = buttons.get(command["action"])
        if button is None:
            command["error"] = f"no {command['action']!r} button on {self.app.state}"
            return
        if not button.enabled:
            command["error"] = f"{command['action']!r} is disabled"
        pos = button.rect.center
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=1))
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=pos, button=1))

    def key(self, command: dict) -> None:
        import pygame

        key = getattr(pygame, command["key"])
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0,
                                             unicode=command.get("unicode", "")))

    def text(self, command: dict) -> None:
        """Text typed on a USB keyboard into the field being edited (SDL's TEXTINPUT)."""
        import pygame

        pygame.event.post(pygame.event.Event(pygame.TEXTINPUT, text=command["text"]))

    def press(self, command: dict) -> None:
        """Press (and hold) the status strip: the PIN pad's long press."""
        import pygame

        pos = self.app.layout.status.center
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=1))
        if command.get("release"):
            pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=pos, button=1))

    def set_lights(self, command: dict) -> None:
        """The harness's self-check only: set a pattern behind the loop's back, as a wiring
        fault or a bug would, so the light check is seen to catch it."""
        from hardware.signals import Pattern

        signals = self.parts.signals
        if signals is None:
            return
        if "pattern" in command:
            signals.show(Pattern(command["pattern"]))
        if "lamp" in command and signals.lamp is not None:
            signals.lamp.value = bool(command["lamp"])

    def camera(self, command: dict) -> None:
        """A synthetic camera frame of the payload, through the real QR decoder."""
        import random

        from hardware.qr import open_decoder
        from kiosk.runtime.capture import Decoded
        from kiosk.testing.samples import Sample, frame

        if self.decoder is None:
            self.decoder = open_decoder("auto")
        payload = command["raw"].encode("latin-1")
        image = frame(Sample("day", payload.decode("utf-8", "replace")),
                      random.Random(command.get("seed", 0)))
        now = time.monotonic_ns()
        codes = self.decoder.decode(image)
        if codes:
            self.tags[now] = command.get("tag")
        for code in codes:
            self.parts.loop.events.put(Decoded(code.raw, code.text, code.position, now,
                                               time.monotonic_ns()))
        if not codes:
            command["error"] = "the decoder found no code in the frame"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--card-seconds", type=float, default=1.0)
    parser.add_argument("--sync-options", default="{}", help="JSON keyword arguments")
    options = parser.parse_args(argv)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

    from kiosk import config as config_mod
    from kiosk.errors import KioskError
    from kiosk.main import run_kiosk
    from kiosk.runtime.build import Supplied

    # On the packages' loggers: run_kiosk's logging set-up replaces the root's handlers.
    for name in ("kiosk", "hardware", "offline_queue"):
        logging.getLogger(name).addHandler(Watch())
    try:
        cfg = config_mod.load(options.config)
        return run_kiosk(cfg, headless=False, config_path=options.config,
                         state_dir_path=options.state_dir, observer=Driver(queue.Queue()),
                         card_seconds=options.card_seconds,
                         supplied=Supplied(pipeline=Feed,
                                           sync_options=json.loads(options.sync_options)))
    except KioskError as e:
        # What `checkpoint-kiosk run` does with it: one line, exit status 1.
        emit(ev="exit", code=1, error=f"{type(e).__name__}: {e}")
        print(f"checkpoint-kiosk: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - reported, then the process ends as run would
        emit(ev="exit", code=1, error=f"{type(e).__name__}: {e}",
             traceback=traceback.format_exc()[-2000:])
        raise


if __name__ == "__main__":
    sys.exit(main())
