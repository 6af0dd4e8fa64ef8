"""direct-ray: distributed sweeps on Ray for deep active learning under imbalance and label noise."""

__version__ = "0.2.0"
