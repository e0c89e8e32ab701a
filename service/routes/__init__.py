"""The HTTP API: one router per resource."""

from fastapi import APIRouter

from replay_service.service.routes import buffers, episodes, health, transitions, weights

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(buffers.router)
api_router.include_router(transitions.router)
api_router.include_router(weights.router)
api_router.include_router(episodes.router)
