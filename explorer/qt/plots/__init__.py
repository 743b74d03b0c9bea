"""The plots of one run, one class per plot over a shared PlotState (see panel.py and state.py)."""

from .panel import PlotsPanel
from .state import (LEAKED, MASK_COLORS, MASKED, PADDED, PLOT_NAMES, VALID, PlotState, Scale, default_layer,
                    nice_limit, parse_units, runs, top_variance_units)

__all__ = ["LEAKED", "MASK_COLORS", "MASKED", "PADDED", "PLOT_NAMES", "VALID", "PlotState", "PlotsPanel", "Scale",
           "default_layer", "nice_limit", "parse_units", "runs", "top_variance_units"]
