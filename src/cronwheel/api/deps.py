"""What a request handler reaches through the app: the node's services and settings, and the
job types loaded when the app was made."""

from __future__ import annotations

from fastapi import Request

from cronwheel.apps_service import AppService
from cronwheel.domain.worker_target import SpecParsers
from cronwheel.service import Service
from cronwheel.settings import Settings
from cronwheel.worker_service import WorkerService


def service_of(request: Request) -> Service:
    service: Service = request.app.state.node.service
    return service


def apps_of(request: Request) -> AppService:
    apps: AppService = request.app.state.node.apps
    return apps


def workers_of(request: Request) -> WorkerService:
    workers: WorkerService = request.app.state.node.workers
    return workers


def job_types_of(request: Request) -> SpecParsers:
    job_types: SpecParsers = request.app.state.job_types
    return job_types


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.node.settings
    return settings
