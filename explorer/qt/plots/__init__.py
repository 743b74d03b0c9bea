"""Every plot of the window: the Outputs tab (panel.py, one class per plot over a shared PlotState), the
Inside-the-cell tab (cell.py) and the training curves and Δ heatmap (training.py), with one colour-scale rule
and one text-scale rule (state.py) and one message card (items.py)."""

from .panel import PlotsPanel
from .state import (LEAKED, MASK_COLORS, MASKED, PADDED, PLOT_NAMES, VALID, PlotState, Scale, default_layer,
                    nice_limit, parse_units, runs, top_variance_units)

__all__ = ["LEAKED", "MASK_COLORS", "MASKED", "PADDED", "PLOT_NAMES", "VALID", "PlotState", "PlotsPanel", "Scale",
           "default_layer", "nice_limit", "parse_units", "runs", "top_variance_units"]
