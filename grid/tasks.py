"""Celery tasks: thin, take ids, call one service, safe to run twice."""

from celery import shared_task

from grid import services


@shared_task(time_limit=600, soft_time_limit=540)
def reassign_buildings(community_ids: list[int]) -> int:
    return services.buildings_reassign(community_ids=community_ids)


@shared_task(time_limit=1800, soft_time_limit=1700)
def reassign_all_buildings() -> int:
    return services.buildings_reassign(community_ids=None)
