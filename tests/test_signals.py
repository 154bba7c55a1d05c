import time

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from hardware.signals import LONG_BEEP, SHORT_BEEP, Buttons, Pattern, Signals
from kiosk.errors import HardwareError

PINS = {"red": 17, "amber": 27, "green": 22, "buzzer": 23, "gate": 24}


@pytest.fixture
def factory():
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


@pytest.fixture
def signals(factory):
    with Signals(**PINS, gate_pulse_seconds=0.2, pin_factory=factory) as s:
        yield s


def levels(factory, name):
    """The recorded levels of one pin, without its initial low state."""
    return [s.state for s in factory.pin(PINS[name]).states][1:]


def wait_idle(factory, name, timeout=3.0):
    deadline = time.monotonic() + timeout
    while factory.pin(PINS[name]).state and time.monotonic() < deadline:
        time.sleep(0.01)


def test_pass_is_green_one_short_beep_and_a_gate_pulse(signals, factory):
    signals.show(Pattern.PASS)
    assert signals.state()["green"] and not signals.state()["red"]
    assert not signals.state()["amber"]
    time.sleep(SHORT_BEEP + 0.4)
    wait_idle(factory, "gate")
    assert levels(factory, "buzzer") == [True, False]
    assert levels(factory, "gate") == [True, False]
    gate = factory.pin(PINS["gate"]).states
    assert gate[-1].timestamp - gate[-2].timestamp >= 0.18  # the pulse lasted its configured time


def test_check_is_amber_and_two_beeps(signals, factory):
    signals.show(Pattern.CHECK)
    time.sleep(4 * SHORT_BEEP + 0.3)
    assert signals.state() == {"red": False, "amber": True, "green": False, "buzzer": False,
                               "gate": False, "lamp": False}
    assert levels(factory, "buzzer") == [True, False, True, False]
    assert levels(factory, "gate") == []


def test_stop_is_red_and_one_long_beep(signals, factory):
    signals.show(Pattern.STOP)
    time.sleep(LONG_BEEP + 0.3)
    assert signals.state()["red"] and not signals.state()["green"]
    states = factory.pin(PINS["buzzer"]).states
    assert [s.state for s in states][1:] == [True, False]
    assert states[-1].timestamp - states[-2].timestamp >= LONG_BEEP - 0.05


def test_fault_blinks_amber_and_idle_switches_everything_off(signals, factory):
    signals.show(Pattern.PASS)
    signals.show(Pattern.FAULT)
    time.sleep(1.2)
    amber = levels(factory, "amber")
    assert amber[:3] == [True, False, True]
    assert not signals.state()["green"]
    signals.show(Pattern.IDLE)
    time.sleep(0.1)
    assert signals.state() == dict.fromkeys(("red", "amber", "green", "buzzer", "gate", "lamp"),
                                            False)


def test_no_buzzer_or_gate_fitted(factory):
    with Signals(red=2, amber=3, green=4, pin_factory=factory) as s:
        s.show(Pattern.PASS)
        assert s.state()["green"] and not s.state()["gate"]


def test_the_reading_lamp_is_on_from_start_to_close_whatever_the_pattern(factory):
    lamp = factory.pin(25)
    with Signals(red=2, amber=3, green=4, lamp=25, pin_factory=factory) as s:
        assert lamp.state and s.state()["lamp"]
        for pattern in (Pattern.PASS, Pattern.STOP, Pattern.FAULT, Pattern.IDLE, Pattern.CHECK):
            s.show(pattern)
            assert lamp.state, pattern
        assert [st.state for st in lamp.states][1:] == [True]  # never flickered
    assert not lamp.state  # closed: the lamp is off with the kiosk


def test_pin_conflict_is_a_clear_error(factory):
    with pytest.raises(HardwareError, match="red=5 amber=5"):
        Signals(red=5, amber=5, green=6, pin_factory=factory)


def test_close_is_idempotent(factory):
    s = Signals(red=2, amber=3, green=4, pin_factory=factory)
    s.close()
    s.close()
    s.show(Pattern.PASS)  # after close: ignored, not a crash
    assert s.state()["green"] is False


