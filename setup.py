"""Builds every Cython source in ext/ as ext.<name>, optimised (-O3); the rest lives in pyproject.toml.

TRAINCTL_EXT=name[,name] limits a build to those modules (a quicker rebuild while working on one core).
"""

import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent
extensions = [
    Extension(
        f"ext.{pyx.stem}",
        [str(pyx.relative_to(HERE))],
        extra_compile_args=["-O3", "-fno-strict-aliasing", "-fno-math-errno"],
    )
    for pyx in sorted((HERE / "ext").glob("*.pyx"))
    if not os.environ.get("TRAINCTL_EXT") or pyx.stem in os.environ["TRAINCTL_EXT"].split(",")
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
)
