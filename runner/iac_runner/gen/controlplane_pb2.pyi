import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HealthStatus(_message.Message):
    __slots__ = ("status", "service", "phase", "exit_code", "restarts", "uptime_seconds", "message", "commit", "argv", "pid")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[HealthStatus.Status]
        SERVING: _ClassVar[HealthStatus.Status]
        NOT_SERVING: _ClassVar[HealthStatus.Status]
    UNKNOWN: HealthStatus.Status
    SERVING: HealthStatus.Status
    NOT_SERVING: HealthStatus.Status
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    ARGV_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    status: HealthStatus.Status
    service: str
    phase: str
    exit_code: int
    restarts: int
    uptime_seconds: float
    message: str
    commit: str
    argv: _containers.RepeatedScalarFieldContainer[str]
    pid: int
    def __init__(self, status: _Optional[_Union[HealthStatus.Status, str]] = ..., service: _Optional[str] = ..., phase: _Optional[str] = ..., exit_code: _Optional[int] = ..., restarts: _Optional[int] = ..., uptime_seconds: _Optional[float] = ..., message: _Optional[str] = ..., commit: _Optional[str] = ..., argv: _Optional[_Iterable[str]] = ..., pid: _Optional[int] = ...) -> None: ...

class LogRequest(_message.Message):
    __slots__ = ("service", "tail", "follow")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    service: str
    tail: int
    follow: bool
    def __init__(self, service: _Optional[str] = ..., tail: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("ts", "msg", "stream")
    TS_FIELD_NUMBER: _ClassVar[int]
    MSG_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    ts: _timestamp_pb2.Timestamp
    msg: str
    stream: str
    def __init__(self, ts: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., msg: _Optional[str] = ..., stream: _Optional[str] = ...) -> None: ...

class DeployRequest(_message.Message):
    __slots__ = ("slugs", "project")
    SLUGS_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    slugs: _containers.RepeatedScalarFieldContainer[str]
    project: str
    def __init__(self, slugs: _Optional[_Iterable[str]] = ..., project: _Optional[str] = ...) -> None: ...

class ServiceResult(_message.Message):
    __slots__ = ("name", "slug", "commit", "status", "image", "port", "error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    slug: str
    commit: str
    status: str
    image: str
    port: int
    error: str
    def __init__(self, name: _Optional[str] = ..., slug: _Optional[str] = ..., commit: _Optional[str] = ..., status: _Optional[str] = ..., image: _Optional[str] = ..., port: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class DeployResult(_message.Message):
    __slots__ = ("project", "services")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    project: str
    services: _containers.RepeatedCompositeFieldContainer[ServiceResult]
    def __init__(self, project: _Optional[str] = ..., services: _Optional[_Iterable[_Union[ServiceResult, _Mapping]]] = ...) -> None: ...
