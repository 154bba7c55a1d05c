"""Screen geometry from the window size: one place decides where things go.

Everything scales from ``unit`` (1/24 of the short side), so 800×480 and 1920×1080 look
alike; portrait stacks what landscape puts side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

import pygame

# A camera preview is 4:3 (the lores stream); letterbox it rather than crop the guide.
PREVIEW_ASPECT = 4 / 3

# The guide frame is the size an ID-1 card (85.6 mm wide) appears at 30 cm from a camera
# with a 62° horizontal field of view (Camera Module 2/3): 2·0.30·tan 31° = 0.36 m wide,
# so the card spans 0.0856 / 0.36 ≈ 24 % of the frame.  Closer is blurred on the
# fixed-focus Module 2; further makes the 11 mm QR of the 2024 card too small to decode.
CARD_MM = (85.6, 53.98)
GUIDE_DISTANCE_M = 0.30
CAMERA_HFOV_DEG = 62.2


def guide_fraction(distance_m: float = GUIDE_DISTANCE_M, hfov_deg: float = CAMERA_HFOV_DEG,
                   card_width_mm: float = CARD_MM[0]) -> float:
    """Fraction of the camera frame width that an ID card covers at ``distance_m``."""
    import math

    seen_m = 2 * distance_m * math.tan(math.radians(hfov_deg / 2))
    return card_width_mm / 1000 / seen_m


def status_line_height(unit: int) -> int:
    """One line of the officers' strip: 23 px at 800×480 fits Noto Sans at 16 px."""
    return max(23, int(unit * 1.15))


def status_margin(unit: int) -> int:
    """Space above and below the strip's lines together."""
    return max(4, status_line_height(unit) // 5)


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    portrait: bool
    unit: int
    pad: int
    status: pygame.Rect
    body: pygame.Rect
    preview: pygame.Rect
    side: pygame.Rect
    banner: pygame.Rect
    details: pygame.Rect
    status_lines: int = 1  # lines of the officers' strip (the demo's lights included)

    @classmethod
    def for_size(cls, width: int, height: int, lights: bool = False) -> Layout:
        """Geometry for a ``width``×``height`` canvas; ``lights``: room for the demo lights."""
        portrait = height > width
        unit = max(12, min(width, height) // 24)
        pad = max(6, unit // 2)
        # The officers' strip: two lines in landscape, four in portrait (plus one for the
        # demo's lights), each tall enough for 16 px text at 800×480 (docs/ui.md).
        lines = (4 + (1 if lights else 0)) if portrait else 2
        status_h = status_line_height(unit) * lines + status_margin(unit)
        status = pygame.Rect(0, height - status_h, width, status_h)
        body = pygame.Rect(0, 0, width, height - status_h)
        if portrait:
            pw = width - 2 * pad
            ph = int(pw / PREVIEW_ASPECT)
            if ph > body.height * 0.5:
                ph = int(body.height * 0.5)
                pw = int(ph * PREVIEW_ASPECT)
            preview = pygame.Rect((width - pw) // 2, pad, pw, ph)
            side = pygame.Rect(pad, preview.bottom + pad, width - 2 * pad,
                               body.bottom - preview.bottom - 2 * pad)
            banner = pygame.Rect(0, 0, width, int(body.height * 0.36))
        else:
            ph = body.height - 2 * pad
            pw = int(ph * PREVIEW_ASPECT)
            if pw > width * 0.58:
                pw = int(width * 0.58)
                ph = int(pw / PREVIEW_ASPECT)
            preview = pygame.Rect(pad, pad + (body.height - 2 * pad - ph) // 2, pw, ph)
            side = pygame.Rect(preview.right + pad, pad, width - preview.right - 2 * pad,
                               body.height - 2 * pad)
            banner = pygame.Rect(0, 0, width, int(body.height * 0.42))
        details = pygame.Rect(pad * 2, banner.bottom + pad, width - 4 * pad,
                              body.bottom - banner.bottom - 2 * pad)
        return cls(width, height, portrait, unit, pad, status, body, preview, side, banner,
                   details, lines)

    def guide_rect(self, image: pygame.Rect, crop: float = 1.0) -> pygame.Rect:
        """The card-sized guide frame centred on the shown preview image.

        ``crop`` is the camera's centre crop (``camera.crop``): a card fills more of a cropped
        frame, so the guide grows with it (to at most 90 % of the preview).
        """
        w = int(image.width * min(0.9, guide_fraction() / crop))
        h = int(w * CARD_MM[1] / CARD_MM[0])
        r = pygame.Rect(0, 0, w, h)
        r.center = image.center
        return r

    def rows(self, area: pygame.Rect, weights: list[float], gap: int | None = None
             ) -> list[pygame.Rect]:
        """Split ``area`` vertically in proportion to ``weights``."""
        gap = self.pad if gap is None else gap
        usable = area.height - gap * (len(weights) - 1)
        total = sum(weights)
        out, y = [], area.top
        for w in weights:
            h = int(usable * w / total)
            out.append(pygame.Rect(area.left, y, area.width, h))
            y += h + gap
        return out

    def columns(self, area: pygame.Rect, weights: list[float], gap: int | None = None
                ) -> list[pygame.Rect]:
        """Split ``area`` horizontally in proportion to ``weights``."""
        gap = self.pad if gap is None else gap
        usable = area.width - gap * (len(weights) - 1)
        total = sum(weights)
        out, x = [], area.left
        for w in weights:
            cw = int(usable * w / total)
            out.append(pygame.Rect(x, area.top, cw, area.height))
            x += cw + gap
        return out
