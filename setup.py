"""Build step for the wheel: copy the front-end modules of js/ into the package (nerf_widgets/static/).

js/ stays the one source folder; a source checkout or editable install reads it directly, a wheel carries
the copy as package data, found through importlib.resources (nerf_widgets/widgets/common.py: asset_path).
Everything else is configured in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

FRONTEND = Path(__file__).resolve().parent / "js"


class BuildPyWithFrontend(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # editable installs read js/ from the checkout
            return
        files = sorted([*FRONTEND.glob("*.js"), *FRONTEND.glob("*.css")])
        if not files:
            raise FileNotFoundError(f"no front-end modules in {FRONTEND}: the wheel would not work")
        static = Path(self.build_lib) / "nerf_widgets" / "static"
        static.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copyfile(path, static / path.name)


setup(cmdclass={"build_py": BuildPyWithFrontend})
