"""The HTTP API: one router per resource."""

from fastapi import APIRouter

from service.routes import buffers, health, transitions

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(buffers.router)
api_router.include_router(transitions.router)
