"""The report in a few lines of text, in its language: for the CLI and the bot."""

from __future__ import annotations

from pipeline.comments.model import FeedbackReport

_W = {
    "zh": {
        "head": "📊 分析了 {n} 条评论：正面 {pos:.0%} · 中性 {neu:.0%} · 负面 {neg:.0%}",
        "weighted": "（按点赞加权）",
        "themes": "🗂 主要话题",
        "questions": "❓ 大家在问",
        "requests": "🙋 想看的内容",
        "praise": "👍 喜欢的",
        "criticism": "👎 不满意的",
        "ideas": "💡 下一期视频的点子",
        "style": "风格",
        "why": "回应",
        "times": "×{n}",
    },
    "en": {
        "head": "📊 {n} comments: positive {pos:.0%} · neutral {neu:.0%} · negative {neg:.0%}",
        "weighted": " (weighted by likes)",
        "themes": "🗂 Top themes",
        "questions": "❓ Most asked",
        "requests": "🙋 Requests",
        "praise": "👍 Praised",
        "criticism": "👎 Criticised",
        "ideas": "💡 Ideas for the next video",
        "style": "style",
        "why": "answers",
        "times": "×{n}",
    },
}


def summary_text(report: FeedbackReport, *, ideas: bool = True, per_list: int = 3) -> str:
    """A short report: the shares, top themes, the ranked lists, and (optionally) the ideas."""
    w = _W[report.language]
    s = report.shares
    lines = [
        w["head"].format(n=report.counted, pos=s["positive"], neu=s["neutral"], neg=s["negative"])
        + (w["weighted"] if report.weighted else "")
    ]
    if report.themes:
        lines.append("")
        lines.append(w["themes"])
        lines += [f"• {t.name} — {t.share:.0%} ({t.sentiment})" for t in report.themes[:4]]
    for kind in ("questions", "requests", "praise", "criticism"):
        entries = getattr(report, kind)[:per_list]
        if entries:
            lines.append("")
            lines.append(w[kind])
            for e in entries:
                more = f" {w['times'].format(n=e.count)}" if e.count > 1 else ""
                lines.append(f"• {e.text[:80]}{more}")
    if ideas and report.ideas:
        lines.append("")
        lines.append(w["ideas"])
        for i, idea in enumerate(report.ideas, 1):
            lines.append(f"{i}. {idea.topic} ({w['style']}: {idea.style})")
            lines += [f"   – {p[:80]}" for p in idea.points[:3]]
    return "\n".join(lines)
