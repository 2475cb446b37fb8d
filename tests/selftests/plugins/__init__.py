"""Plugins the suite's own tests load into acceptance runs (``-p tests.selftests.plugins.<name>``)
to reproduce faults this machine cannot produce: a full card, NaN from a device, a second card."""
