"""The real Airflow services of tests/production, shared by the human-in-the-loop tests."""

from tests.production.conftest import airflow_services, production_emulator

__all__ = ["airflow_services", "production_emulator"]
