"""The scheduler loop and the dispatcher that delivers fired runs."""

from cronwheel.engine.dispatcher import Dispatcher
from cronwheel.engine.scheduler import EngineConfig, Scheduler

__all__ = ["Dispatcher", "EngineConfig", "Scheduler"]
