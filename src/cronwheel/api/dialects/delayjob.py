"""Placeholder router; the delay-job dialect lands here."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["delay-job dialect"])
