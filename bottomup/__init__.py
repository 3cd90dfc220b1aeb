"""Bottom-up multi-person pose machinery shared by every other package.

Joint layouts, datasets (real COCO / CrowdPose layouts and the embedded synthetic default),
augmentation, target encoding and prediction decoding (one codec), and losses. Nothing here knows
about architectures or search: data flows from here into models and evaluators, never back.
"""
