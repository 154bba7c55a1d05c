"""Signal lights, buzzer, gate relay and officer buttons on gpiozero.

Every pattern differs in *which* light and *how many* beeps, so it is readable when the sun
washes out the screen and by people who cannot tell red from green:

=========  ======================  ===================  ==================
pattern    light                   buzzer               gate
=========  ======================  ===================  ==================
pass       green steady            one short beep       one pulse
check      amber steady            two short beeps      -
stop       red steady              one long beep        -
idle       all off                 -                    -
fault      amber blinking (1 Hz)   -                    -
=========  ======================  ===================  ==================

An optional **lamp** (``lamp=`` pin: a white LED panel above the camera, switched through a
transistor or relay) lights where people hold their codes.  It is on from start to
:meth:`Signals.close`, whatever the pattern: in a dim entrance it gives a card or a sheet the
light of a bright one, so the camera keeps a short exposure (docs/decoding.md, "Camera
set-up: the reading lamp").

Devices take a ``pin_factory`` keyword like gpiozero's own; off a Pi it is a ``MockFactory``
and tests read the pins' state history.  Button callbacks run on gpiozero's thread: they only
call the given ``on_press`` (which posts an event); they never touch the screen.
"""

from __future__ import annotations

import enum
import glob
import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hardware.errors import HardwareError

log = logging.getLogger(__name__)

SHORT_BEEP = 0.12
LONG_BEEP = 0.8
BEEP_GAP = 0.12
FAULT_BLINK = 0.5


class Pattern(enum.StrEnum):
    PASS = "pass"
    CHECK = "check"
    STOP = "stop"
    IDLE = "idle"
    FAULT = "fault"


# What :meth:`Signals.state` reports, each True when on.
OUTPUTS = ("red", "amber", "green", "buzzer", "gate", "lamp")

MOCK_HISTORY = 10_000  # state changes a simulated pin remembers (about 1 MiB of history)


