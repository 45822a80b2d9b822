"""Image-quality metrics (protocol in ``srcore.metrics.base``; registered as ``core:*``)."""

from srcore.metrics.base import Metric, PerImageMetric, SetMetric

__all__ = ["Metric", "PerImageMetric", "SetMetric"]
