from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class CallbackRequest(_message.Message):
    __slots__ = ("run_id", "attempt", "idempotency_key", "namespace", "job_key", "job_id", "scheduled_at_us", "fired_at_us", "payload_json")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    JOB_KEY_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_AT_US_FIELD_NUMBER: _ClassVar[int]
    FIRED_AT_US_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    attempt: int
    idempotency_key: str
    namespace: str
    job_key: str
    job_id: str
    scheduled_at_us: int
    fired_at_us: int
    payload_json: bytes
    def __init__(self, run_id: _Optional[str] = ..., attempt: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., namespace: _Optional[str] = ..., job_key: _Optional[str] = ..., job_id: _Optional[str] = ..., scheduled_at_us: _Optional[int] = ..., fired_at_us: _Optional[int] = ..., payload_json: _Optional[bytes] = ...) -> None: ...

class CallbackReply(_message.Message):
    __slots__ = ("ok", "message")
    OK_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    message: str
    def __init__(self, ok: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...
