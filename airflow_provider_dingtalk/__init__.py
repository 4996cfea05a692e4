"""Apache Airflow provider for DingTalk.

Kept free of Airflow imports on purpose: Airflow imports this package while it is still
initialising (provider discovery), and an ``import airflow`` here would be circular.

``__version__`` is the one place the version is stated: the build (hatch), the provider info and the
docs read it from here.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
