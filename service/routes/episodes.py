"""Episode results from collectors: how training is going, for the trainer and for people."""

from typing import Annotated

from fastapi import APIRouter, Query

from service.deps import BufferName, BuffersDep, EpisodesDep
from service.models import EpisodeList, EpisodeReport, EpisodesRecorded, ErrorReply, LoggedEpisode
from service.storage.episodes import Episode

router = APIRouter(prefix="/buffers/{name}/episodes", tags=["episodes"])


@router.post("", response_model=EpisodesRecorded,
             responses={code: {"model": ErrorReply} for code in (404, 422, 503)})
async def record_episodes(name: BufferName, report: EpisodeReport, buffers: BuffersDep,
                          episodes: EpisodesDep) -> EpisodesRecorded:
    """Record finished episodes (return and length), in order."""
    await buffers.registry.get(name)  # 404 for an unknown buffer
    last_id = await episodes.append(name, [
        Episode(episode_return=item.episode_return, length=item.length, source=item.source)
        for item in report.episodes])
    return EpisodesRecorded(recorded=len(report.episodes), last_id=last_id)


@router.get("", response_model=EpisodeList,
            responses={code: {"model": ErrorReply} for code in (404, 422, 503)})
async def list_episodes(
        name: BufferName, buffers: BuffersDep, episodes: EpisodesDep,
        after: Annotated[str, Query(pattern=r"^\d+(-\d+)?$", description=(
            "Only episodes after this id (the last_id of a previous answer); 0 for the "
            "oldest kept."))] = "0",
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000) -> EpisodeList:
    """Episodes recorded after a given id, oldest first: poll with the last id seen."""
    await buffers.registry.get(name)
    logged = await episodes.read(name, after, limit)
    return EpisodeList(
        episodes=[LoggedEpisode(id=item.id, episode_return=item.episode_return,
                                length=item.length, source=item.source) for item in logged],
        last_id=logged[-1].id if logged else after)
