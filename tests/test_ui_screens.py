"""Screenshots of every screen at every supported size, compared with committed references.

Each PNG is saved under ``test-output/ui/`` for a person to look at.  References live in
``tests/reference/ui/``; after a deliberate change, regenerate them with
``UPDATE_UI_REFERENCES=1 pytest tests/test_ui_screens.py`` and look at every changed one.
The scene is fixed (clock, records, camera frame) so screens are reproducible.
"""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pygame
import pytest
from PIL import Image, ImageDraw
from test_ui_loop import build_kit

from hardware.signals import Pattern
from kiosk.config import UiSettings
from kiosk.domain.model import Outcome
from kiosk.runtime.events import Health
from kiosk.testing.samples import SAMPLES, background, qr_image
from kiosk.ui.app import KioskApp
from kiosk.ui.appliance import Appliance
from kiosk.ui.artwork import COLOURS
from kiosk.ui.layout import Layout

REFERENCE = Path(__file__).parent / "reference" / "ui"
UPDATE = os.environ.get("UPDATE_UI_REFERENCES") == "1"
LANDSCAPE = [(800, 480), (1024, 600), (1280, 720), (1920, 1080)]
SIZES = LANDSCAPE + [(h, w) for w, h in LANDSCAPE]
SCREENS = ["scanning", "result-pass", "result-check", "result-stop", "result-venue",
           "result-unknown", "idle", "fault", "pin", "officer", "manual", "override", "splash"]
# Screens whose look differs from a neighbour only in a word: 800×480 and portrait suffice.
MORE_SCREENS = ["result-other", "officer-notice"]
# A code read while an officer screen is open: a compact notice on that screen (issue 9 #8).
NOTICE_SCREENS = ["notice-pin", "notice-officer", "notice-manual", "notice-override",
                  "notice-provision", "notice-selftest"]
# Codes that are not a person's, as the camera reads them (kiosk.testing.samples has the venue).
WIFI = "WIFI:S:Benh vien Bach Mai;T:WPA;P:khach-2026;;"
GARBAGE = "PHIEU-KHAM-0042/2026 quay 3"
ICT = timezone(timedelta(hours=7))
WALL = datetime(2026, 11, 22, 7, 5, tzinfo=UTC)  # 14:05 in Vietnam
SAMPLE = {s.name: s for s in SAMPLES}

# A screen differs from its reference when the mean difference or the share of clearly
# changed pixels exceeds these; font hinting and scaling differences stay well below.
MAX_MEAN_DIFF = 1.5
MAX_CHANGED_SHARE = 0.004
CHANGED = 48


