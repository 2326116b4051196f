"""The Litestar application: ``create_app()`` wires settings, the store and the routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar, Response, get
from litestar.middleware import DefineMiddleware
from litestar.openapi import ResponseSpec

from server.apidocs import describe_api, openapi_config
from server.auth import ApiKeyMiddleware
from server.campaigns.boards import DbBoard
from server.campaigns.controller import CampaignController
from server.campaigns.redis_board import RedisBoard
from server.coherence import coherent, register
from server.console import console_router, console_template_config
from server.db import Database, connect
from server.decoding import StrictRequest, check_query_integers
from server.dependencies import AppState, Db, dependencies
from server.errors import ServiceError, exception_handlers
from server.ledger.controller import LedgerController
from server.maintenance import Maintenance
from server.observability import (
    configure_logging,
    make_before_send,
)
from server.orders.controller import OrderController
from server.program.controller import ProgramController
from server.ratelimit import RateLimits
from server.recruitment.controller import RecruitmentController
from server.redisconn import connect_redis
from server.referrals.controller import (
    DistributorController,
    LinkController,
    ReferralController,
    follow_link,
)
from server.responses import json_response
from server.runtime import settle_heap
from server.settings import Settings, load_settings
from server.settlements.controller import SettlementController
from server.share_posters.controller import (
    PosterController,
    PosterTemplateController,
    public_poster,
)
from server.share_posters.pool import RenderPool
from server.share_posters.service import PosterCache
from server.tiers.controller import TierController
from server.webhooks.controller import WebhookController
from server.webhooks.delivery import DeliveryPolicy
from server.webhooks.worker import WebhookWorker
from server.wechat.client import DEADLINE_S, WeChatClient
from server.wechat.controller import WeChatController, WxacodeController
from server.wechat.service import WeChatService
from server.withdrawals.controller import DistributorWithdrawalController, WithdrawalController

__all__ = ["create_app"]

# /console authenticates with its own session cookie (server.console).
PUBLIC_PATHS = ["^/health$", "^/schema", "^/s/", "^/p/", "^/console"]


_health_log = logging.getLogger("liebian.health")


class DatabaseUnavailable(ServiceError):
    status = 503
    title = "Database unavailable"
    slug = "database-unavailable"


@get(
    "/health",
    tags=["ops"],
    summary="Liveness and database reachability",
    responses={503: ResponseSpec(None, description="The database is unreachable")},
)
async def health(db: Db) -> Response[dict[str, str]]:
    try:
        await db.fetchval("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means the database is unreachable
        # /health is public: the cause (host names, user names, driver messages) goes to the
        # log only, never into the response.
        _health_log.exception("health check: the database did not answer")
        raise DatabaseUnavailable("The database did not answer; see the service log.") from None
    return json_response({"status": "ok", "database": db.engine})


def create_app(settings: Settings | None = None, *, db: Database | None = None) -> Litestar:
    """Build the app. ``db`` lets tests share one open store between apps."""
    settings = settings or load_settings()
    configure_logging()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = db is None
        app.state.db = (
            db
            if db is not None
            else await connect(settings.database_url, pool_size=settings.pool_size)
        )
        app.state.board = DbBoard(app.state.db)
        redis_client = None
        if settings.redis_url:
            redis_client = await connect_redis(settings)
            app.state.board = RedisBoard(redis_client, app.state.db)
            app.state.rate_limits.use_redis(redis_client)
            app.state.db.board_mirror = app.state.board
        policy = DeliveryPolicy(
            allow_private=settings.webhook_allow_private, deadline=settings.webhook_timeout
        )
        # trust_env=False: an environment proxy would bypass the address pinning.
        http = httpx.AsyncClient(
            timeout=policy.deadline,
            follow_redirects=False,
            trust_env=False,
            transport=app.state.webhook_transport,
        )
        worker = WebhookWorker(app.state.db, http, policy)
        app.state.webhook_worker = worker
        wechat_http = httpx.AsyncClient(timeout=DEADLINE_S, follow_redirects=False, trust_env=False)
        app.state.wechat = WeChatService(
            app.state.db,
            WeChatClient(wechat_http, settings.wechat_api_base),
            settings.secret_key,
            redis_client,
        )
        maintenance = Maintenance(app.state.db)
        if settings.deliver_webhooks:  # the process that runs background work
            worker.start()
            maintenance.start()
        forget_posters = register("poster_template", app.state.posters.forget_tenant)
        coherence = coherent(settings)
        app.state.invalidations = await coherence.__aenter__()
        settle_heap()  # after start-up: its objects are never garbage (server.runtime)
        try:
            yield
        finally:
            await coherence.__aexit__(None, None, None)
            forget_posters()
            if isinstance(app.state.board, DbBoard):
                await app.state.board.close()
            await worker.stop()
            await maintenance.stop()
            await http.aclose()
            await wechat_http.aclose()
            if redis_client is not None:
                await redis_client.aclose()
            if owned:
                await app.state.db.close()
            app.state.posters.pool.close()

    rate_limits = RateLimits(settings)
    ref = AppState()
    app = Litestar(
        route_handlers=[
            health,
            ProgramController,
            DistributorController,
            LedgerController,
            RecruitmentController,
            TierController,
            DistributorWithdrawalController,
            WithdrawalController,
            LinkController,
            ReferralController,
            follow_link,
            OrderController,
            CampaignController,
            SettlementController,
            WebhookController,
            PosterTemplateController,
            PosterController,
            public_poster,
            console_router(),
            WeChatController,
            WxacodeController,
        ],
        dependencies=dependencies(ref),
        template_config=console_template_config(),
        lifespan=[lifespan],
        middleware=[
            DefineMiddleware(ApiKeyMiddleware, exclude=PUBLIC_PATHS, rate_limits=rate_limits),
        ],
        exception_handlers=exception_handlers(),
        # JSON bodies decode strictly (money is a JSON integer), integer queries from digits
        request_class=StrictRequest,
        before_request=check_query_integers,
        before_send=[make_before_send(settings.log_requests)],
        openapi_config=openapi_config(),
        debug=False,
    )
    ref.state = app.state
    describe_api(app, PUBLIC_PATHS)
    app.state.settings = settings
    app.state.rate_limits = rate_limits
    app.state.webhook_transport = None  # tests inject an httpx transport here
    app.state.posters = PosterCache(
        pool=RenderPool(
            settings.poster_workers, settings.poster_deadline_ms / 1000, settings.poster_worker_mb
        )
    )
    return app
