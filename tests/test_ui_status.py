"""The officers' status strip: staleness at a glance, undeliverable rows, readable text
(issue 9, defect 12 and the 8 px strip).  Real ScanLoop and store; screenshots are saved
for a person to look at."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pygame
import pytest
from test_ui_loop import StaticDocuments, build_kit

from kiosk.config import UiSettings
from kiosk.runtime.events import Health
from kiosk.ui.app import KioskApp
from kiosk.ui.screens import (
    BAD,
    OK,
    STRIP_BG,
    WARN,
    draw_status,
    status_items,
    status_lines,
)
from offline_queue.sync import SyncStatus

ICT = timezone(timedelta(hours=7))
WALL = datetime(2026, 11, 22, 7, 5, tzinfo=UTC)  # 14:05 on 22/11 in Vietnam
SIZES = [(800, 480), (480, 800)]


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    pygame.display.init()
    pygame.font.init()
    pygame.display.set_mode((64, 64))
    with build_kit(tmp_path_factory.mktemp("status"), wall=lambda: WALL, tz=ICT) as k:
        yield k
    pygame.display.quit()


def healthy(**changes) -> Health:
    values = dict(camera_ok=True, camera_message=None, store_ok=True, store_message=None,
                  disk_low=False, online=True, backlog=0, last_sync=WALL - timedelta(minutes=1),
                  reprovision_needed=False, clock_synced=True, trust_list_age=None,
                  documents=(("policy", WALL - timedelta(minutes=9)),
                             ("watchlist", WALL - timedelta(minutes=9)),
                             ("trust_list", WALL - timedelta(minutes=9))))
    values.update(changes)
    return Health(**values)


def make_app(kit, size=(800, 480), language="vi", health=None):
    app = KioskApp(kit.loop, UiSettings.checked(language=language), size, show_lights=True,
                   clock=lambda: 5000.0, now=lambda: WALL, tz=ICT)
    app.go("scanning")
    app.health = health or healthy()
    return app


def items(app) -> dict[str, tuple[int, int, int]]:
    return {text: colour for text, _short, colour in status_items(app)}


def test_a_three_day_old_sync_shows_its_age_its_date_and_red(kit):
    old = healthy(last_sync=WALL - timedelta(days=3, minutes=20), online=False, backlog=81)
    assert items(make_app(kit, health=old))["Đồng bộ 19/11 (3 ngày trước)"] == BAD
    assert items(make_app(kit, language="en", health=old))["Synced 19/11 (3 days ago)"] == BAD
    for age, text, colour in ((timedelta(seconds=20), "Synced just now", OK),
                              (timedelta(minutes=12), "Synced 12 min ago", OK),
                              (timedelta(minutes=40), "Synced 40 min ago", WARN),
                              (timedelta(hours=5), "Synced 5 h ago", WARN),
                              (timedelta(hours=20), "Synced 21/11 (20 h ago)", WARN),
                              (timedelta(hours=30), "Synced 21/11 (1 day ago)", BAD)):
        app = make_app(kit, language="en", health=healthy(last_sync=WALL - age))
        assert items(app).get(text) == colour, (text, items(app))
    never = make_app(kit, language="en", health=healthy(last_sync=None))
    assert items(never)["Never synced"] == WARN


def test_policy_watchlist_and_trust_list_each_show_their_age(kit):
    h = healthy(documents=(("policy", WALL - timedelta(hours=2)),
                           ("watchlist", WALL - timedelta(days=3)),
                           ("trust_list", None)))
    assert {k: v for k, v in items(make_app(kit, health=h)).items()
            if k.startswith(("Chính", "DS", "Chưa có DS"))} == {
        "Chính sách 2 giờ trước": WARN,
        "DS theo dõi 19/11 (3 ngày trước)": BAD,
        "Chưa có DS tin cậy": WARN,
    }
    fresh = items(make_app(kit, language="en"))
    assert {k: v for k, v in fresh.items() if "9 min" in k} == {
        "Policy 9 min ago": OK, "Watchlist 9 min ago": OK, "Trust list 9 min ago": OK}
    refused = healthy(document_errors=("watchlist",))
    assert items(make_app(kit, language="en", health=refused))["Watchlist not applied"] == BAD


def test_undeliverable_check_ins_are_shown_in_red(kit):
    app = make_app(kit, language="en", health=healthy(undelivered=81))
    assert items(app)["81 check-ins not delivered"] == BAD
    app = make_app(kit, health=healthy(undelivered=81))
    assert items(app)["81 lượt không gửi được"] == BAD


def test_the_loop_reports_document_times_and_undeliverable_rows(tmp_path):
    times = {"policy": WALL - timedelta(hours=1), "watchlist": None}
    with build_kit(tmp_path) as k:
        loop = k.loop
        from kiosk.runtime.scanloop import ScanLoop

        fresh = ScanLoop(store=k.store, checker=loop.checker, recognise=loop.recognise,
                         documents=StaticDocuments(times=times))
        assert fresh.health().documents == (("policy", times["policy"]), ("watchlist", None))
        assert ScanLoop(store=k.store, checker=loop.checker,
                        recognise=loop.recognise).health().documents == ()
        # Today's SyncStatus: dead letters are undeliverable.
        status = SyncStatus(online=True, backlog=3, dead_letter=81, last_success=WALL,
                            last_error=None, reprovision_needed=False)
        fresh.events.put(status)
        fresh.step()
        assert fresh.health().undelivered == 81 and fresh.health().document_errors == ()
        # After the sync rework: rows held for a re-enrolment and refused documents too.
        later = replace(status, forbidden=7, document_errors=(("watchlist", "not valid"),))
        fresh.events.put(later)
        fresh.step()
        assert fresh.health().undelivered == 88
        assert fresh.health().document_errors == ("watchlist",)

        def broken():
            raise OSError("database is locked")

        fresh.documents.document_times = broken
        assert fresh.health().documents == ()  # the screen's status never stops the loop


def ink_height(surface: pygame.Surface, rect: pygame.Rect, background) -> int:
    """Height of what is drawn in ``rect`` (text ascenders to descenders), in pixels."""
    pixels = pygame.surfarray.array3d(surface.subsurface(rect)).astype(np.int16)
    drawn = np.abs(pixels - np.array(background)).max(axis=2) > 60
    rows = np.where(drawn.any(axis=0))[0]
    return int(rows.max() - rows.min() + 1) if len(rows) else 0


WORST = dict(online=False, backlog=1234, undelivered=81, clock_synced=False,
             last_sync=WALL - timedelta(days=3), camera_ok=False,
             documents=(("policy", WALL - timedelta(days=12)),
                        ("watchlist", WALL - timedelta(days=3)),
                        ("trust_list", WALL - timedelta(days=30))))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("language", ["vi", "en"])
def test_the_strip_is_readable_at_800x480(kit, size, language, tmp_path):
    for name, health in (("healthy", healthy(backlog=3)),
                         ("stale", healthy(last_sync=WALL - timedelta(days=3), online=False,
                                           backlog=81)),
                         ("worst", healthy(**WORST))):
        app = make_app(kit, size, language, health)
        surface = pygame.Surface(size)
        app.draw(surface)
        pygame.image.save(surface, str(tmp_path / f"strip-{name}-{language}-{size[0]}.png"))
        text_size = draw_status(app, surface)
        # Everything wrong at once in Vietnamese beside the demo's lights: 15 px (docs/ui.md).
        assert text_size >= (15 if name == "worst" else 16), (name, text_size)
        strip = app.layout.status
        assert strip.bottom == size[1]
        # Measured on the screen, line by line: the tallest ink (a Vietnamese line with
        # stacked marks and descenders) is the type's full height; caps alone are 0.7 of it.
        _lights, lines = status_lines(app)
        heights = [ink_height(surface, line, STRIP_BG) for line in lines]
        assert max(heights) >= 16 and all(h >= 11 for h in heights if h), (name, heights)


def test_every_item_is_drawn_even_when_everything_is_wrong(kit):
    """Worse than the worst case above: the strip shrinks rather than drop an item."""
    from kiosk.ui.screens import _status_fit

    app = make_app(kit, (800, 480), "vi", healthy(**WORST, document_errors=("policy",)))
    every = status_items(app)
    margin = app.layout.status.height
    lines = app.layout.rows(pygame.Rect(0, 0, 600, margin - 4), [1.0, 1.0], gap=0)
    size, rows = _status_fit(app, [*every, ("LỐI VÀO  14:05", "LỐI VÀO  14:05", (1, 1, 1))],
                             lines)
    assert sum(len(r) for r in rows) == len(every) + 1 and size >= 8


def test_health_defaults_keep_older_callers_working():
    h = Health(camera_ok=True, camera_message=None, store_ok=True, store_message=None,
               disk_low=False, online=None, backlog=0, last_sync=None,
               reprovision_needed=False, clock_synced=True, trust_list_age=None)
    assert (h.documents, h.undelivered, h.document_errors) == ((), 0, ())
    assert replace(h, undelivered=2).undelivered == 2


def test_a_central_key_pinned_on_trust_is_shown_until_confirmed(tmp_path, kit):
    """A kiosk enrolled without the central's fingerprint (or by an older version) trusts the
    first key it saw: the strip says so until it is re-provisioned with the fingerprint."""
    with build_kit(tmp_path) as k:
        from kiosk.runtime.scanloop import ScanLoop

        loop = ScanLoop(store=k.store, checker=k.loop.checker, recognise=k.loop.recognise)
        status = SyncStatus(online=True, backlog=0, dead_letter=0, last_success=WALL,
                            last_error=None, reprovision_needed=False)
        loop.events.put(replace(status, key_warning="pinned on first use"))
        loop.step()
        assert loop.health().key_unconfirmed
        loop.events.put(status)
        loop.step()
        assert not loop.health().key_unconfirmed
    assert items(make_app(kit, language="en", health=healthy(key_unconfirmed=True)))[
        "Central key not confirmed"] == WARN
    assert items(make_app(kit, health=healthy(key_unconfirmed=True)))[
        "Khóa máy chủ chưa xác nhận"] == WARN
    assert "Central key not confirmed" not in items(make_app(kit, language="en"))
