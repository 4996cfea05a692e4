"""DingTalk Stream mode: events and robot messages over an outbound WebSocket, no public URL needed.

:mod:`.client` holds the connection logic, :mod:`.frames` the wire format. The Airflow side is
:mod:`airflow_provider_dingtalk.triggers.stream`.
"""
