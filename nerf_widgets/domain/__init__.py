"""Domain layer: the project lifecycle state machine (``lifecycle``) and name rules (``names``).

It sits on the store (``core <- store <- domain``): the lifecycle table is plain Python, and
``lifecycle.transition`` records a move through the store's repositories, never with SQL of its own.
Submodules are imported explicitly (``from nerf_widgets.domain import lifecycle``) to keep imports light.
"""
