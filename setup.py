"""Package layout that pyproject.toml cannot express: the top-level presets/ ship as `simrec_cli/presets`.

The presets live at the top of the repository where a reader finds them; inside the wheel they sit in the package,
so `simrec presets` and `--preset NAME` work from an installed package in any folder.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["simrec_cli*"]), "simrec_cli.presets"],
    package_dir={"simrec_cli.presets": "presets"},
    package_data={"simrec_cli.presets": ["*.yaml"], "simrec_cli.serve": ["page/*"]},
)
