"""Grouping lives in posedata.grouping (pure NumPy: the decode half of the channel layout that
posedata.targets encodes); re-exported here for the trainer's callers."""
from posedata.grouping import (
    GroupingParams,
    extract_peaks,
    group,
    match_greedy,
    reference_tables,
    reference_text,
    score_candidates,
)

__all__ = ["GroupingParams", "extract_peaks", "group", "match_greedy", "reference_tables", "reference_text",
           "score_candidates"]
