"""Apache Airflow provider for DingTalk.

Kept free of Airflow imports on purpose: Airflow imports this package while it is still
initialising (provider discovery), and an ``import airflow`` here would be circular.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
