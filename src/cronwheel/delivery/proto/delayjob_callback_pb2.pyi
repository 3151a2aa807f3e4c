from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class CallbackReq(_message.Message):
    __slots__ = ("outJobNo", "triggerTime", "jobInfo")
    OUTJOBNO_FIELD_NUMBER: _ClassVar[int]
    TRIGGERTIME_FIELD_NUMBER: _ClassVar[int]
    JOBINFO_FIELD_NUMBER: _ClassVar[int]
    outJobNo: str
    triggerTime: int
    jobInfo: str
    def __init__(self, outJobNo: _Optional[str] = ..., triggerTime: _Optional[int] = ..., jobInfo: _Optional[str] = ...) -> None: ...

class CallbackResp(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...
