"""The operator and finance console at ``/console``: server-rendered pages plus htmx.

Every page calls the same service functions as the API (never its own SQL beyond its sessions
and audit trail). Scripts come from npm packages installed by ``make install`` (package-lock.json)
and are served by the app from ``node_modules``; the style sheet is ours. No CDN: the console
works on a machine without internet.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from litestar import Router
from litestar.di import Provide
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from server.console.account import login, login_form, logout, switch_language
from server.console.finance import DistributorPages, SettlementPages
from server.console.hooks import WebhookPages
from server.console.i18n import register_filters
from server.console.lifecycle import TierPages, WithdrawalPages
from server.console.lookups import OrderPages, UserPages
from server.console.operations import CampaignPages, ProgramPages, home
from server.console.posters import PosterPages
from server.console.web import console_exception_handlers, provide_console, provide_session
from server.console.webfont import font_slice, font_stylesheet, ui_font_url

__all__ = ["console_router", "console_template_config", "vendor_directory"]

HERE = Path(__file__).resolve().parent


def vendor_directory() -> Path:
    """Where npm put htmx and chart.js: LIEBIAN_CONSOLE_ASSETS, else the checkout's node_modules."""
    configured = os.environ.get("LIEBIAN_CONSOLE_ASSETS")
    return Path(configured) if configured else HERE.parent.parent / "node_modules"


def console_template_config() -> TemplateConfig[Any]:
    def configure(engine: JinjaTemplateEngine) -> None:
        register_filters(engine.engine)
        engine.engine.globals["cjk_ui_font"] = ui_font_url

    return TemplateConfig(
        directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=configure
    )


def console_router() -> Router:
    vendor = vendor_directory()
    return Router(
        path="/",
        route_handlers=[
            login_form,
            login,
            logout,
            switch_language,
            home,
            ProgramPages,
            CampaignPages,
            DistributorPages,
            SettlementPages,
            WithdrawalPages,
            TierPages,
            WebhookPages,
            PosterPages,
            font_stylesheet,
            font_slice,
            UserPages,
            OrderPages,
            create_static_files_router(
                path="/console/static", directories=[HERE / "static"], name="console-static"
            ),
            create_static_files_router(
                path="/console/vendor",
                directories=[vendor / "htmx.org" / "dist", vendor / "chart.js" / "dist"],
                name="console-vendor",
            ),
        ],
        dependencies={
            "session": Provide(provide_session),
            "console": Provide(provide_console, sync_to_thread=False),
        },
        exception_handlers=console_exception_handlers(),
        include_in_schema=False,
    )
