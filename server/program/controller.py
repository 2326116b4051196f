"""``/v1/program``."""

from __future__ import annotations

from litestar import Controller, Response, get, put
from litestar.params import JSONBody

from server.db import Connection
from server.dependencies import Db, TenantId, Write
from server.program.schemas import Program, ProgramIn
from server.program.service import get_program_json, put_program
from server.responses import encoded_response, json_response


class ProgramController(Controller):
    path = "/v1/program"
    tags = ["program"]

    @get(opt={"scope": "sdk"}, summary="The tenant's program (standing distribution rules)")
    async def read(self, db: Db, tenant_id: TenantId) -> Response[Program]:
        return encoded_response(await get_program_json(db, tenant_id), Program)

    @put(opt={"scope": "admin"}, summary="Replace the program; omitted fields take defaults")
    async def replace(
        self,
        write: Write,
        tenant_id: TenantId,
        data: JSONBody[ProgramIn],
    ) -> Response[Program]:
        async def work(tx: Connection) -> Response[Program]:
            return json_response(await put_program(tx, tenant_id, data))

        return await write.once(work)
