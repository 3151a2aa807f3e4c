from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateJobReq(_message.Message):
    __slots__ = ("outJobNo", "type", "triggerTime", "callbackProtocol", "callbackEndpoint", "jobInfo")
    OUTJOBNO_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TRIGGERTIME_FIELD_NUMBER: _ClassVar[int]
    CALLBACKPROTOCOL_FIELD_NUMBER: _ClassVar[int]
    CALLBACKENDPOINT_FIELD_NUMBER: _ClassVar[int]
    JOBINFO_FIELD_NUMBER: _ClassVar[int]
    outJobNo: str
    type: int
    triggerTime: int
    callbackProtocol: str
    callbackEndpoint: str
    jobInfo: str
    def __init__(self, outJobNo: _Optional[str] = ..., type: _Optional[int] = ..., triggerTime: _Optional[int] = ..., callbackProtocol: _Optional[str] = ..., callbackEndpoint: _Optional[str] = ..., jobInfo: _Optional[str] = ...) -> None: ...

class CreateJobsReq(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[CreateJobReq]
    def __init__(self, jobs: _Optional[_Iterable[_Union[CreateJobReq, _Mapping]]] = ...) -> None: ...

class OperateJobReq(_message.Message):
    __slots__ = ("outJobNo",)
    OUTJOBNO_FIELD_NUMBER: _ClassVar[int]
    outJobNo: str
    def __init__(self, outJobNo: _Optional[str] = ...) -> None: ...

class JobResp(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...
