"""The doctor's vocabulary, declared once: the kinds of finding (explorer/CONTRACT.md §5, `doctor`) and the
severities. It imports nothing, so a lesson's steps (steps.py) can name a finding without the doctor."""

KINDS = ("padding_leak", "mask_ignored", "truncation", "padding_waste", "vanishing_gradient", "saturated_gates",
         "dead_units", "nan_or_inf", "cudnn_fallback")
SEVERITIES = ("info", "warning", "error")    # in rising order
