"""Episode results from collectors: how training is going, for the trainer and for people."""

from typing import Annotated

from fastapi import APIRouter, Query

from replay_service.service.deps import BufferName, EpisodesDep, RegistryDep
from replay_service.service.errors import LimitExceeded
from replay_service.service.models import (
    EpisodeList,
    EpisodeReport,
    EpisodesRecorded,
    LoggedEpisode,
)
from replay_service.service.openapi import errors
from replay_service.service.storage.episodes import Episode
from replay_service.wire.errors import ErrorCode

router = APIRouter(prefix="/buffers/{name}/episodes", tags=["episodes"])

_LAST_POSSIBLE_ID = f"{2**64 - 1}-{2**64 - 1}"


@router.post("", response_model=EpisodesRecorded, responses=errors(ErrorCode.BUFFER_NOT_FOUND))
async def record_episodes(name: BufferName, report: EpisodeReport,
                          episodes: EpisodesDep) -> EpisodesRecorded:
    """Record finished episodes (return and length), in order."""
    last_id = await episodes.append(name, [
        Episode(episode_return=item.episode_return, length=item.length, source=item.source)
        for item in report.episodes])
    return EpisodesRecorded(recorded=len(report.episodes), last_id=last_id)


@router.get("", response_model=EpisodeList, responses=errors(
    ErrorCode.BUFFER_NOT_FOUND, ErrorCode.LIMIT_EXCEEDED))
async def list_episodes(
        name: BufferName, registry: RegistryDep, episodes: EpisodesDep,
        after: Annotated[str, Query(pattern=r"^\d+(-\d+)?$", description=(
            "Only episodes after this id (the last_id of a previous answer); 0 for the "
            "oldest kept."))] = "0",
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000) -> EpisodeList:
    """Episodes recorded after a given id, oldest first: poll with the last id seen."""
    if any(int(part) >= 2**64 for part in after.split("-")):
        raise LimitExceeded("`after` is not a stream id: each part must be below 2^64",
                            field="after")
    await registry.get(name)
    if after == _LAST_POSSIBLE_ID:  # nothing can come after it
        return EpisodeList(episodes=[], last_id=after)
    logged = await episodes.read(name, after, limit)
    return EpisodeList(
        episodes=[LoggedEpisode(id=item.id, episode_return=item.episode_return,
                                length=item.length, source=item.source) for item in logged],
        last_id=logged[-1].id if logged else after)