def clean_frame(name: str | None, payload: str | None = None) -> np.ndarray:
    """A camera frame without sensor noise (noise makes PNG references huge)."""
    img = background(random.Random(7))
    if name is not None or payload is not None:
        code = qr_image(payload if payload is not None else SAMPLE[name].payload)
        card = Image.new("L", (code.size[0] + 60, code.size[1] + 40), 235)
        ImageDraw.Draw(card).rectangle((0, 0, card.size[0] - 1, card.size[1] - 1), outline=120,
                                       width=2)
        card.paste(code, (30, 20))
        img.paste(card, ((640 - card.size[0]) // 2, (480 - card.size[1]) // 2))
    return np.asarray(img, dtype=np.uint8).copy()


def _selftest(progress, confirm):
    from kiosk.config import Config
    from kiosk.ops.selftest import run_selftest

    return run_selftest(Config(), progress=progress, confirm=confirm)


# As on the appliance: both officer-panel entries enabled (the screens never run them here).
APPLIANCE = Appliance(config_path=Path("/etc/checkpoint-kiosk/kiosk.toml"), selftest=_selftest)


class FixedClock:
    def __call__(self) -> float:
        return 5000.0


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """Records in a real store at a fixed time, the results to show, and a preview frame."""
    pygame.display.init()
    pygame.font.init()
    pygame.display.set_mode((64, 64))
    with build_kit(tmp_path_factory.mktemp("screens"), wall=lambda: WALL, tz=ICT) as kit:
        found = {}
        for name in ("pc_covid", "cccd", "cccd_mismatch", "watchlisted"):
            assert kit.feed.show(clean_frame(name)) == 1, name
            (result,) = [r for r in kit.loop.step() if hasattr(r, "decision")]
            found[result.decision.outcome.value] = result
        # The officer changed the amber one: the panel's list shows both rows.
        kit.loop.override(found["check"].checkin_id, "pass", "officer_documents_checked")
        for name, payload in (("venue", SAMPLE["venue"].payload), ("other", WIFI),
                              ("unknown", GARBAGE)):
            assert kit.feed.show(clean_frame(None, payload)) == 1, name
            (found[name],) = [r for r in kit.loop.step() if hasattr(r, "decision")]
        kit.feed.show(clean_frame(None))
        kit.loop.step()
        # The demo draws the pins; wait until the last beep and gate pulse are over so the
        # lights are steady (green) in every screenshot.
        kit.signals.show(Pattern.PASS)
        steady = {"red": False, "amber": False, "green": True, "buzzer": False, "gate": False,
                  "lamp": False}
        deadline = time.monotonic() + 5
        while kit.loop.lights() != steady and time.monotonic() < deadline:
            time.sleep(0.05)
        assert kit.loop.lights() == steady
        yield kit, found
    pygame.display.quit()


def health(**changes) -> Health:
    values = dict(camera_ok=True, camera_message=None, store_ok=True, store_message=None,
                  disk_low=False, online=False, backlog=3, last_sync=WALL - timedelta(minutes=7),
                  reprovision_needed=False, clock_synced=True, trust_list_age=timedelta(hours=5),
                  documents=(("policy", WALL - timedelta(minutes=9)),
                             ("watchlist", WALL - timedelta(hours=2)),
                             ("trust_list", WALL - timedelta(hours=5))))
    values.update(changes)
    return Health(**values)


# Complexity over 10 on purpose: one branch per screenshot's set-up.
def render(scene, screen: str, size: tuple[int, int],  # noqa: C901
           language: str = "vi") -> pygame.Surface:
    kit, found = scene
    clock = FixedClock()
    app = KioskApp(kit.loop, UiSettings.checked(language=language, officer_pin="2468"), size,
                   show_lights=True, clock=clock, now=lambda: WALL, tz=ICT, appliance=APPLIANCE)
    app.health = health()
    app.refresh_counts()
    app.last_result = app.last_recorded = found["check"]
    if screen == "officer-notice":  # an entry that is off was tapped
        app.appliance = Appliance()
        app.go("officer")
        buttons = {b.action: b for b in app.screen.buttons(app)}
        app.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1,
                                            pos=buttons["provision"].rect.center))
    elif screen.startswith("result-"):
        app.show_result(found[screen.split("-")[1]])
        app.screen.until = clock() + app.settings.result_seconds * 0.6
    elif screen.startswith("notice-"):
        screen = screen.split("-", 1)[1]
        if screen == "selftest":
            app.appliance = Appliance()  # nothing runs; the finished report is set below
        app.go(screen)
        if screen == "provision":
            app.screen.phase, app.screen.error = "failed", tech_result(False).message
        elif screen == "selftest":
            app.screen.error, app.screen.report = None, tech_report()
        app.notice, app.notice_until = found["stop"], clock() + 5
    elif screen == "fault":
        app.health = health(camera_ok=False, camera_message="camera: no frame for 5 s",
                            disk_low=True)
        app.go("fault")
    else:
        app.go(screen)
    if screen == "pin":
        app.screen.entry.value = "24"
    elif screen == "manual":
        app.screen.entry.value = "0011850"
    elif screen == "override":
        app.screen.outcome = found["pass"].decision.outcome
        app.screen.reason = "officer_documents_checked"
    surface = pygame.Surface(size)
    app.draw(surface)
    return surface


def difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2)
    return float(diff.mean()), float((diff > CHANGED).mean())


