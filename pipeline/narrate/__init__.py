"""Narration: the script spoken (edge-tts, or an offline voice), timed to the word.

Import from the modules (`pipeline.narrate.narrator.Narrator`, `pipeline.narrate.model`,
`pipeline.narrate.cues`); this package stays empty so `reelbot --help` loads nothing heavy.
"""
