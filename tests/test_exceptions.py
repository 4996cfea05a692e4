"""Errors survive pickling (Airflow pickles exceptions) and keep what the user needs."""

from __future__ import annotations

import pickle

import pytest

from airflow_provider_dingtalk.exceptions import (
    DingTalkAPIError,
    DingTalkCryptoError,
    DingTalkPartialSendError,
    DingTalkValidationError,
)


@pytest.mark.parametrize(
    "err",
    [
        DingTalkAPIError(errcode=40089, errmsg="bad", request_id="r1", api="/gettoken", hint="fix it"),
        DingTalkValidationError("msg.text.content", "too long", size=3000, limit=2048),
        DingTalkCryptoError(900005, "signature mismatch"),
        DingTalkPartialSendError(
            cause=DingTalkAPIError(errcode=-1, errmsg="busy"),
            sent=[{"task_id": 7, "userid_list": ["a"]}],
            unsent={"userid_list": ["b"]},
        ),
    ],
)
def test_round_trips_through_pickle(err: Exception) -> None:
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is type(err)
    assert str(copy) == str(err)
    assert vars(copy).keys() == vars(err).keys()


def test_validation_error_names_field_size_and_limit() -> None:
    err = DingTalkValidationError("msg.text.content", "too long in UTF-8 bytes", size=3000, limit=2048)
    assert isinstance(err, ValueError)
    assert str(err) == "msg.text.content: too long in UTF-8 bytes (got 3000, limit 2048)"
