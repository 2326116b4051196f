"""``/v1/program``."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, put
from litestar.params import JSONBody

from server.common import json_response
from server.idempotency import run_idempotent
from server.program.schemas import Program, ProgramIn
from server.program.service import get_program_json, put_program


class ProgramController(Controller):
    path = "/v1/program"
    tags = ["program"]

    @get(opt={"scope": "sdk"}, summary="The tenant's program (standing distribution rules)")
    async def read(self, request: Request[Any, Any, Any]) -> Response[Program]:
        document = await get_program_json(request.app.state.db, request.auth.tenant_id)
        return Response(document, media_type="application/json")  # type: ignore[arg-type]

    @put(opt={"scope": "admin"}, summary="Replace the program; omitted fields take defaults")
    async def replace(
        self, request: Request[Any, Any, Any], data: JSONBody[ProgramIn]
    ) -> Response[Program]:
        tenant_id = request.auth.tenant_id

        async def work(tx: Any) -> Response[bytes]:
            return json_response(await put_program(tx, tenant_id, data))

        return await run_idempotent(request, request.app.state.db, tenant_id, work)  # type: ignore[return-value]
