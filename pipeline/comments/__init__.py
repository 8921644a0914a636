"""Audience feedback: viewer comments (pasted, exported, or screenshots) -> a `FeedbackReport`
with sentiment, themes, questions, requests and three ideas for the next video."""

from pipeline.comments.analyze import analyze_comments
from pipeline.comments.model import (
    Comment,
    CommentResult,
    CommentsError,
    FeedbackReport,
    Idea,
    Ranked,
    Theme,
    load_report,
    save_report,
)

__all__ = [
    "Comment",
    "CommentResult",
    "CommentsError",
    "FeedbackReport",
    "Idea",
    "Ranked",
    "Theme",
    "analyze_comments",
    "load_report",
    "save_report",
]
