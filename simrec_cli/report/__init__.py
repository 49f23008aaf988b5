"""Looking at results: the error-analysis report of an evaluation and the side-by-side comparison of runs.

`analysis` turns per-expression results into breakdowns, a miss taxonomy and a gallery choice; `writer`
saves them as `report.json` and a self-contained `index.html` (`page`, `charts`) with pictures (`gallery`);
`compare` reads run directories and checkpoints into one table of results and differing settings.
"""
