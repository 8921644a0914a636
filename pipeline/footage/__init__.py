"""Footage understanding: shots, scored keyframes, subject-aware crops, matching and summaries.

The public surface other stages use; heavy work happens in the submodules.
"""

from pipeline.footage.analyze import analyze
from pipeline.footage.match import assign_shots, rank_shots
from pipeline.footage.model import ASPECTS, Analysis, Crop, FileAnalysis, ScoreParts, Shot

__all__ = [
    "ASPECTS",
    "Analysis",
    "Crop",
    "FileAnalysis",
    "ScoreParts",
    "Shot",
    "analyze",
    "assign_shots",
    "rank_shots",
]
