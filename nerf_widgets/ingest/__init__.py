"""Image ingest: sources -> detect (magic bytes) -> header checks -> decode -> EXIF orientation -> RGB(+alpha)
-> working copy + thumbnail + metadata -> commit. Videos become frames (the sharpest per window).

Entry point: ``nerf_widgets.ingest.batch.ingest_batch`` (``Project.upload_images`` calls it). PIL and PyAV
are imported by the stage modules, so importing this package alone stays light.
"""