def check_against_reference(surface: pygame.Surface, name: str, out_dir: Path) -> None:
    out = out_dir / f"{name}.png"
    pygame.image.save(surface, str(out))
    ref = REFERENCE / f"{name}.png"
    if UPDATE:
        REFERENCE.mkdir(parents=True, exist_ok=True)
        pygame.image.save(surface, str(ref))
        return
    assert ref.exists(), f"no reference {ref}; make it with UPDATE_UI_REFERENCES=1 and look at it"
    got = pygame.surfarray.array3d(surface)
    want = pygame.surfarray.array3d(pygame.image.load(str(ref)))
    assert got.shape == want.shape
    mean, share = difference(got, want)
    assert mean <= MAX_MEAN_DIFF and share <= MAX_CHANGED_SHARE, (
        f"{name}: differs from {ref} (mean {mean:.2f}, changed {share:.2%}); see {out}")


@pytest.fixture(scope="module")
def out_dir():
    path = Path(__file__).resolve().parent.parent / "test-output" / "ui"  # as conftest's
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_screen_matches_its_reference(scene, size, out_dir):
    for screen in SCREENS:
        check_against_reference(render(scene, screen, size), f"{screen}-{size[0]}x{size[1]}",
                                out_dir)


@pytest.mark.parametrize("size", [(800, 480), (480, 800)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_more_screens_match_their_references(scene, size, out_dir):
    for language in ("vi", "en"):
        for screen in MORE_SCREENS:
            prefix = "en-" if language == "en" else ""
            check_against_reference(render(scene, screen, size, language),
                                    f"{prefix}{screen}-{size[0]}x{size[1]}", out_dir)


@pytest.mark.parametrize("size", [(800, 480), (480, 800)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_notices_on_officer_screens_match_their_references(scene, size, out_dir):
    for language in ("vi", "en"):
        for screen in NOTICE_SCREENS:
            prefix = "en-" if language == "en" else ""
            surface = render(scene, screen, size, language)
            check_against_reference(surface, f"{prefix}{screen}-{size[0]}x{size[1]}", out_dir)
            # The notice is in the stop colour across the top; the screen is still below it.
            bar_h = int(Layout.for_size(*size, lights=True).unit * 2.2)
            assert tuple(surface.get_at((size[0] - 6, bar_h // 2)))[:3] == \
                COLOURS[Outcome.STOP], screen


@pytest.mark.parametrize("size", [(800, 480), (480, 800)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_english_screens_match_their_references(scene, size, out_dir):
    for screen in SCREENS:
        check_against_reference(render(scene, screen, size, "en"),
                                f"en-{screen}-{size[0]}x{size[1]}", out_dir)


def test_the_comparison_tells_outcomes_and_words_apart(scene):
    """The tolerance is tight enough to catch a wrong word or outcome on the same layout."""
    pass_ = pygame.surfarray.array3d(render(scene, "result-pass", (800, 480)))
    stop = pygame.surfarray.array3d(render(scene, "result-stop", (800, 480)))
    english = pygame.surfarray.array3d(render(scene, "result-pass", (800, 480), "en"))
    for other in (stop, english):
        mean, share = difference(pass_, other)
        assert mean > MAX_MEAN_DIFF or share > MAX_CHANGED_SHARE


def test_nothing_is_drawn_outside_the_screen_or_over_the_status_strip(scene):
    """Text that does not fit is shrunk or wrapped, never cut: the strip stays intact."""
    for size in SIZES:
        strips = []
        for screen in ("scanning", "result-stop", "officer", "override"):
            surface = render(scene, screen, size)
            strip = Layout.for_size(*size, lights=True).status
            strips.append(pygame.surfarray.array3d(surface.subsurface(strip)))
        for other in strips[1:]:
            assert difference(strips[0], other)[0] == 0.0, size


# --- the officer panel's appliance screens (800×480 and 1024×600, English at 800×480) ----------

TECH_SCREENS = ["provision-waiting", "provision-working", "provision-failed", "provision-done",
                "selftest-question", "selftest-done", "provisioned-ok", "provisioned-failed"]
TECH_SIZES = [(800, 480), (1024, 600), (480, 800)]


def tech_report():
    """A self-test report as kiosk.ops.selftest makes it (the screens draw what they are given)."""
    from kiosk.ops.selftest import Check, SelfTestReport

    return SelfTestReport((
        Check("camera", "pass", "3 frames 640x480 from picamera2"),
        Check("test card", "pass", "test card read through the camera"),
        Check("lights and buzzer", "fail", "not confirmed: amber"),
        Check("database", "pass", "write/read ok; checkins.db quick_check ok"),
        Check("disk", "pass", "21480 MiB free at /var/lib/checkpoint-kiosk"),
        Check("server", "pass", "https://kiosk.soyte.example.vn reachable, device token accepted"),
        Check("clock", "warn", "not NTP-synced, but within 2 min of the server's clock"),
        Check("trust list and watchlist", "pass", "trust list 5.0 h old, watchlist fresh"),
    ), at="2026-11-22T07:05:00+00:00")


def tech_result(ok: bool):
    from kiosk.ops.provision import Result

    if ok:
        return Result(ok=True, message="enrolled as kiosk-7f3a at LS-HUUNGHI",
                      device_id="kiosk-7f3a", checkpoint_id="LS-HUUNGHI",
                      checkpoint_name="Cửa khẩu Hữu Nghị",
                      server_url="https://kiosk.soyte.example.vn",
                      source="file /boot/firmware/checkpoint-kiosk-provision.toml")
    return Result(ok=False, source="file /media/usb-1/checkpoint-kiosk-provision.toml",
                  message="the central platform at https://kiosk.soyte.example.vn refused the "
                          "enrolment token (403: enrolment token unknown or already used; ask "
                          "for a new one); tokens work once: ask for a new one")


def render_tech(scene, screen: str, size: tuple[int, int], language: str = "vi"
                ) -> pygame.Surface:
    kit, _found = scene
    clock = FixedClock()
    appliance = Appliance(config_path=Path("/etc/checkpoint-kiosk/kiosk.toml"))
    app = KioskApp(kit.loop, UiSettings.checked(language=language, officer_pin="2468"), size,
                   show_lights=True, clock=clock, now=lambda: WALL, tz=ICT, appliance=appliance)
    app.health = health()
    kind, _, variant = screen.partition("-")
    if kind == "provisioned":
        app.show_provisioned(tech_result(variant == "ok"))
        app.screen.until = clock() + 12
    elif kind == "provision":
        app.go("provision")
        s = app.screen
        s.phase = variant if variant != "waiting" else "waiting"
        if variant == "waiting":
            s.message = app.t("This is not a provisioning code.")
        elif variant == "working":
            s.server = "https://kiosk.soyte.example.vn"
        elif variant == "failed":
            s.error = tech_result(False).message
        elif variant == "done":
            s.result, s.done_at = tech_result(True), clock() - 3
    else:
        app.go("selftest")  # no runner here: nothing starts; the state is set below
        s = app.screen
        s.error = None
        if variant == "question":
            s.current, s.question = "lights and buzzer", "Is the amber light on?"
        else:
            s.report = tech_report()
    surface = pygame.Surface(size)
    app.draw(surface)
    return surface


@pytest.mark.parametrize("size", TECH_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_appliance_screens_match_their_references(scene, size, out_dir):
    for screen in TECH_SCREENS:
        check_against_reference(render_tech(scene, screen, size),
                                f"{screen}-{size[0]}x{size[1]}", out_dir)


def test_english_appliance_screens_match_their_references(scene, out_dir):
    for screen in TECH_SCREENS:
        check_against_reference(render_tech(scene, screen, (800, 480), "en"),
                                f"en-{screen}-800x480", out_dir)


def test_the_guide_frame_grows_with_the_camera_crop():
    import pygame

    from kiosk.ui.layout import Layout, guide_fraction

    layout = Layout.for_size(800, 480)
    image = pygame.Rect(0, 0, 640, 480)
    full = layout.guide_rect(image)
    cropped = layout.guide_rect(image, 0.5)
    assert full.width == int(640 * guide_fraction())
    assert abs(cropped.width - 2 * full.width) <= 1
    assert layout.guide_rect(image, 0.2).width == int(640 * 0.9)
