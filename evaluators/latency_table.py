"""A per-layer latency table measured on the user's own device, and the predictor that reads it.

MACs predict latency poorly (a large-kernel depthwise conv costs far more time per MAC than a
1x1 conv; thin high-resolution layers run far below a CPU's peak), so a search under a latency
budget needs latencies. Timing every candidate is too slow for a search; once-for-all's answer,
followed here, is a table: every distinct layer the search space can produce is timed once on
the target device, and a network's latency is predicted from the sum of its layers' entries by
an affine fit made per table on whole networks. Three modules, one job each:

* ``evaluators.latency_units``: what is timed (units, their keys, every unit of a space);
* ``evaluators.latency_predictor``: the table's file and the predictor that reads it;
* ``evaluators.latency_builder``: measuring a table (per runtime) and fitting its predictor.

This module is the public face the search and the entry points import from.
"""

from evaluators.latency_builder import (
    MIN_RUNS,
    TARGET_TIMED_MS,
    build_table,
    calibration_members,
    empty_call_us,
    measure_layers,
    measure_network_us,
)
from evaluators.latency_predictor import (
    FORMAT,
    RUNTIMES,
    Entry,
    LatencyPredictor,
    LatencyTable,
    TableHeader,
    check_runtime,
    cpu_model,
    fit_affine,
    measure_command,
    refit,
    runtime_version,
)
from evaluators.latency_units import (
    LatencyTableError,
    LayerSpec,
    Unit,
    config_units,
    describe_space,
    plan_units,
    space_fingerprint,
    space_units,
)

__all__ = [
    "FORMAT", "MIN_RUNS", "RUNTIMES", "TARGET_TIMED_MS", "Entry", "LatencyPredictor",
    "LatencyTable", "LatencyTableError", "LayerSpec", "TableHeader", "Unit", "build_table",
    "calibration_members", "check_runtime", "config_units", "cpu_model", "describe_space",
    "empty_call_us", "fit_affine", "measure_command", "measure_layers", "measure_network_us",
    "plan_units", "refit", "runtime_version", "space_fingerprint", "space_units",
]  # fmt: skip
