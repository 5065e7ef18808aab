"""Console command ``nerf-widgets``: thin argument parsing over the library."""
