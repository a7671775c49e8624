"""posedata: one skeleton file from annotated keypoints to a trained bottom-up pose model."""

__version__ = "0.1.0"
