"""The measured results committed with the repository that commands read when not told otherwise.

The library takes its data as arguments (``arch_search.calibration`` never looks for
``results/``); these defaults are the entry points' choice, found beside this checkout whatever
the working folder is. An installed copy without ``results/`` gets no AP estimate and no trained
points (both functions say so by returning nothing), as before.
"""

from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"
PROXY_SCORES = RESULTS / "rank_proxies" / "scores.csv"  # experiments.rank_proxies' scores
GROUND_TRUTH = RESULTS / "ground_truth" / "table.csv"  # experiments.ground_truth's table
