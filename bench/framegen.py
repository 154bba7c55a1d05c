"""Synthetic but camera-like checkpoint frames for measuring QR decoders.

Every frame is built from a seeded RNG, so a (seed, count) pair always gives the same
set.  People are made up.  Each frame carries the exact bytes that were encoded (or
``None`` for a frame with no code), which is how a read is scored right or wrong.

Categories follow what a checkpoint camera sees (issue 2): a small dense ID-card code
far from the lens, a code held too close to a fixed-focus lens, a phone screen (moiré,
glare, gamma), faded paper, motion blur, sensor noise with JPEG artefacts, perspective
tilt and rotation, and frames with no code at all (clutter, text, face-like blobs).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
import segno

CATEGORIES = (
    "small_dense",
    "close_defocus",
    "phone_screen",
    "faded_paper",
    "motion_blur",
    "noise_jpeg",
    "tilt_rotate",
    "no_code",
)

# (width, height) of the frames a Pi camera's lores stream or a USB webcam gives.
SIZES = ((640, 480), (1280, 720))

_SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
             "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý")
_MIDDLE = ("Văn", "Thị", "Hữu", "Minh", "Thanh", "Ngọc", "Đức", "Bích", "Quốc", "Thu", "")
_GIVEN = ("Hạnh", "Ngọc", "Bình", "Toàn", "Hương", "Dũng", "Tuấn", "Mỹ", "Phúc", "Lộc",
          "Thảo", "Quỳnh", "Khoa", "Đạt", "Yến", "Nhung", "Việt")
_STREETS = ("Ngõ 12 Láng Hạ", "Đường Trần Hưng Đạo", "Phố Huế", "Đường Lê Lợi",
            "Đường Nguyễn Trãi", "Thôn Đông Xá", "Khu phố 3")
_WARDS = ("Phường Láng Hạ, Quận Đống Đa, Hà Nội", "Phường Bến Nghé, Quận 1, TP Hồ Chí Minh",
          "Xã Đông Xá, Huyện Vân Đồn, Quảng Ninh", "Phường Hải Châu 1, Quận Hải Châu, Đà Nẵng",
          "Thị trấn Mộc Châu, Huyện Mộc Châu, Sơn La")
_B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


@dataclass(frozen=True)
class Frame:
    category: str
    index: int
    image: np.ndarray          # 2-D uint8 grayscale
    payload: bytes | None      # the exact bytes encoded, None when the frame holds no code
    kind: str                  # payload family, "" for no code
    params: dict = field(default_factory=dict)   # the physical set-up that made it


def _name(rng: random.Random) -> str:
    middle = rng.choice(_MIDDLE)
    parts = [rng.choice(_SURNAMES), middle, rng.choice(_GIVEN)]
    return " ".join(p for p in parts if p)


def _date(rng: random.Random, lo: int, hi: int, sep: str = "") -> str:
    return f"{rng.randint(1, 28):02d}{sep}{rng.randint(1, 12):02d}{sep}{rng.randint(lo, hi)}"


def make_payload(rng: random.Random, kind: str) -> bytes:
    """One synthetic payload of a family seen at checkpoints (shared/reference/payloads.md)."""
    if kind == "cccd":
        number = (f"{rng.choice((1, 31, 48, 79, 94)):03d}{rng.randint(0, 3)}"
                  f"{rng.randint(0, 99):02d}{rng.randint(0, 999999):06d}")
        old = "" if rng.random() < 0.3 else f"{rng.randint(0, 999999999):09d}"
        address = f"Số {rng.randint(1, 200)} {rng.choice(_STREETS)}, {rng.choice(_WARDS)}"
        sex = rng.choice(("Nam", "Nữ"))
        text = "|".join((number, old, _name(rng), _date(rng, 1940, 2005), sex, address,
                         _date(rng, 2021, 2024)))
        if rng.random() < 0.2:
            text += "||||"          # 2024 card model: extra empty trailing fields
        return text.encode("utf-8")
    if kind == "short_vi":
        return rng.choice(("Lê Hạnh", "Đỗ Toàn", "Vũ Mỹ", _name(rng))).encode("utf-8")
    if kind == "pc_covid":
        name = "NGUYEN VAN BINH" if rng.random() < 0.5 else "TRAN THI HUONG"
        qid = "".join(rng.choice("0123456789") for _ in range(18))
        text = (f"******{rng.randint(0, 999999):06d}|{name}|{rng.randint(1950, 2010)}-**-**|0|"
                f"{qid}|1<GD4790*******<0912******")
        return text.encode("ascii")
    if kind == "hc1":
        # Shape of a real EU DCC string (Base45 alphabet, 500-600 characters); content random.
        n = rng.randint(500, 600)
        return ("HC1:" + "".join(rng.choice(_B45) for _ in range(n))).encode()
    if kind == "bhyt":
        name_hex = _name(rng).encode("utf-8").hex()
        addr_hex = f"{rng.choice(_STREETS)}, {rng.choice(_WARDS)}".encode().hex()
        text = (f"GD479{rng.randint(0, 9999999999):010d}|{name_hex}|{_date(rng, 1950, 2010, '/')}|"
                f"{rng.randint(1, 2)}|{addr_hex}|01 - 043|01/01/2021|31/12/2021|01/01/2021|"
                f"01030{rng.randint(0, 99999):05d}|-|4|01/01/2021|{rng.randint(0, 2**32):x}-7|$")
        return text.encode("ascii")
    if kind == "venue":
        token = "".join(rng.choice("abcdef0123456789") for _ in range(24))
        return f"https://tokhaiyte.vn/?venue={token}".encode("ascii")
    raise ValueError(f"unknown payload kind {kind!r}")


def _modules(payload: bytes, rng: random.Random) -> np.ndarray:
    """QR module matrix (1 = dark) with a 4-module quiet zone."""
    error = rng.choice(("l", "m", "m", "q")) if len(payload) < 400 else rng.choice(("l", "m"))
    qr = segno.make_qr(payload, error=error, boost_error=False)
    m = np.array(qr.matrix, dtype=np.uint8)
    return np.pad(m, 4)


def _render(modules: np.ndarray, px: int) -> np.ndarray:
    """Float image of the code (0 dark, 1 light), ``px`` pixels per module."""
    light = 1.0 - modules.astype(np.float32)
    return np.kron(light, np.ones((px, px), np.float32))


def _background(rng: np.random.Generator, w: int, h: int, busy: float) -> np.ndarray:
    """A room: a lighting gradient, shapes, text lines and blobs; float 0..1."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    g = (np.cos(ang) * xx / w + np.sin(ang) * yy / h)
    img = rng.uniform(0.35, 0.6) + rng.uniform(0.05, 0.25) * g
    img = img.astype(np.float32)
    for _ in range(int(rng.integers(3, 10) * busy)):
        color = float(rng.uniform(0.05, 0.95))
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        shape = rng.integers(0, 4)
        if shape == 0:
            cv2.rectangle(img, (x0, y0), (x0 + int(rng.integers(20, w // 2)),
                          y0 + int(rng.integers(20, h // 2))), color, -1)
        elif shape == 1:      # face-like blob with two eyes
            ax = int(rng.integers(30, 90))
            cv2.ellipse(img, (x0, y0), (ax, int(ax * 1.3)), 0, 0, 360, color, -1)
            for dx in (-ax // 3, ax // 3):
                cv2.circle(img, (x0 + dx, y0 - ax // 4), max(3, ax // 8), color * 0.3, -1)
        elif shape == 2:      # printed text lines (notices on the wall, a form)
            ink = np.zeros((h, w), np.uint8)   # OpenCV draws text on 8-bit images only
            for k in range(int(rng.integers(2, 7))):
                length = int(rng.integers(5, 20))
                txt = "".join(chr(int(rng.integers(65, 91))) for _ in range(length))
                cv2.putText(ink, txt, (x0, y0 + 22 * k), cv2.FONT_HERSHEY_SIMPLEX,
                            float(rng.uniform(0.4, 1.0)), 255, int(rng.integers(1, 3)), cv2.LINE_AA)
            a = ink.astype(np.float32) / 255
            img = img * (1 - a) + color * a
        else:                 # blocky pattern: a tiled floor, a keyboard, a grille
            step = int(rng.integers(6, 24))
            ww, hh = int(rng.integers(40, 200)), int(rng.integers(40, 200))
            tile = ((np.indices((hh, ww)) // step).sum(0) % 2).astype(np.float32)
            ys, xs = slice(y0, min(h, y0 + hh)), slice(x0, min(w, x0 + ww))
            img[ys, xs] = color * tile[: ys.stop - y0, : xs.stop - x0] + 0.2
    return np.clip(img, 0, 1)


def _place(frame: np.ndarray, code: np.ndarray, width_px: float, rng: np.random.Generator,
           rotate: float, tilt: float, focal_px: float, dark: float, light: float,
           card_margin: float, centre: tuple[float, float] | None = None,
           tilt_axis: float | None = None) -> np.ndarray:
    """Warp ``code`` into ``frame`` in place, as a pinhole camera sees a card; return its mask.

    ``width_px`` is the code's width face-on, ``rotate`` its angle in its own plane,
    ``tilt`` the angle between the card and the sensor plane (about an axis in a random
    direction), ``focal_px`` the focal length in frame pixels (px_per_mm * distance).
    Tilt mostly foreshortens the code (cos tilt); keystone grows with the card's size
    relative to its distance.  ``centre`` (frame pixels) and ``tilt_axis`` (radians) place
    it where a clip's motion put it instead of at random (bench/clipgen.py); a code that
    does not fit is moved inside, as in a single frame.
    """
    h, w = frame.shape
    ch, cw = code.shape
    # A white card / phone bezel around the code so the quiet zone has a realistic edge.
    pad = int(cw * card_margin)
    card = np.pad(code, pad, constant_values=1.0)
    ch, cw = card.shape
    half = width_px * (1 + 2 * card_margin) / 2
    src = np.float32([[0, 0], [cw, 0], [cw, ch], [0, ch]])
    flat = np.float32([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
    c, s = np.cos(rotate), np.sin(rotate)
    flat = flat @ np.float32([[c, s], [-s, c]])
    phi = rng.uniform(0, np.pi) if tilt_axis is None else tilt_axis
    axis = np.float32([np.cos(phi), np.sin(phi)])
    normal = np.float32([-axis[1], axis[0]])
    along, across = flat @ axis, flat @ normal
    depth = across * np.sin(tilt)
    seen = np.outer(along, axis) + np.outer(across * np.cos(tilt), normal)
    base = (seen * (focal_px / (focal_px + depth))[:, None]).astype(np.float32)
    # The code itself (with its quiet zone) must lie wholly inside the frame: a clipped
    # code is not a code the camera "holds".  The card around it may be cut off.
    inner = base * (1 / (1 + 2 * card_margin))
    scale = 2 * half / cw   # frame pixels per card pixel
    for _ in range(50):
        lo = -inner.min(axis=0) + 2
        hi = np.float32([w, h]) - inner.max(axis=0) - 2
        if np.all(hi > lo):
            break
        base *= 0.9
        inner *= 0.9
        scale *= 0.9
    if centre is None:
        centre = np.float32([rng.uniform(lo[0], hi[0]), rng.uniform(lo[1], hi[1])])
    else:
        centre = np.clip(np.float32(centre), lo, hi)
    dst = base + centre
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    # Anti-alias before shrinking, as a lens and sensor would.
    if scale < 1:
        card = cv2.GaussianBlur(card, (0, 0), sigmaX=0.45 / scale)
    warped = cv2.warpPerspective(card, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
    mask = cv2.warpPerspective(np.ones_like(card), m, (w, h), flags=cv2.INTER_LINEAR,
                               borderValue=0.0)
    shaded = dark + (light - dark) * warped
    frame[:] = frame * (1 - mask) + shaded * mask
    return mask


def _defocus(img: np.ndarray, radius: float) -> np.ndarray:
    """Blur by a uniform disk of ``radius`` pixels (a defocused lens's point spread)."""
    r = int(np.ceil(radius)) + 1
    # Area of each pixel inside the disk, from a 5x5 supersampling: a sub-pixel radius
    # still blurs a little instead of snapping to 0 or 1 pixel.
    sub = (np.arange(5) - 2) / 5
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float32)
    k = np.zeros_like(xx)
    for dy in sub:
        for dx in sub:
            k += ((xx + dx) ** 2 + (yy + dy) ** 2 <= radius * radius)
    if k.sum() == 0:
        return img
    return cv2.filter2D(img, -1, k / k.sum())


def _motion(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    n = max(3, int(length) | 1)
    k = np.zeros((n, n), np.float32)
    k[n // 2, :] = 1
    rot = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), np.degrees(angle), 1.0)
    k = cv2.warpAffine(k, rot, (n, n))
    return cv2.filter2D(img, -1, k / max(k.sum(), 1e-6))


def to_bytes(img: np.ndarray) -> np.ndarray:
    """A 0..1 float image as the 8-bit luma a camera sends."""
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


def _finish(img: np.ndarray, rng: np.random.Generator, noise: float,
            jpeg: int | None) -> np.ndarray:
    img = img + rng.normal(0, noise, img.shape).astype(np.float32)
    out = to_bytes(img)
    if jpeg is not None:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, jpeg])
        out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out


# --- Optics: what the kiosk's camera makes of a code (docs/decoding.md, "The frame set") ---
# Raspberry Pi Camera Module 2 (Sony IMX219): 3280x2464 pixels of 1.12 um, f = 3.04 mm,
# f/2.0, 62.2 degrees across.  Fixed focus, set at the factory for about 1 m to infinity;
# the lens can be turned with the focus tool that comes with the module.
SENSOR_PX = 3280
PIXEL_MM = 0.00112
FOCAL_MM = 3.04
APERTURE_MM = FOCAL_MM / 2.0
FACTORY_FOCUS_MM = 2000.0
# The kiosk's lens refocused to where citizens hold codes (see docs/decoding.md).
KIOSK_FOCUS_MM = 250.0


@dataclass(frozen=True)
class Optics:
    """A camera module's lens and sensor, as its datasheet gives them."""

    sensor_px: int      # sensor pixels across the 4:3 field the lores frame is made from
    pixel_mm: float
    focal_mm: float
    f_number: float

    @property
    def aperture_mm(self) -> float:
        return self.focal_mm / self.f_number


MODULE2 = Optics(SENSOR_PX, PIXEL_MM, FOCAL_MM, 2.0)
# Camera Module 3 (Sony IMX708, Raspberry Pi's camera documentation): 4608x2592 pixels of
# 1.4 um, f = 4.74 mm, f/1.8, 66 degrees across, phase-detect autofocus from 10 cm.  A 4:3
# frame keeps the middle 3456 pixels of its 16:9 sensor.
MODULE3 = Optics(3456, 0.0014, 4.74, 1.8)


def px_per_mm(distance_mm: float, frame_w: int, zoom: float = 1.0,
              optics: Optics = MODULE2) -> float:
    """Frame pixels per millimetre of an object ``distance_mm`` from the lens.

    ``zoom`` > 1 is a centre crop of the sensor (picamera2 ``ScalerCrop``) scaled to the
    frame: the same frame size over a smaller field.
    """
    field_mm = distance_mm * optics.sensor_px * optics.pixel_mm / optics.focal_mm
    return frame_w * zoom / field_mm


def blur_diameter_px(distance_mm: float, focus_mm: float, frame_w: int,
                     zoom: float = 1.0, optics: Optics = MODULE2) -> float:
    """Diameter in frame pixels of the defocus disk of a point at ``distance_mm``.

    Thin lens: the disk is APERTURE * |focus - d| / focus in object space (about 1.5 mm
    for anything close to a Module 2 lens focused far away), seen at px_per_mm(d).
    """
    object_mm = optics.aperture_mm * abs(focus_mm - distance_mm) / focus_mm
    return object_mm * px_per_mm(distance_mm, frame_w, zoom, optics)


# Frame pixels per sensor pixel is at most 1/1.28 in these frames: demosaicing, the lens's
# diffraction (f/2) and the ISP's scaler blur a sharp edge by about 0.7 sensor pixel.
_SYSTEM_SIGMA_SENSOR_PX = 0.7

_KINDS_FOR = {
    "small_dense": ("cccd", "cccd", "cccd", "short_vi", "pc_covid"),
    "close_defocus": ("cccd", "cccd", "short_vi", "pc_covid", "bhyt"),
    "phone_screen": ("hc1", "hc1", "pc_covid", "short_vi", "venue"),
    "faded_paper": ("cccd", "bhyt", "hc1", "short_vi", "venue"),
    "motion_blur": ("cccd", "pc_covid", "hc1", "short_vi", "venue"),
    "noise_jpeg": ("cccd", "hc1", "pc_covid", "short_vi", "bhyt"),
    "tilt_rotate": ("cccd", "hc1", "pc_covid", "short_vi", "venue"),
}

# Physical set-up of each category: printed/shown symbol width in mm (without quiet
# zone), distance from the lens in mm, and the focus distance of the lens.  Everything
# in pixels follows from these through the optics above.
_SETUP = {
    #                 symbol mm       distance mm     focus mm
    "small_dense": ((11.0, 11.0), (200.0, 300.0), KIOSK_FOCUS_MM),
    "close_defocus": ((30.0, 75.0), (120.0, 250.0), FACTORY_FOCUS_MM),
    "phone_screen": ((45.0, 65.0), (100.0, 200.0), KIOSK_FOCUS_MM),
    "faded_paper": ((30.0, 70.0), (150.0, 300.0), KIOSK_FOCUS_MM),
    "motion_blur": ((30.0, 60.0), (120.0, 260.0), KIOSK_FOCUS_MM),
    "noise_jpeg": ((30.0, 60.0), (120.0, 260.0), KIOSK_FOCUS_MM),
    "tilt_rotate": ((30.0, 60.0), (120.0, 260.0), KIOSK_FOCUS_MM),
}
# The 11 mm code of a 2024 CCCD is read through a centre window of the sensor at its
# native resolution (picamera2 ScalerCrop, one sensor pixel a frame pixel): a 59 x 44 mm
# field at 25 cm for 640x480.  Over the full field it would be 0.4-0.6 px a module.
_NATIVE = {"small_dense"}


# Complexity over 10 on purpose: one branch per category, and the random draws must keep
# their order (the same arguments always give the same pixels).
def make_frame(category: str, index: int, seed: int = 0) -> Frame:  # noqa: C901
    """Frame ``index`` of ``category``; the same arguments always give the same pixels."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; choose one of {CATEGORIES}")
    key = f"{seed}:{category}:{index}"
    prng = random.Random(key)
    rng = np.random.default_rng(list(key.encode()))
    w, h = SIZES[0] if prng.random() < 0.65 else SIZES[1]
    # The 640x480 lores Y plane is raw; a 1280x720 USB webcam sends MJPEG.
    webcam = w == SIZES[1][0]
    frame = _background(rng, w, h, busy=1.0 if category == "no_code" else 0.6)
    if category == "no_code":
        if prng.random() < 0.5:
            frame = _defocus(frame, rng.uniform(0, 3))
        jpeg = int(rng.integers(40, 90)) if webcam else None
        return Frame(category, index, _finish(frame, rng, rng.uniform(0.005, 0.04), jpeg),
                     None, "")

    kind = prng.choice(_KINDS_FOR[category])
    payload = make_payload(prng, kind)
    modules = _modules(payload, prng)
    n = modules.shape[0]
    symbol = n - 8
    code = _render(modules, 8)
    (mm_lo, mm_hi), (d_lo, d_hi), focus = _SETUP[category]
    zoom = SENSOR_PX / w if category in _NATIVE else 1.0
    size_mm = rng.uniform(mm_lo, mm_hi)
    distance = rng.uniform(d_lo, d_hi)
    ppm = px_per_mm(distance, w, zoom)
    width = ppm * size_mm * n / symbol            # with the quiet zone
    defocus = blur_diameter_px(distance, focus, w, zoom) / 2
    system = _SYSTEM_SIGMA_SENSOR_PX * w * zoom / SENSOR_PX
    rotate = rng.normal(0, 0.12)
    tilt = min(abs(rng.normal(0, np.radians(15))), np.radians(60))
    dark, light = rng.uniform(0.05, 0.15), rng.uniform(0.75, 0.95)
    # Noise per sensor pixel after the ISP's denoiser, as a fraction of full scale.
    noise = rng.uniform(0.01, 0.04)
    jpeg = int(rng.integers(60, 95)) if webcam else None
    margin = 0.15
    post: list = []
    if category == "phone_screen":
        dark, light = rng.uniform(0.1, 0.3), rng.uniform(0.7, 1.0)
        margin = 0.3
        # Screen pixels beat with sensor pixels: a period of a few frame pixels.
        period = rng.uniform(2.2, 4.5)
        ang = rng.uniform(0, np.pi)
        depth = rng.uniform(0.1, 0.35)
        gx, gy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
        gr = rng.uniform(0.08, 0.25) * w
        gamma = rng.uniform(0.5, 1.8)
        gain = rng.uniform(0.5, 1.2)

        def screen(im: np.ndarray) -> np.ndarray:
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            phase = 2 * np.pi * (np.cos(ang) * xx + np.sin(ang) * yy) / period
            moire = 1 - depth * (0.5 + 0.5 * np.cos(phase))
            glare = gain * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * gr * gr))
            return np.clip(im * moire, 0, 1) ** gamma + glare

        post.append(screen)
    elif category == "faded_paper":
        mid = rng.uniform(0.45, 0.7)
        span = rng.uniform(0.1, 0.3)
        dark, light = mid - span / 2, mid + span / 2
        shade = rng.uniform(0.2, 0.5)
        ang = rng.uniform(0, 2 * np.pi)

        def uneven(im: np.ndarray) -> np.ndarray:
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            ramp = 0.5 + 0.5 * np.cos(ang) * xx / w + 0.5 * np.sin(ang) * yy / h
            return im * (1 - shade * ramp)

        post.append(uneven)
        noise = rng.uniform(0.02, 0.05)
    elif category == "motion_blur":
        # A hand moving 30-145 mm/s during a 1/60 s indoor exposure: 0.5-2.4 mm of travel.
        length = rng.uniform(0.5, 2.4) * ppm
        ang = rng.uniform(0, np.pi)
        post.append(lambda im: _motion(im, length, ang))
    elif category == "noise_jpeg":
        # Dim entrance: high analogue gain, and a webcam's MJPEG at low quality.
        noise = rng.uniform(0.08, 0.25)
        jpeg = int(rng.integers(25, 60)) if webcam or prng.random() < 0.5 else None
    elif category == "tilt_rotate":
        # A card held at 30-60 degrees to the lens, any way up.
        rotate = rng.uniform(-np.pi, np.pi)
        tilt = np.radians(rng.uniform(30, 60))
    width = min(width, 0.95 * h)
    _place(frame, code, width, rng, rotate, tilt, ppm * distance, dark, light, margin)
    for f in post:
        frame = f(frame)
    if defocus > 0.3:
        frame = _defocus(frame, defocus)
    frame = cv2.GaussianBlur(frame, (0, 0), system)
    # Binning and the ISP's scaler average k x k sensor pixels into one frame pixel, so
    # white sensor noise drops by k.
    k = SENSOR_PX / (w * zoom)
    return Frame(category, index, _finish(frame, rng, noise / k, jpeg), payload, kind,
                 {"px_per_module": round(width / n, 2), "defocus_radius_px": round(defocus, 2),
                  "distance_mm": round(distance), "symbol_mm": round(size_mm, 1),
                  "modules": symbol})


def frames(per_category: int, seed: int = 0,
           categories: tuple[str, ...] = CATEGORIES) -> Iterator[Frame]:
    """``per_category`` frames of each category, category by category."""
    for category in categories:
        for i in range(per_category):
            yield make_frame(category, i, seed)


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.framegen OUTDIR [PER_CATEGORY]``: write frames to look at."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m bench.framegen",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="folder for the PNG frames (created)")
    parser.add_argument("per_category", type=int, nargs="?", default=3,
                        help="frames of each category (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    for fr in frames(args.per_category, args.seed):
        cv2.imwrite(str(args.outdir / f"{fr.category}-{fr.index:03d}.png"), fr.image)


if __name__ == "__main__":
    main()