def _bounded_mock_pin() -> type:
    """MockPWMPin keeps every state change for tests to inspect; a demo left running for days
    would grow by ~3 MiB an hour (bench/memory.py), so this one forgets the oldest half."""
    from gpiozero.pins.mock import MockPWMPin

    class BoundedMockPin(MockPWMPin):
        def _change_state(self, value: Any) -> bool:
            changed = bool(super()._change_state(value))
            if len(self.states) > MOCK_HISTORY:
                del self.states[: MOCK_HISTORY // 2]
            return changed

    return BoundedMockPin


# Where the kernel shows GPIO controllers, and what board this is (Raspberry Pi OS sets it).
GPIO_CHIPS = "/dev/gpiochip*"
BOARD_MODEL = Path("/proc/device-tree/model")


def _no_gpio_reason(chips: str, model: Path) -> str | None:
    """Why this machine has no signal GPIO to drive, or None on a Pi with GPIO chips."""
    if not glob.glob(chips):
        return f"no GPIO on this machine (no {chips})"
    try:
        board = model.read_bytes().rstrip(b"\0").decode("utf-8", "replace").strip()
    except OSError:
        board = ""
    if not board.startswith("Raspberry Pi"):
        # A laptop's chipset GPIO: gpiozero cannot drive it and no lights are wired there.
        return f"no GPIO for signals on this machine: it is not a Raspberry Pi (board {board!r})"
    return None


def make_pin_factory(name: str, *, chips: str = GPIO_CHIPS, model: Path = BOARD_MODEL,
                     environ: Mapping[str, str] | None = None) -> Any:
    """A gpiozero pin factory for ``signals.pin_factory``, or None to let gpiozero choose.

    Only what gpiozero does not do itself is done here:

    - a name is looked up in gpiozero's own registry (its ``gpiozero_pin_factories`` entry
      points, as for ``GPIOZERO_PIN_FACTORY``), but it comes from our config file, and a
      factory that cannot start stops start-up with an error naming that setting;
    - 'mock' is gpiozero's ``MockFactory`` with a pin that forgets old history (a demo runs
      for days);
    - '' on a machine without GPIO (a laptop running the kiosk or its tests) simulates the
      pins with one WARNING naming the setting, where gpiozero would try each real factory
      and fail.  On a Raspberry Pi with GPIO chips, or with ``GPIOZERO_PIN_FACTORY`` set,
      '' returns None: gpiozero's own default lookup decides.
    """
    env = os.environ if environ is None else environ
    if name == "mock":
        return _mock_factory()
    if name:
        return _registered_factory(name)
    if env.get("GPIOZERO_PIN_FACTORY"):
        return None  # gpiozero's own setting: an explicit choice it reports on itself
    reason = _no_gpio_reason(chips, model)
    if reason is None:
        return None
    log.warning("%s: lights, buzzer, gate and buttons are simulated; set "
                "signals.pin_factory = 'mock' to say so (or signals.enabled = false for "
                "no lights)", reason)
    return _mock_factory(simulated=reason)


def simulated_reason(factory: Any) -> str | None:
    """Why ``factory`` simulates pins nobody configured as simulated (no GPIO here), or None."""
    return getattr(factory, "simulated_reason", None)


def _mock_factory(*, simulated: str = "") -> Any:
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory(pin_class=_bounded_mock_pin())
    factory.simulated_reason = simulated or None
    return factory


def _registered_factory(name: str) -> Any:
    """Start the factory gpiozero registers under ``name`` (lgpio, rpigpio, pigpio, native)."""
    from importlib.metadata import entry_points

    registered = {ep.name: ep for ep in entry_points(group="gpiozero_pin_factories")}
    if name not in registered:
        raise HardwareError(f"GPIO pin factory {name!r} is unknown; use one of "
                            f"{', '.join(sorted(registered))} (signals.pin_factory)")
    try:
        return registered[name].load()()
    except Exception as e:  # each factory fails in its own way off a Pi
        raise HardwareError(
            f"GPIO pin factory {name!r} cannot start: {e}; it is set in signals.pin_factory: "
            "on a Pi check that the kiosk user is in the 'gpio' group, on a laptop use "
            "signals.pin_factory = 'mock'"
        ) from e


class Signals:
    """Lights, buzzer and an optional gate relay showing one :class:`Pattern` at a time."""

    def __init__(self, *, red: int, amber: int, green: int, buzzer: int | None = None,
                 gate: int | None = None, gate_pulse_seconds: float = 1.0,
                 lamp: int | None = None, pin_factory: Any = None) -> None:
        from gpiozero import Buzzer, DigitalOutputDevice, TrafficLights
        from gpiozero.exc import GPIOZeroError

        self._lock = threading.Lock()
        self._devices: list[Any] = []
        self.gate_pulse_seconds = gate_pulse_seconds
        self.pattern = Pattern.IDLE
        try:
            self.lights = self._own(TrafficLights(red, amber, green, pin_factory=pin_factory))
            self.buzzer = (self._own(Buzzer(buzzer, pin_factory=pin_factory))
                           if buzzer is not None else None)
            self.gate = (self._own(DigitalOutputDevice(gate, pin_factory=pin_factory))
                         if gate is not None else None)
            self.lamp = (self._own(DigitalOutputDevice(lamp, initial_value=True,
                                                       pin_factory=pin_factory))
                         if lamp is not None else None)
        except (GPIOZeroError, OSError, RuntimeError) as e:
            self.close()
            raise HardwareError(
                f"signal pins red={red} amber={amber} green={green} buzzer={buzzer} gate={gate} "
                f"lamp={lamp} "
                f"cannot be opened: {e}; on a Pi check [signals] in the config and that the "
                "kiosk user is in the 'gpio' group; off a Pi set signals.pin_factory = 'mock' "
                "(or GPIOZERO_PIN_FACTORY=mock) or signals.enabled = false"
            ) from e

    def _own(self, device: Any) -> Any:
        self._devices.append(device)
        return device

    def show(self, pattern: Pattern) -> None:
        """Switch to ``pattern``; beeps and the gate pulse run in gpiozero's background threads."""
        with self._lock:
            if not self._devices:
                return
            self.pattern = pattern
            lights = self.lights
            lights.off()  # also stops a fault blink
            if self.buzzer is not None:
                self.buzzer.off()
            if pattern is Pattern.PASS:
                lights.green.on()
                self._beep(SHORT_BEEP, 1)
                if self.gate is not None:
                    self.gate.blink(on_time=self.gate_pulse_seconds, off_time=0.01, n=1)
            elif pattern is Pattern.CHECK:
                lights.amber.on()
                self._beep(SHORT_BEEP, 2)
            elif pattern is Pattern.STOP:
                lights.red.on()
                self._beep(LONG_BEEP, 1)
            elif pattern is Pattern.FAULT:
                lights.amber.blink(on_time=FAULT_BLINK, off_time=FAULT_BLINK)

    def _beep(self, on_time: float, n: int) -> None:
        if self.buzzer is not None:
            self.buzzer.beep(on_time=on_time, off_time=BEEP_GAP, n=n)

    def state(self) -> dict[str, bool]:
        """Current output levels: what a person standing at the kiosk sees and hears."""
        if not self._devices:
            return dict.fromkeys(OUTPUTS, False)
        return {
            "red": bool(self.lights.red.value),
            "amber": bool(self.lights.amber.value),
            "green": bool(self.lights.green.value),
            "buzzer": bool(self.buzzer.value) if self.buzzer is not None else False,
            "gate": bool(self.gate.value) if self.gate is not None else False,
            "lamp": bool(self.lamp.value) if self.lamp is not None else False,
        }

    def close(self) -> None:
        with self._lock:
            for device in reversed(self._devices):
                try:
                    device.close()
                except Exception:  # closing must not fail half-way on a broken pin
                    log.exception("closing %r failed", device)
            self._devices.clear()

    def __enter__(self) -> Signals:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Buttons:
    """Officer buttons; each press calls ``on_press(name)`` on gpiozero's callback thread."""

    def __init__(self, pins: dict[str, int | None], *, on_press: Callable[[str], None],
                 pin_factory: Any = None, bounce_time: float = 0.05) -> None:
        from gpiozero import Button
        from gpiozero.exc import GPIOZeroError

        self._buttons: list[Any] = []
        try:
            for name, pin in pins.items():
                if pin is None:
                    continue
                button = Button(pin, pull_up=True, bounce_time=bounce_time,
                                pin_factory=pin_factory)
                button.when_pressed = lambda _b=None, _name=name: on_press(_name)
                self._buttons.append(button)
        except (GPIOZeroError, OSError, RuntimeError) as e:
            self.close()
            raise HardwareError(f"button pins {pins!r} cannot be opened: {e}") from e

    def close(self) -> None:
        for button in self._buttons:
            button.close()
        self._buttons.clear()

    def __enter__(self) -> Buttons:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
