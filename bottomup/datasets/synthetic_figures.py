"""Articulated human figures for the synthetic dataset: a 3-D kinematic skeleton, drawn with PIL.

Why 3-D: a figure turned sideways must show foreshortened shoulders, hide its far eye and ear and
put its far arm behind its torso. Posing the skeleton in a body frame and projecting it
orthographically gives all of that from one yaw angle instead of special cases per view.

Body frame (right-handed): X = the person's left, Y = up, Z = the direction the person faces.
Camera frame: x = image right, y = up, z = towards the viewer, so yaw 0 faces the camera and a
larger z is nearer. Lengths are in "head units" (adults are 6-8 heads tall) until projection.

A figure yields 19 named points (``POINTS``): the 17 COCO joints plus ``head`` (top of the head)
and ``neck``, so both the COCO (17) and the CrowdPose (14) layouts are subsets of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

from bottomup.keypoints import COCO

# Every point a figure carries: COCO's 17 joints plus CrowdPose's head top and neck.
POINTS = COCO.joint_names + ("head", "neck")
INDEX = {name: i for i, name in enumerate(POINTS)}
SIDES = (("left", 1.0), ("right", -1.0))  # the person's left is +X in the body frame

# Joint limits in radians, per pose style: (low, high) of a uniform draw. Flexion is forward for
# shoulders and hips, elbows bend forward, knees backward; abduction is away from the midline.
STYLES = {
    "stand": {
        "shoulder_flex": (-0.3, 0.5),
        "shoulder_abd": (0.05, 0.5),
        "elbow": (0.0, 0.9),
        "hip_flex": (-0.15, 0.25),
        "hip_abd": (-0.05, 0.25),
        "knee": (0.0, 0.3),
    },
    "walk": {
        "shoulder_flex": (-0.7, 0.7),
        "shoulder_abd": (0.05, 0.35),
        "elbow": (0.2, 1.4),
        "hip_flex": (-0.5, 0.7),
        "hip_abd": (-0.05, 0.15),
        "knee": (0.0, 1.2),
    },
    "action": {
        "shoulder_flex": (-0.8, 2.9),
        "shoulder_abd": (0.0, 2.7),
        "elbow": (0.0, 2.4),
        "hip_flex": (-0.5, 1.6),
        "hip_abd": (-0.15, 0.9),
        "knee": (0.0, 2.2),
    },
    "crouch": {
        "shoulder_flex": (-0.3, 1.6),
        "shoulder_abd": (0.0, 0.8),
        "elbow": (0.2, 2.2),
        "hip_flex": (1.2, 2.0),
        "hip_abd": (0.0, 0.5),
        "knee": (1.4, 2.4),
    },
}
STYLE_NAMES = tuple(STYLES)
STYLE_WEIGHTS = (0.35, 0.3, 0.25, 0.1)

SKIN_TONES = (
    (255, 224, 196),
    (241, 194, 160),
    (224, 172, 130),
    (198, 134, 96),
    (160, 102, 66),
    (120, 76, 48),
    (86, 54, 36),
)
HAIR_COLORS = ((20, 16, 14), (60, 40, 25), (110, 75, 40), (180, 140, 80), (140, 140, 140))


def _rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


DOWN = np.array([0.0, -1.0, 0.0])


@dataclass(frozen=True)
class Proportions:
    """Segment lengths and half-thicknesses in head units, varied per person."""

    torso: float
    shoulder_half: float
    hip_half: float
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    neck_to_top: float
    foot: float
    build: float  # thickness multiplier: slim 0.8 .. broad 1.3

    @staticmethod
    def sample(rng: np.random.Generator) -> Proportions:
        j = rng.uniform(0.9, 1.1, 9)
        return Proportions(
            torso=2.7 * j[0],
            shoulder_half=0.95 * j[1],
            hip_half=0.62 * j[2],
            upper_arm=1.45 * j[3],
            forearm=1.25 * j[4],
            thigh=1.95 * j[5],
            shin=1.85 * j[6],
            neck_to_top=1.3 * j[7],
            foot=0.75 * j[8],
            build=float(rng.uniform(0.8, 1.3)),
        )


@dataclass
class Figure:
    """A posed figure in image pixels.

    points:   (19, 2) image x, y of ``POINTS``.
    labelled: (19,) bool; False for face points turned away from the camera (COCO annotators
              leave those unlabelled).
    parts:    drawing primitives, far to near: (kind, geometry, width, colour key).
    """

    points: np.ndarray
    labelled: np.ndarray
    parts: list[tuple[str, tuple, float, str]]
    colors: dict[str, tuple[int, int, int]]
    height: float


def _sample_angles(rng: np.random.Generator, style: str) -> dict[str, dict[str, float]]:
    limits = STYLES[style]
    angles = {side: {k: float(rng.uniform(*v)) for k, v in limits.items()} for side, _ in SIDES}
    if style == "walk":  # arms swing against the legs
        swing = float(rng.uniform(0.2, 0.6))
        angles["left"]["hip_flex"], angles["right"]["hip_flex"] = swing, -swing
        angles["left"]["shoulder_flex"], angles["right"]["shoulder_flex"] = -swing, swing
    return angles


def _colors(rng: np.random.Generator) -> dict[str, tuple[int, int, int]]:
    skin = np.array(SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]) + rng.integers(-12, 13, 3)
    colors = {
        "skin": skin,
        "hair": np.array(HAIR_COLORS[int(rng.integers(len(HAIR_COLORS)))]),
        "shirt": rng.integers(0, 256, 3),
        "pants": rng.integers(0, 200, 3),
        "shoes": rng.integers(0, 120, 3),
        "eyes": np.array([25, 20, 20]),
    }
    colors["sleeve"] = colors["shirt"] if rng.random() < 0.6 else colors["skin"]  # long sleeves?
    colors["shin"] = colors["pants"] if rng.random() < 0.75 else colors["skin"]  # shorts?
    return {k: tuple(min(255, max(0, int(c))) for c in v) for k, v in colors.items()}


def _limb_chain(root_frame, origin, flex, abd, twist, bend, sign, lengths):
    """Two segments from ``origin``: returns (mid joint, end joint, frame of the lower segment).

    The upper segment starts pointing down, is abducted about the frame's forward axis and flexed
    about its left axis; ``bend`` rotates the lower segment about the upper segment's left axis
    (positive: forward, as an elbow; negative: backward, as a knee)."""
    upper_frame = root_frame @ _rx(-flex) @ _rz(sign * abd) @ _ry(-sign * twist)
    mid = origin + upper_frame @ DOWN * lengths[0]
    lower_frame = upper_frame @ _rx(-bend)
    end = mid + lower_frame @ DOWN * lengths[1]
    return mid, end, lower_frame


def pose_figure(
    rng: np.random.Generator, anchor: tuple[float, float], height: float, max_yaw: float = 180.0
) -> Figure:
    """A random figure about ``height`` pixels tall when upright, pelvis at ``anchor``, turned
    at most ``max_yaw`` degrees away from facing the viewer."""
    prop = Proportions.sample(rng)
    standing = prop.thigh + prop.shin + prop.torso + prop.neck_to_top
    scale = height / standing  # pixels per head unit
    style = STYLE_NAMES[int(rng.choice(len(STYLE_NAMES), p=STYLE_WEIGHTS))]
    angles = _sample_angles(rng, style)
    yaw = float(rng.uniform(-1.0, 1.0)) * math.pi * max_yaw / 180.0
    roll = float(np.clip(rng.normal(0.0, 0.12), -0.4, 0.4))  # whole-body tilt in the image

    pitch = float(rng.uniform(-0.1, 0.35 if style != "crouch" else 0.7))
    side_bend = float(rng.normal(0.0, 0.08))
    torso_frame = _rz(side_bend) @ _rx(-pitch)  # pitch > 0 leans forward (towards +Z)
    chest_frame = torso_frame @ _ry(float(rng.normal(0.0, 0.2)))  # shoulders twist vs hips
    head_frame = (
        chest_frame
        @ _ry(float(rng.uniform(-0.9, 0.9)))
        @ _rx(float(rng.uniform(-0.35, 0.3)))
        @ _rz(float(rng.normal(0.0, 0.12)))
    )
    up = chest_frame[:, 1]
    left = chest_frame[:, 0]

    p3 = np.zeros((len(POINTS), 3))
    neck = torso_frame @ np.array([0.0, prop.torso, 0.0])
    p3[INDEX["neck"]] = neck
    p3[INDEX["head"]] = neck + head_frame[:, 1] * prop.neck_to_top
    head_center = neck + head_frame[:, 1] * prop.neck_to_top * 0.58
    hx, hy, hz = head_frame[:, 0], head_frame[:, 1], head_frame[:, 2]
    p3[INDEX["nose"]] = head_center + hz * 0.5 - hy * 0.08
    feet = {}
    for side, sign in SIDES:
        a = angles[side]
        shoulder = neck + left * sign * prop.shoulder_half - up * 0.3
        elbow, wrist, _ = _limb_chain(
            chest_frame,
            shoulder,
            a["shoulder_flex"],
            a["shoulder_abd"],
            float(rng.uniform(-0.4, 1.2)),
            a["elbow"],
            sign,
            (prop.upper_arm, prop.forearm),
        )
        hip = np.array([sign * prop.hip_half, 0.0, 0.0])
        knee, ankle, shin_frame = _limb_chain(
            np.eye(3),
            hip,
            a["hip_flex"],
            a["hip_abd"],
            float(rng.uniform(-0.2, 0.5)),
            -a["knee"],
            sign,
            (prop.thigh, prop.shin),
        )
        feet[side] = ankle + shin_frame @ np.array([0.0, 0.0, prop.foot])
        for part, value in (
            ("shoulder", shoulder),
            ("elbow", elbow),
            ("wrist", wrist),
            ("hip", hip),
            ("knee", knee),
            ("ankle", ankle),
        ):
            p3[INDEX[f"{side}_{part}"]] = value
        p3[INDEX[f"{side}_eye"]] = head_center + hz * 0.42 + hx * sign * 0.2 + hy * 0.1
        p3[INDEX[f"{side}_ear"]] = head_center + hx * sign * 0.5 - hz * 0.05

    view = _rz(roll) @ _ry(yaw)  # body frame -> camera frame
    cam = p3 @ view.T
    labelled = np.ones(len(POINTS), dtype=bool)
    facing = (view @ hz)[2]  # > 0: the face turns towards the viewer
    for name in ("nose", "left_eye", "right_eye"):
        labelled[INDEX[name]] = facing > -0.15
    for side, sign in SIDES:
        eye_normal = view @ (hz * 0.8 + hx * sign * 0.6)
        labelled[INDEX[f"{side}_eye"]] &= eye_normal[2] > -0.15
        labelled[INDEX[f"{side}_ear"]] = (view @ (hx * sign))[2] > -0.4

    center = np.asarray(anchor, dtype=float)

    def to_image(v: np.ndarray) -> np.ndarray:
        v = np.atleast_2d(v)
        return np.stack([center[0] + scale * v[:, 0], center[1] - scale * v[:, 1]], axis=1)

    points = to_image(cam)
    depth = cam[:, 2]
    parts = _parts(p3, depth, points, feet, view, to_image, torso_frame, chest_frame, prop, scale)
    parts.append(_head_part(view, head_center, hz, to_image, scale, prop, labelled, points))
    return Figure(points, labelled, parts, _colors(rng), height)


def _parts(p3, depth, points, feet, view, to_image, torso_frame, chest_frame, prop, scale):
    """Limbs and torso as (depth, primitive) sorted far to near (painter's order)."""
    w = prop.build * scale
    items = []

    def seg(a: str, b: str, width: float, color: str, bias: float = 0.1):
        d = (depth[INDEX[a]] + depth[INDEX[b]]) / 2 + bias
        ends = (tuple(points[INDEX[a]]), tuple(points[INDEX[b]]))
        items.append((d, ("line", ends, width, color)))

    for side, _ in SIDES:
        seg(f"{side}_hip", f"{side}_knee", 0.8 * w, "pants", 0.0)
        seg(f"{side}_knee", f"{side}_ankle", 0.6 * w, "shin", 0.0)
        ankle = points[INDEX[f"{side}_ankle"]]
        foot = to_image(feet[side] @ view.T)[0]
        d = depth[INDEX[f"{side}_ankle"]] + 0.05
        items.append((d, ("line", (tuple(ankle), tuple(foot)), 0.45 * w, "shoes")))
        seg(f"{side}_shoulder", f"{side}_elbow", 0.55 * w, "sleeve")
        seg(f"{side}_elbow", f"{side}_wrist", 0.45 * w, "skin")
        wrist = points[INDEX[f"{side}_wrist"]]
        items.append(
            (depth[INDEX[f"{side}_wrist"]] + 0.12, ("dot", (tuple(wrist),), 0.28 * w, "skin"))
        )
    # Torso: a box between shoulders and hips, thick along the body's forward axis.
    half_depth = 0.4 * prop.build
    corners = []
    for name, frame in (
        ("left_shoulder", chest_frame),
        ("right_shoulder", chest_frame),
        ("left_hip", torso_frame),
        ("right_hip", torso_frame),
    ):
        for s in (-1.0, 1.0):
            corners.append(p3[INDEX[name]] + frame[:, 2] * s * half_depth)
    hull = _convex_hull(to_image(np.array(corners) @ view.T))
    torso_depth = float(
        depth[
            [INDEX["left_shoulder"], INDEX["right_shoulder"], INDEX["left_hip"], INDEX["right_hip"]]
        ].mean()
    )
    items.append((torso_depth, ("poly", tuple(map(tuple, hull)), 0.0, "shirt")))
    items.append(
        (
            torso_depth + 0.01,
            (
                "line",
                (tuple(points[INDEX["left_hip"]]), tuple(points[INDEX["right_hip"]])),
                0.8 * w,
                "pants",
            ),
        )
    )
    neck = points[INDEX["neck"]]
    throat = (neck + points[INDEX["head"]]) / 2
    items.append((torso_depth + 0.02, ("line", (tuple(neck), tuple(throat)), 0.45 * w, "skin")))
    items.sort(key=lambda item: item[0])
    return [part for _, part in items]


def _head_part(view, head_center, hz, to_image, scale, prop, labelled, points):
    """Head drawn last: hair ellipse, then the face shifted towards where the head looks."""
    center = to_image(head_center @ view.T)[0]
    face_dir = (view @ hz)[:2] * np.array([1.0, -1.0])  # image direction of the face
    eyes = tuple(
        tuple(points[INDEX[n]]) if labelled[INDEX[n]] else None for n in ("left_eye", "right_eye")
    )
    facing = float((view @ hz)[2])
    return (
        "head",
        (tuple(center), tuple(face_dir), eyes, facing),
        0.5 * scale * prop.build**0.3,
        "skin",
    )


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Andrew's monotone chain on a handful of 2-D points."""
    pts = sorted(map(tuple, points))

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def draw_figure(draw: ImageDraw.ImageDraw, figure: Figure, fill: int | None = None) -> None:
    """Paint the figure far to near, or its silhouette in ``fill`` on a mask."""

    def color(key: str):
        return fill if fill is not None else figure.colors[key]

    for kind, geometry, width, key in figure.parts:
        if kind == "line":
            (x0, y0), (x1, y1) = geometry
            r = max(width / 2, 0.75)
            draw.line(geometry, fill=color(key), width=max(1, int(round(width))))
            draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=color(key))  # round caps
            draw.ellipse([x1 - r, y1 - r, x1 + r, y1 + r], fill=color(key))
        elif kind == "dot":
            ((x, y),) = geometry
            r = max(width, 0.75)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=color(key))
        elif kind == "poly":
            draw.polygon(geometry, fill=color(key))
        else:
            _draw_head(draw, geometry, width, color, fill is None)


def _draw_head(draw, geometry, radius, color, details: bool) -> None:
    (cx, cy), (fx, fy), eyes, facing = geometry
    rx, ry = radius, radius * 1.18
    draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=color("hair"))
    if facing > -0.3:  # the face shows: a skin oval shifted towards the gaze, below the hairline
        ox, oy = cx + fx * rx * 0.25, cy + fy * ry * 0.25 + ry * 0.12
        draw.ellipse(
            [ox - rx * 0.88, oy - ry * 0.85, ox + rx * 0.88, oy + ry * 0.85], fill=color("skin")
        )
    if details:
        e = max(0.6, radius * 0.12)
        for eye in eyes:
            if eye is not None:
                draw.ellipse([eye[0] - e, eye[1] - e, eye[0] + e, eye[1] + e], fill=color("eyes"))
