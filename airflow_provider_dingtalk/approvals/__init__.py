"""OA approvals (审批) as data: form values to DingTalk's ``formComponentValues``, and what an instance is.

Pure data, no I/O, like :mod:`~airflow_provider_dingtalk.messages` (which is for chat messages): the
hook, the operator, the sensor and the trigger all read approvals through these two modules.
"""

from __future__ import annotations

from airflow_provider_dingtalk.approvals.form import FormComponent, FormSchema, form_component_values
from airflow_provider_dingtalk.approvals.instance import ApprovalDecision, ApprovalInstance

__all__ = [
    "ApprovalDecision",
    "ApprovalInstance",
    "FormComponent",
    "FormSchema",
    "form_component_values",
]
