"""Articulated stick-and-limb human figures: a kinematic skeleton with joint limits, drawn with PIL.

A figure is posed from a few angles (torso lean, shoulder / elbow / hip / knee angles within
human-like limits), proportions that vary per person, and a facing (front, back, left or right
profile) that decides which face points are visible and which side is the person's left. It
yields 19 named points from which both the COCO (17) and the CrowdPose (14) layouts are taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

POINTS = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "head",
    "neck",
)
INDEX = {name: i for i, name in enumerate(POINTS)}
FACINGS = ("front", "back", "left", "right")


@dataclass
class Figure:
    """A posed figure in image pixels. ``points``: (19, 2); ``labelled``: (19,) bool (face
    points hidden by the facing are not labelled); plus what drawing needs."""

    points: np.ndarray
    labelled: np.ndarray
    head_radius: float
    limb_width: float
    colors: dict[str, tuple[int, int, int]]
    facing: str


def _rot(angle: float) -> np.ndarray:
    return np.array([math.sin(angle), math.cos(angle)])  # angle 0 points down the image


def pose_figure(rng: np.random.Generator, center: tuple[float, float], height: float) -> Figure:
    """A random figure whose standing height is about ``height`` pixels, hips at ``center``."""
    s = height / 7.5  # a "head unit": adults are about 7.5 heads tall
    facing = FACINGS[int(rng.integers(4))]
    lean = rng.normal(0, 0.15)
    torso = s * rng.uniform(2.4, 2.9)
    shoulder_half = s * rng.uniform(0.8, 1.05) * (0.45 if facing in ("left", "right") else 1.0)
    hip_half = shoulder_half * rng.uniform(0.6, 0.8)
    upper_arm, forearm = s * rng.uniform(1.3, 1.6), s * rng.uniform(1.1, 1.4)
    thigh, shin = s * rng.uniform(1.7, 2.0), s * rng.uniform(1.6, 1.9)

    pelvis = np.array(center, dtype=float)
    up = -_rot(lean)  # from pelvis to neck
    side = np.array([up[1], -up[0]])  # image-right when upright
    neck = pelvis + up * torso
    head = neck + up * s * 1.4
    # The person's left is on the image right when facing the camera.
    left_sign = {"front": 1.0, "back": -1.0, "left": 1.0, "right": -1.0}[facing]
    pts = np.zeros((len(POINTS), 2))
    pts[INDEX["neck"]], pts[INDEX["head"]] = neck, head
    for sign, name in ((left_sign, "left"), (-left_sign, "right")):
        shoulder = neck + side * sign * shoulder_half - up * s * 0.25
        hip = pelvis + side * sign * hip_half
        # Arms: shoulder abduction 0-150 degrees outwards, elbow flexion 0-150 degrees.
        arm_angle = lean + sign * rng.uniform(-0.3, 2.6)
        elbow = shoulder + _rot(arm_angle) * upper_arm
        wrist = elbow + _rot(arm_angle + sign * rng.uniform(-2.6, 0.2)) * forearm
        # Legs: hip flexion -0.3-1.4 rad, knee flexion 0-2 rad (backwards).
        leg_angle = lean + sign * rng.uniform(-0.15, 0.5) + rng.uniform(-0.3, 0.3)
        knee = hip + _rot(leg_angle) * thigh
        ankle = knee + _rot(leg_angle - sign * rng.uniform(0.0, 0.6) * rng.choice([-1, 1])) * shin
        for part, value in (
            ("shoulder", shoulder),
            ("elbow", elbow),
            ("wrist", wrist),
            ("hip", hip),
            ("knee", knee),
            ("ankle", ankle),
        ):
            pts[INDEX[f"{name}_{part}"]] = value
    face_center = neck + up * s * 0.9
    forward = {"front": 0.0, "back": 0.0, "left": -1.0, "right": 1.0}[facing]
    pts[INDEX["nose"]] = face_center + side * forward * s * 0.45 - up * s * 0.05
    for sign, name in ((left_sign, "left"), (-left_sign, "right")):
        pts[INDEX[f"{name}_eye"]] = (
            face_center + side * (sign * s * 0.2 + forward * s * 0.3) + up * s * 0.15
        )
        pts[INDEX[f"{name}_ear"]] = face_center + side * (sign * s * 0.42 - forward * s * 0.1)
    labelled = np.ones(len(POINTS), dtype=bool)
    if facing == "back":
        labelled[[INDEX["nose"], INDEX["left_eye"], INDEX["right_eye"]]] = False
    elif facing in ("left", "right"):
        far = "right" if (facing == "left") == (left_sign > 0) else "left"
        labelled[[INDEX[f"{far}_eye"], INDEX[f"{far}_ear"]]] = False
    colors = {
        "skin": tuple(int(c) for c in rng.integers(90, 256, 3)),
        "shirt": tuple(int(c) for c in rng.integers(0, 256, 3)),
        "pants": tuple(int(c) for c in rng.integers(0, 256, 3)),
    }
    return Figure(pts, labelled, s * 0.55, max(2.0, s * rng.uniform(0.35, 0.5)), colors, facing)


LIMBS = (
    ("left_hip", "left_knee", "pants"),
    ("left_knee", "left_ankle", "pants"),
    ("right_hip", "right_knee", "pants"),
    ("right_knee", "right_ankle", "pants"),
    ("left_shoulder", "left_elbow", "shirt"),
    ("left_elbow", "left_wrist", "skin"),
    ("right_shoulder", "right_elbow", "shirt"),
    ("right_elbow", "right_wrist", "skin"),
)


def draw_figure(draw: ImageDraw.ImageDraw, figure: Figure, fill: int | None = None) -> None:
    """Paint the figure (or its silhouette in ``fill`` on a mask)."""
    p = {name: tuple(figure.points[INDEX[name]]) for name in POINTS}

    def color(part: str):
        return fill if fill is not None else figure.colors[part]

    width = int(round(figure.limb_width))
    torso = [p["left_shoulder"], p["right_shoulder"], p["right_hip"], p["left_hip"]]
    for a, b, part in LIMBS[:4]:
        draw.line([p[a], p[b]], fill=color(part), width=width, joint="curve")
    draw.polygon(torso, fill=color("shirt"))
    draw.line([p["left_hip"], p["right_hip"]], fill=color("pants"), width=width)
    draw.line([p["neck"], p["head"]], fill=color("skin"), width=max(1, width // 2))
    for a, b, part in LIMBS[4:]:
        draw.line([p[a], p[b]], fill=color(part), width=max(1, int(width * 0.8)), joint="curve")
    r = figure.head_radius
    neck, top = np.asarray(p["neck"]), np.asarray(p["head"])
    hx, hy = neck + (top - neck) * 0.6  # the ellipse's top reaches the head point
    draw.ellipse([hx - r, hy - r * 1.15, hx + r, hy + r * 1.15], fill=color("skin"))
    if fill is None:
        eye = (30, 30, 30)
        for name in ("left_eye", "right_eye"):
            if figure.labelled[INDEX[name]]:
                x, y = p[name]
                e = max(1.0, r * 0.12)
                draw.ellipse([x - e, y - e, x + e, y + e], fill=eye)
