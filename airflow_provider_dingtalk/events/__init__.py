"""The receiving side of DingTalk event callbacks: verify, decrypt, answer, and create asset events.

* :mod:`.app` — ``create_receiver_app()``, the FastAPI app;
* :mod:`.plugin` — mounts it on Airflow's API server at ``/dingtalk/events``;
* :mod:`.cli` — ``dingtalk-event-receiver``, the same app on its own, posting to Airflow's REST API.

Nothing is imported here, so that loading the plugin stays cheap in every Airflow process.
"""
