"""Making a video: a `Brief` through the stages into a job folder.

Stages: probe, analysis, script, narration, plan, render (`orchestrate`, `stages`, `jobdir`,
`planner`, `notices`, `cli`).
"""
