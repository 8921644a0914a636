"""The renderer: an `EditPlan` in, an MP4 and a cover out (one ffmpeg pass for the picture)."""
