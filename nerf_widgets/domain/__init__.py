"""Domain layer: the project lifecycle state machine (``lifecycle``), record types and name rules.

Submodules are imported explicitly (``from nerf_widgets.domain import lifecycle``) to keep imports light.
"""
