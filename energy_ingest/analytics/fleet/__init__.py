"""Fleet performance: every vehicle's efficiency over one window, from the hourly rollups.

Part of analytics because every number is the per-vehicle endpoint's, computed by its code
(correlation, numbers, status) from sums the rollups give without scanning history.
"""
