"""Loaders for real data on disk and the paths of the offline default data sets."""