def test_buttons_post_their_name(factory):
    pressed = []
    with Buttons({"confirm": 5, "direction": 6, "officer": None}, on_press=pressed.append,
                 pin_factory=factory):
        pin = factory.pin(6)
        pin.drive_low()  # pull-up button: pressing connects to ground
        time.sleep(0.1)
        pin.drive_high()
    assert pressed == ["direction"]


def test_the_demo_pin_factory_keeps_a_bounded_history():
    from hardware.signals import MOCK_HISTORY, make_pin_factory

    factory = make_pin_factory("mock")
    try:
        with Signals(red=2, amber=3, green=4, pin_factory=factory) as s:
            for _ in range(MOCK_HISTORY // 2 + 10):
                s.show(Pattern.PASS)
                s.show(Pattern.STOP)
            assert len(factory.pin(4).states) <= MOCK_HISTORY
            assert s.state()["red"]
    finally:
        factory.reset()


# -- which pin factory: explicit, gpiozero's own choice on a Pi, or simulated with a warning --

def test_no_gpio_chip_and_nothing_configured_simulates_the_pins_with_one_warning(
        tmp_path, caplog):
    from gpiozero.pins.mock import MockFactory

    from hardware.signals import make_pin_factory, simulated_reason

    with caplog.at_level("WARNING", logger="hardware.signals"):
        factory = make_pin_factory("", chips=str(tmp_path / "gpiochip*"),
                                   model=tmp_path / "model", environ={})
    try:
        assert isinstance(factory, MockFactory)
        assert "no GPIO" in simulated_reason(factory)
        with Signals(red=2, amber=3, green=4, pin_factory=factory) as s:
            s.show(Pattern.STOP)
            assert s.state()["red"]
    finally:
        factory.reset()
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "no GPIO" in text and "signals.pin_factory = 'mock'" in text
    assert "signals.enabled = false" in text


def test_a_pi_with_gpio_leaves_the_choice_to_gpiozero(tmp_path):
    from hardware.signals import make_pin_factory, simulated_reason

    assert simulated_reason(make_pin_factory("mock")) is None  # configured: not a fallback

    (tmp_path / "gpiochip0").write_text("")
    (tmp_path / "model").write_bytes(b"Raspberry Pi 4 Model B Rev 1.5\0")
    assert make_pin_factory("", chips=str(tmp_path / "gpiochip*"), model=tmp_path / "model",
                            environ={}) is None


def test_gpio_chips_on_a_machine_that_is_not_a_pi_are_simulated_too(tmp_path, caplog):
    from gpiozero.pins.mock import MockFactory

    from hardware.signals import make_pin_factory

    (tmp_path / "gpiochip0").write_text("")  # a laptop's chipset GPIO: no lights wired there
    factory = make_pin_factory("", chips=str(tmp_path / "gpiochip*"),
                               model=tmp_path / "model", environ={})
    assert isinstance(factory, MockFactory)
    factory.reset()
    assert "not a Raspberry Pi" in caplog.text


def test_gpiozeros_own_variable_is_an_explicit_choice(tmp_path):
    from hardware.signals import make_pin_factory

    assert make_pin_factory("", chips=str(tmp_path / "gpiochip*"), model=tmp_path / "model",
                            environ={"GPIOZERO_PIN_FACTORY": "lgpio"}) is None


def test_an_explicit_real_factory_that_cannot_start_is_an_error_not_a_fallback(tmp_path):
    from hardware.signals import make_pin_factory

    try:
        import lgpio  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("lgpio is installed here: it may really start")
    with pytest.raises(HardwareError, match=r"GPIO pin factory 'lgpio' cannot start: .*lgpio"):
        make_pin_factory("lgpio", chips=str(tmp_path / "gpiochip*"), model=tmp_path / "model",
                         environ={})


def test_a_name_gpiozero_does_not_register_is_refused_with_the_names_it_does(tmp_path):
    from hardware.signals import make_pin_factory

    with pytest.raises(HardwareError, match=r"GPIO pin factory 'lgpoi' is unknown; use one of "
                                            r"lgpio, mock, native, pigpio, rpigpio "
                                            r"\(signals.pin_factory\)"):
        make_pin_factory("lgpoi", chips=str(tmp_path / "gpiochip*"), model=tmp_path / "model",
                         environ={})
