"""Decoding a camera stream rather than single frames (issue 11).

Consecutive frames of a held code are nearly the same picture, so the costly passes of
``MultiPassDecoder`` need not all run on every frame: :class:`StreamDecoder` makes one
plain zxing-cpp call a frame and, on some of the frames that read nothing, *one* costly
pass, the next in turn, on the places where recent frames showed a candidate (a symbol
zxing located but could not decode, or a patch of QR-like texture), or on the whole frame
for ``zbar``; when that pass reads nothing, its companion (``up3``, the cheapest upscale)
tries the candidates on the same frame. Which frames: at once where zxing located a
symbol or the scout first finds texture; else few while a candidate is arriving (still
moving, rarely readable), one in two once it has stayed in view (the last frames of a
hand's braking are the ones that read), and few again once it has been in view for half a
second unread (a card without a code, the room's own texture, a damaged code).  A code
held for half a second has been tried every way; most frames cost one plain call.

What frames show is combined, never voted on: the *where* (candidate boxes live for a few
frames), and the *pixels* (the ``stack`` pass averages the candidate's crop over the last
frames, aligned by phase correlation, which halves sensor noise in dim light).  Every code
returned was decoded in full, with its error correction, from one image.

The decoder keeps up with its camera: each frame earns one frame period of time, the plain
call spends its part, and a costly pass runs only when the time saved (at most two frame
periods) covers its expected cost (its measured cost a pixel, times the pixels of the
candidate boxes it is about to work on).  So on average a decode never takes longer than a
frame period: on a slow or busy CPU the costly passes run less often, then not at all,
and the plain call stays.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hardware.errors import DeviceSettingError
from hardware.qr.base import Code, check_detail, check_frame, unique
from hardware.qr.zxing import (
    _UPSCALE_MAX_SIDE,
    Box,
    MultiPassDecoder,
    _check_passes,
    texture_boxes,
)

log = logging.getLogger(__name__)

# Measured with bench/stream.py on seed 1 (docs/decoding.md, "Stream decoding"): the
# stack every other pass, since it reads most of what the hand's last braking leaves
# readable only in the last frames of half a second (bench/clip_oracle.py); zbar fourth,
# so that a code held for half a second (15 frames: a first pass, then one frame in two
# once it is held) has had it.
DEFAULT_STREAM_PASSES: tuple[str, ...] = ("stack", "up3_hard", "stack", "zbar", "stack",
                                          "up3", "stack", "up2_sharpen")
# After a rotation pass that read nothing, the cheapest upscale tries the same candidates
# on the same frame: most codes that only become readable in the last frames of half a
# second read with a plain 3x upscale of their crop (bench/clip_oracle.py), where the
# rotation's pass of that frame was another one.  A pass comes on at most one frame in two
# (and one in six on most frames without a code), so the median frame does not pay for
# it (docs/decoding.md, "Stream decoding").
DEFAULT_COMPANION = "up3"
STREAM_PASSES = ("up3_hard", "up2_sharpen", "up2_soft", "up3", "sharp_up3", "stack", "zbar")
# Passes that look at the whole frame and need no candidate.
_FRAME_PASSES = frozenset({"zbar"})
_STACK = 3            # frames averaged by the stack pass
_FOCUS_TTL = 6        # frames a candidate box is kept without being seen again
# Frames with candidates in view after which they are taken as held (a code brought to the
# camera brakes in its first 0.2 s, and most codes that read late read after that).
_HELD_AFTER = 6
_STACK_MAX_SIDE = 320  # crops larger than this are not stacked (a big code needs no help)
# The scout's boxes: up to 512 px (a phone's HC1 code held near is 300 px and more, and
# zxing often locates only a fragment of it), on 2x2-averaged pixels (dim-light noise).
_SCOUT_MAX_SIDE = 512
_SCOUT_POOL = 2
# The largest candidate each pass works on (None: any); the upscaling passes stop at
# _UPSCALE_MAX_SIDE.  A pass is not run on a box it would return at once from: that
# would waste its turn and teach the budget that it costs nothing.
_PASS_MAX_SIDE: dict[str, int | None] = {"stack": _STACK_MAX_SIDE, "up2_soft": None,
                                         "zbar": None}


@dataclass
class _Focus:
    box: Box
    age: int = 0


def _fits(name: str, box: Box) -> bool:
    limit = _PASS_MAX_SIDE.get(name, _UPSCALE_MAX_SIDE)
    return limit is None or max(box[2] - box[0], box[3] - box[1]) <= limit


def _area(box: Box) -> int:
    x0, y0, x1, y1 = box
    return max(0, x1 - x0) * max(0, y1 - y0)


def _phase_shift(ref: np.ndarray, img: np.ndarray) -> tuple[int, int]:
    """Integer (dy, dx) such that ``img`` shifted by it best matches ``ref``."""
    a = np.fft.rfft2(ref - ref.mean())
    b = np.fft.rfft2(img - img.mean())
    r = a * np.conj(b)
    r /= np.abs(r) + 1e-6
    corr = np.fft.irfft2(r, ref.shape)
    dy, dx = np.unravel_index(int(np.argmax(corr)), corr.shape)
    h, w = ref.shape
    return (int(dy) - h if dy > h // 2 else int(dy)), (int(dx) - w if dx > w // 2 else int(dx))


class StreamDecoder(MultiPassDecoder):
    """One plain zxing-cpp call a frame; the costly passes spread over consecutive frames.

    Call :meth:`decode` with the frames of one camera in order (dropped frames are fine),
    and :meth:`reset` when the camera changes.  ``frame_period`` is the camera's (1/30 s).
    While candidates are arriving (in view for fewer than 6 frames) a costly pass runs on
    one frame in ``every``: a code still moving is rarely readable. Once they are held, on
    one frame in ``held_every``, since the last frames of a hand's braking are those that
    read; once they have been in view for ``patience`` frames (half a second) unread, back
    to one in ``every`` (a card without a code, the room's own texture, a damaged code), and
    a symbol zxing locates no longer gets a pass at once. With no candidate in view, the
    scout looks for one every ``look_every`` frames and what it finds is tried at once. A
    candidate pass tries the ``boxes`` freshest candidates (2: what zxing located is often a
    fragment, the code being in the texture beside it); ``clock`` measures what a decode
    costs (wall time: what matters for keeping up with the camera).
    """

    name = "stream"

    def __init__(self, *, frame_period: float = 1 / 30,
                 stream_passes: Sequence[str] = DEFAULT_STREAM_PASSES, every: int = 6,
                 held_every: int = 2, patience: int = 15, look_every: int = 3,
                 boxes: int = 2, zbar_every: int = 0,
                 companion: str | None = DEFAULT_COMPANION,
                 stack_passes: Sequence[str] = ("plain", "up2_sharpen"),
                 clock: Callable[[], float] = time.perf_counter, **options: Any) -> None:
        unknown = [p for p in stream_passes if p not in STREAM_PASSES]
        if unknown:
            raise DeviceSettingError(f"unknown stream decoder passes {unknown!r}; choose from "
                                     f"{', '.join(STREAM_PASSES)}")
        if not 0 < frame_period <= 1:
            raise DeviceSettingError(
                f"frame_period must be in (0, 1] seconds, got {frame_period!r}")
        for what, value in (("every", every), ("held_every", held_every),
                            ("patience", patience), ("look_every", look_every)):
            if value < 1:
                raise DeviceSettingError(f"{what} must be 1 or more, got {value!r}")
        if boxes < 1:
            raise DeviceSettingError(f"boxes must be 1 or more, got {boxes!r}")
        if companion is not None and (companion not in STREAM_PASSES
                                      or companion in _FRAME_PASSES):
            raise DeviceSettingError(
                f"unknown companion pass {companion!r}; choose one of "
                f"{', '.join(p for p in STREAM_PASSES if p not in _FRAME_PASSES)}, or None")
        if zbar_every < 0:
            raise DeviceSettingError(f"zbar_every must be 0 (never) or more, got {zbar_every!r}")
        super().__init__(**options)
        self.frame_period = frame_period
        self.stream_passes = tuple(stream_passes)
        self.every = every
        self.held_every = held_every
        self.patience = patience
        self.look_every = look_every
        self.boxes = boxes
        self.zbar_every = zbar_every
        self.companion = companion
        self.stack_passes = _check_passes("stack_passes", stack_passes)
        self._clock = clock
        self._zbar: Any = None
        self.reset()

    def reset(self) -> None:
        """Forget the stream so far (a new camera, a scene change)."""
        self._focus: list[_Focus] = []
        self._history: deque[np.ndarray] = deque(maxlen=_STACK)
        # The camera's main stream beside each frame of the history, and how many of its
        # pixels make a frame pixel (None: the frame came alone).
        self._details: deque[tuple[np.ndarray, int] | None] = deque(maxlen=_STACK)
        self._turn = 0
        self._since_pass = 0
        self._since_zbar = 0
        self._since_scout = 0
        self._in_view = 0      # frames with a candidate and no read (gaps under _FOCUS_TTL)
        self._out_of_view = 0
        self._credit = 0.0     # seconds of frame time saved for costly passes
        # Measured cost of each pass, in seconds a pixel of the boxes it worked on (none
        # before its first run: a pass is tried once before its cost is known).
        self._cost: dict[str, float] = {}

    shed = 0         # costly passes skipped to keep up with the camera (since construction)
    passes_run = 0   # costly passes run
    def decode(self, frame: np.ndarray, detail: np.ndarray | None = None) -> list[Code]:
        """The codes to act on at this frame.  ``detail`` is the same exposure from the
        camera's main stream, at a whole multiple of the frame's size: the costly passes
        crop their candidates from it (real pixels where the frame's would be upscaled);
        the plain call, the scout and ``zbar`` read the frame."""
        frame = check_frame(frame)
        if frame.size == 0:
            return []
        start = self._clock()
        self._credit = min(self._credit + self.frame_period, 2 * self.frame_period)
        codes, located = self._read_located(frame)
        if self._history and self._history[-1].shape != frame.shape:
            self.reset()
        self._history.append(frame)
        self._details.append(check_detail(frame, detail))
        if codes:
            self._focus = []
            self._since_pass = 0
            self._in_view = 0
            self._finish(start)
            return unique(codes)
        self._age_focus(located)
        self._since_pass += 1
        self._since_zbar += 1
        self._since_scout += 1
        found: list[Code] = []
        # A symbol zxing located in this very frame is the best moment for a pass: its
        # finder patterns are sharp enough to be found (unless it has been in view unread
        # for long: a damaged code held up for seconds would have one on every frame).
        if (located and self._in_view < self.patience) or self._since_pass >= self._cadence():
            found = self._costly(frame, start)
        elif not self._focus and self._since_scout >= self.look_every and self._credit > 0:
            # Nothing in view: look for texture more often than passes come, and try what
            # appears at once (a code held still from the start, a photo).
            self._scout(frame)
            if self._focus:
                found = self._costly(frame, start)
        self._finish(start)
        return unique(found)

    def _cadence(self) -> int:
        """One frame in how many gets a costly pass now."""
        if _HELD_AFTER <= self._in_view < self.patience:
            return self.held_every
        return self.every

    def _finish(self, start: float) -> None:
        self._credit -= self._clock() - start

    def _age_focus(self, located: list[Box]) -> None:
        kept = [f for f in self._focus if f.age < _FOCUS_TTL]
        for f in kept:
            f.age += 1
        for box in located:
            kept.insert(0, _Focus(box))
        self._focus = kept[:3]
        self._count_view()

    def _count_view(self) -> None:
        """How long candidates have been in view; they are gone after _FOCUS_TTL frames
        without one (the scout does not run on every frame, so brief gaps are normal)."""
        if self._focus:
            self._in_view += 1
            self._out_of_view = 0
            return
        self._out_of_view += 1
        if self._out_of_view > _FOCUS_TTL:
            self._in_view = 0

    def _costly(self, frame: np.ndarray, start: float) -> list[Code]:
        """One costly pass, the next in turn, if the time saved covers it; then the
        companion pass if the first read nothing."""
        if self._credit <= 0:
            # Earlier frames took all the time the camera gives: this one stays plain.
            self.shed += 1
            return []
        self._scout(frame)
        name = self._next_pass()
        if name is None:
            return []
        boxes = self._boxes_for(name, frame)
        if not boxes:
            # Every candidate is too large for this pass: its turn passes, and the next
            # pass in turn is due on the next frame.
            self._turn += 1
            return []
        # A pass's cost grows with the pixels it works on (a 500 px candidate costs ten
        # times a 160 px one), so what is measured is its cost a pixel.
        if self._expected_cost(name, boxes) > self._credit:
            self.shed += 1
            return []
        if name == "zbar":
            self._since_zbar = 0
        if name == self.stream_passes[self._turn % len(self.stream_passes)]:
            self._turn += 1
        self._since_pass = 0
        self.passes_run += 1
        codes = self._timed(name, frame, boxes)
        if not codes and self.companion is not None and name != self.companion:
            name = self.companion
            codes = self._companion(name, frame, start)
        if codes:
            log.debug("stream pass %r found %d code(s)", name, len(codes))
        return codes

    def _companion(self, name: str, frame: np.ndarray, start: float) -> list[Code]:
        """The companion pass ``name`` on this frame's candidates, if what is left of the
        time saved (less what this frame has spent so far) covers its expected cost."""
        boxes = self._boxes_for(name, frame)
        if not boxes:
            return []
        left = self._credit - (self._clock() - start)
        if self._expected_cost(name, boxes) > left:
            self.shed += 1
            return []
        self.passes_run += 1
        return self._timed(name, frame, boxes)

    def _expected_cost(self, name: str, boxes: list[Box]) -> float:
        """Seconds the pass ``name`` is expected to take on ``boxes`` (0 before its first
        run: a pass is tried once before its cost is known)."""
        return self._cost.get(name, 0.0) * sum(_area(b) for b in boxes)

    def _boxes_for(self, name: str, frame: np.ndarray) -> list[Box]:
        if name in _FRAME_PASSES:
            return [(0, 0, frame.shape[1], frame.shape[0])]
        return [f.box for f in self._focus if _fits(name, f.box)][:self.boxes]

    def _timed(self, name: str, frame: np.ndarray, boxes: list[Box]) -> list[Code]:
        """Run the pass on the boxes until one reads; learn its cost a pixel."""
        t = self._clock()
        codes: list[Code] = []
        tried = 0
        try:
            for box in boxes:
                tried += _area(box)
                codes = self._run(name, frame, box)
                if codes:
                    break
        finally:
            rate = (self._clock() - t) / max(1, tried)
            old = self._cost.get(name)
            self._cost[name] = rate if old is None else 0.7 * old + 0.3 * rate
        return codes

    def _scout(self, frame: np.ndarray) -> None:
        if not self._focus or self._focus[0].age > 1:
            self._since_scout = 0
            # Scouting for QR-like texture costs about one plain call; done only when the
            # candidates are stale, and it is itself a pass in the sense of the budget.
            for box in texture_boxes(frame, max_side=_SCOUT_MAX_SIDE, pool=_SCOUT_POOL):
                self._focus.insert(0, _Focus(box))
            self._focus = self._focus[:3]

    def _next_pass(self) -> str | None:
        """The pass due on this frame: zbar when its cadence says so, else the next in turn."""
        if self.zbar_every and self._since_zbar >= self.zbar_every:
            # zbar on the whole frame on its own cadence (what pays on real photos).
            return "zbar"
        name = self.stream_passes[self._turn % len(self.stream_passes)]
        if not self._focus and name not in _FRAME_PASSES:
            return None
        return name

    def _run(self, name: str, frame: np.ndarray, box: Box) -> list[Code]:
        x0, y0, x1, y1 = box
        if name == "stack":
            return self._stack(box)
        if name == "zbar":
            # zbar's own locator on the whole frame: it reads some curved and wrinkled
            # codes zxing-cpp cannot, and a crop would cut them (measured on real photos).
            return self._zbar_read(frame, (0, 0))
        fine = self._details[-1]
        if fine is not None:
            image, k = fine
            crop = np.ascontiguousarray(image[y0 * k:y1 * k, x0 * k:x1 * k])
            return self._passes(crop, (name,), (x0, y0), finer=k)
        crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
        return self._passes(crop, (name,), (x0, y0))

    def _stack(self, box: Box) -> list[Code]:
        """The candidate's crop averaged over the last frames, aligned; then read.  The
        shifts come from the frames, the pixels from the main stream when every frame of
        the history came with it at the same scale."""
        if len(self._history) < 2:
            return []
        x0, y0, x1, y1 = box   # at most _STACK_MAX_SIDE: _fits keeps larger boxes away
        frames = list(self._history)
        ref = frames[-1][y0:y1, x0:x1].astype(np.float32)
        h, w = frames[-1].shape
        # (frame in the history, where the box was in it)
        places = [(len(frames) - 1, y0, x0)]
        for i, old in enumerate(frames[:-1]):
            dy, dx = _phase_shift(ref, old[y0:y1, x0:x1].astype(np.float32))
            # The same box, moved with the code; skipped where it would leave the frame.
            oy0, ox0 = y0 - dy, x0 - dx
            if oy0 < 0 or ox0 < 0 or oy0 + (y1 - y0) > h or ox0 + (x1 - x0) > w:
                continue
            places.append((i, oy0, ox0))
        if len(places) < 2:
            return []
        details = list(self._details)
        scales = {d[1] if d is not None else 1 for d in details}
        k = scales.pop() if len(scales) == 1 else 1
        images = [d[0] for d in details if d is not None] if k > 1 else frames
        bh, bw = (y1 - y0) * k, (x1 - x0) * k
        total = np.zeros((bh, bw), np.float32)
        for i, oy0, ox0 in places:
            total += images[i][oy0 * k:oy0 * k + bh, ox0 * k:ox0 * k + bw]
        mean = np.clip(total / len(places) + 0.5, 0, 255).astype(np.uint8)
        return self._passes(mean, self.stack_passes, (x0, y0), finer=k)

    def _zbar_read(self, crop: np.ndarray, offset: tuple[int, int]) -> list[Code]:
        if self._zbar is None:
            from hardware.qr.zbar import PyzbarDecoder

            self._zbar = PyzbarDecoder()
        ox, oy = offset
        return [Code(c.text, c.raw, c.format, tuple((x + ox, y + oy) for x, y in c.position))
                for c in self._zbar.decode(crop)]

    def close(self) -> None:
        if self._zbar is not None:
            self._zbar.close()
            self._zbar = None
        super().close()
