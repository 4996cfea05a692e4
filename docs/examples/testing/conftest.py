pytest_plugins = ["airflow_provider_dingtalk.testing.pytest_plugin"]
