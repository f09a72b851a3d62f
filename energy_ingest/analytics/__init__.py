"""Efficiency analytics: AC drawn by the vehicle's meter(s) vs DC delivered to its battery."""
