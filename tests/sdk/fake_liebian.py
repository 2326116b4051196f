"""FakeLiebian: an in-memory STAND-IN for the Liebian API, for SDK tests only.

It is not the server and encodes none of its rules beyond what the SDK tests need: it answers
the paths of docs/api.md with bodies shaped as docs/api.md describes (auth and scopes, idempotency
replays, problem+json errors, 2-level commissions, refunds pro rata, an invites leaderboard,
settlements). Use it through `httpx.MockTransport(fake)`. The real app replaces it when
LIEBIAN_SDK_TEST_BASE_URL is set (see conftest.target).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import httpx

Handler = Callable[..., tuple[int, Any]]


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str = "", errors: Any = ()) -> None:
        self.status, self.title, self.detail, self.errors = status, title, detail, list(errors)


class FakeLiebian:
    """Call it with an `httpx.Request`; it returns the response the API would."""

    def __init__(self, admin_key: str, sdk_key: str) -> None:
        self.admin_key, self.sdk_key = admin_key, sdk_key
        self.program: dict[str, Any] = {
            "bind_mode": "first",
            "bind_validity_days": None,
            "commission_bps": [1000, 500],
            "freeze_days": 7,
            "self_purchase_commission": False,
            "clawback": "net_off",
            "payout_threshold_fen": 0,
            "timezone": "Asia/Shanghai",
            "landing_url": "https://example.com/pages/index",
        }
        self.distributors: dict[str, dict[str, Any]] = {}
        self.links: dict[str, dict[str, Any]] = {}
        self.inviter: dict[str, str] = {}
        self.invites: dict[tuple[Any, str], int] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.ledger: list[dict[str, Any]] = []
        self.campaigns: dict[str, dict[str, Any]] = {}
        self.settlements: dict[str, dict[str, Any]] = {}
        self.idempotent: dict[str, tuple[bytes, httpx.Response]] = {}
        self.requests: list[httpx.Request] = []
        admin_only = {
            self.put_program,
            self.post_campaign,
            self.close_campaign,
            self.post_settlement,
            self.get_settlement,
            self.approve_settlement,
            self.pay_settlement,
            self.export_settlement,
        }
        # (method, path pattern, handler, scope): "sdk" routes accept both keys, "admin" only one.
        self._routes: list[tuple[str, re.Pattern[str], Handler, str]] = [
            (m, re.compile(f"^{p}$"), h, "admin" if h in admin_only else "sdk")
            for m, p, h in [
                ("GET", "/v1/program", self.get_program),
                ("PUT", "/v1/program", self.put_program),
                ("PUT", "/v1/distributors/([^/]+)", self.put_distributor),
                ("GET", "/v1/distributors/([^/]+)", self.get_distributor),
                ("GET", "/v1/distributors/([^/]+)/ledger", self.get_ledger),
                ("GET", "/v1/distributors/([^/]+)/team", self.get_team),
                ("POST", "/v1/links", self.post_link),
                ("POST", "/v1/referrals", self.post_referral),
                ("POST", "/v1/orders", self.post_order),
                ("POST", "/v1/orders/([^/]+)/refunds", self.post_refund),
                ("GET", "/v1/orders/([^/]+)/explain", self.get_explain),
                ("POST", "/v1/campaigns", self.post_campaign),
                ("GET", "/v1/campaigns/([^/]+)", self.get_campaign),
                ("POST", "/v1/campaigns/([^/]+)/close", self.close_campaign),
                ("GET", "/v1/campaigns/([^/]+)/leaderboard", self.get_leaderboard),
                ("GET", "/v1/campaigns/([^/]+)/leaderboard/([^/]+)", self.get_rank),
                ("GET", "/v1/posters/([^/]+)", self.get_poster),
                ("POST", "/v1/settlements", self.post_settlement),
                ("GET", "/v1/settlements/([^/]+)", self.get_settlement),
                ("POST", "/v1/settlements/([^/]+)/approve", self.approve_settlement),
                ("POST", "/v1/settlements/([^/]+)/paid", self.pay_settlement),
                ("GET", "/v1/settlements/([^/]+)/export\\.(csv|xlsx)", self.export_settlement),
                ("GET", "/v1/settlements/([^/]+)/(payout)\\.csv", self.export_settlement),
            ]
        ]

    # -- plumbing ------------------------------------------------------------------------
    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        key = request.headers.get("idempotency-key")
        if key and key in self.idempotent:
            body, response = self.idempotent[key]
            if body != request.content:
                return _problem(Problem(409, "Idempotency-Key reused with a different body"))
            # A fresh copy: a Response's stream belongs to the client that first read it.
            return httpx.Response(
                response.status_code, headers=response.headers, content=response.content
            )
        try:
            response = self._dispatch(request)
        except Problem as problem:
            response = _problem(problem)
        if key and response.is_success:
            self.idempotent[key] = (request.content, response)
        return response

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in (self.admin_key, self.sdk_key):
            raise Problem(401, "Unauthorized", "missing or unknown API key")
        path = request.url.raw_path.decode().partition("?")[0]
        for method, pattern, handler, scope in self._routes:
            match = pattern.match(path)
            if match and method == request.method:
                if scope == "admin" and token != self.admin_key:
                    raise Problem(403, "Forbidden", "this key's scope does not allow it")
                body = json.loads(request.content) if request.content else {}
                status, payload = handler(request, body, *map(unquote, match.groups()))
                if isinstance(payload, bytes):
                    return httpx.Response(status, content=payload, headers={"ETag": '"fake"'})
                return httpx.Response(status, json=payload)
        raise Problem(404, "Not Found", f"no route {request.method} {path}")

    def _distributor(self, distributor_id: str) -> dict[str, Any]:
        if distributor_id not in self.distributors:
            raise Problem(404, "Not Found", f"no distributor {distributor_id}")
        return self.distributors[distributor_id]

    def _upline(self, user_id: str) -> list[str]:
        upline, current = [], user_id
        while current in self.inviter and len(upline) < 3:
            current = self.inviter[current]
            upline.append(current)
        return upline

    # -- program, distributors, links ----------------------------------------------------
    def get_program(self, request: httpx.Request, body: Any) -> tuple[int, Any]:
        return 200, self.program

    def put_program(self, request: httpx.Request, body: Any) -> tuple[int, Any]:
        if sum(body.get("commission_bps", [])) > 10000 or len(body["commission_bps"]) > 3:
            raise Problem(
                422, "Invalid program", errors=[{"field": "commission_bps", "message": "too deep"}]
            )
        self.program = {**self.program, **body}
        return 200, self.program

    def put_distributor(self, request: httpx.Request, body: Any, d_id: str) -> tuple[int, Any]:
        if not body.get("nickname"):
            raise Problem(422, "Invalid", errors=[{"field": "nickname", "message": "required"}])
        current = self.distributors.get(d_id, {"distributor_id": d_id})
        self.distributors[d_id] = {**current, **body}
        return 200, self._profile(d_id)

    def get_distributor(self, request: httpx.Request, body: Any, d_id: str) -> tuple[int, Any]:
        return 200, self._profile(d_id)

    def _profile(self, d_id: str) -> dict[str, Any]:
        balance = dict.fromkeys(("pending_fen", "available_fen", "settled_fen", "paid_fen"), 0)
        for entry in self.ledger:
            if entry["distributor_id"] == d_id:
                balance[f"{entry['status']}_fen"] += entry["amount_fen"]
        team = sum(1 for inviter in self.inviter.values() if inviter == d_id)
        return {
            **self._distributor(d_id),
            "inviter_id": self.inviter.get(d_id),
            "counts": {"direct_invitees": team, "indirect_invitees": 0},
            "balance": balance,
        }

    def get_ledger(self, request: httpx.Request, body: Any, d_id: str) -> tuple[int, Any]:
        self._distributor(d_id)
        mine = [e for e in reversed(self.ledger) if e["distributor_id"] == d_id]
        limit = int(request.url.params.get("limit", 50))
        return 200, {"entries": mine[:limit], "next_cursor": None}

    def get_team(self, request: httpx.Request, body: Any, d_id: str) -> tuple[int, Any]:
        level = int(request.url.params.get("level", 1))
        members = [
            {"user_id": user, "level": level}
            for user in self.inviter
            if len(up := self._upline(user)) >= level and up[level - 1] == d_id
        ]
        return 200, {"members": members, "next_cursor": None}

    def post_link(self, request: httpx.Request, body: Any) -> tuple[int, Any]:
        self._distributor(body["distributor_id"])
        seed = f"{body['distributor_id']}|{body.get('campaign_id')}".encode()
        code = "L" + hashlib.sha256(seed).hexdigest()[:10]
        link = {"code": code, "scene": f"s={code}", "url": f"https://fake.liebian.test/s/{code}"}
        self.links[code] = {**link, **body}
        return 201, self.links[code]

    # -- referrals and orders ------------------------------------------------------------
    def post_referral(self, request: httpx.Request, body: Any) -> tuple[int, Any]:
        code = body.get("code") or body.get("scene", "").removeprefix("s=")
        if code not in self.links:
            raise Problem(422, "Unknown link", errors=[{"field": "scene", "message": "unknown"}])
        user, link = body["user_id"], self.links[code]
        inviter = link["distributor_id"]
        if user in self.inviter:
            outcome = {"outcome": "kept", "reason": "already_bound"}
        elif user == inviter or inviter in [user, *self._upline(inviter)]:
            outcome = {"outcome": "rejected", "reason": "cycle"}
        else:
            self.inviter[user] = inviter
            key = (link.get("campaign_id"), inviter)
            self.invites[key] = self.invites.get(key, 0) + 1
            outcome = {"outcome": "bound"}
        return 200, {**outcome, "inviter_id": self.inviter.get(user), "upline": self._upline(user)}

    def post_order(self, request: httpx.Request, body: Any) -> tuple[int, Any]:
        order_id = body["order_id"]
        if order_id not in self.orders:
            pairs = zip(self._upline(body["user_id"]), self.program["commission_bps"], strict=False)
            commissions = [
                {
                    "distributor_id": d_id,
                    "level": level,
                    "amount_fen": body["amount_fen"] * rate // 10000,
                    "status": "pending",
                }
                for level, (d_id, rate) in enumerate(pairs, 1)
            ]
            self.orders[order_id] = {**body, "commissions": commissions, "refunded_fen": 0}
            for c in commissions:
                self.ledger.append({"kind": "commission", "order_id": order_id, **c})
        order = self.orders[order_id]
        return 201, {"order_id": order_id, "commissions": order["commissions"]}

    def post_refund(self, request: httpx.Request, body: Any, order_id: str) -> tuple[int, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise Problem(404, "Not Found", f"no order {order_id}")
        if order["refunded_fen"] + body["amount_fen"] > order["amount_fen"]:
            errors = [{"field": "amount_fen", "message": "exceeds the order amount"}]
            raise Problem(422, "Refund too large", errors=errors)
        order["refunded_fen"] += body["amount_fen"]
        reversals = [
            {
                "distributor_id": c["distributor_id"],
                "level": c["level"],
                "amount_fen": -(c["amount_fen"] * body["amount_fen"] // order["amount_fen"]),
                "kind": "reversal",
                "status": "pending",
            }
            for c in order["commissions"]
        ]
        for r in reversals:
            self.ledger.append({"kind": "reversal", "order_id": order_id, **r})
        return 201, {"order_id": order_id, "refund_id": body["refund_id"], "reversals": reversals}

    def get_explain(self, request: httpx.Request, body: Any, order_id: str) -> tuple[int, Any]:
        order = self.orders[order_id]
        return 200, {
            "order_id": order_id,
            "upline": [c["distributor_id"] for c in order["commissions"]],
            "commission_bps": self.program["commission_bps"],
            "commissions": order["commissions"],
        }

    # -- campaigns, leaderboards, posters ------------------------------------------------
    def post_campaign(self, request: httpx.Request, body: Any) -> tuple[int, Any]:
        campaign_id = f"cmp_{len(self.campaigns) + 1}"
        self.campaigns[campaign_id] = {"id": campaign_id, "status": "active", **body}
        return 201, self.campaigns[campaign_id]

    def get_campaign(self, request: httpx.Request, body: Any, campaign_id: str) -> tuple[int, Any]:
        if campaign_id not in self.campaigns:
            raise Problem(404, "Not Found", f"no campaign {campaign_id}")
        return 200, self.campaigns[campaign_id]

    def _board(self, campaign_id: str) -> list[dict[str, Any]]:
        scores = [(d, n) for (c, d), n in self.invites.items() if str(c) == campaign_id]
        scores.sort(key=lambda item: (-item[1], item[0]))
        return [
            {
                "rank": i,
                "distributor_id": d,
                "nickname": self.distributors[d]["nickname"],
                "score": n,
            }
            for i, (d, n) in enumerate(scores, 1)
        ]

    def close_campaign(
        self, request: httpx.Request, body: Any, campaign_id: str
    ) -> tuple[int, Any]:
        prizes = self.campaigns[campaign_id].get("prizes", [])
        awards = [
            {
                "distributor_id": e["distributor_id"],
                "rank": e["rank"],
                "amount_fen": p["amount_fen"],
                "kind": "prize",
            }
            for e in self._board(campaign_id)
            for p in prizes
            if p["rank_from"] <= e["rank"] <= p["rank_to"]
        ]
        return 200, {"awards": awards}

    def get_leaderboard(self, request: httpx.Request, body: Any, c_id: str) -> tuple[int, Any]:
        limit = int(request.url.params.get("limit", 50))
        return 200, {"entries": self._board(c_id)[:limit], "period": request.url.params["period"]}

    def get_rank(self, request: httpx.Request, body: Any, c_id: str, d_id: str) -> tuple[int, Any]:
        board = self._board(c_id)
        mine = next((e for e in board if e["distributor_id"] == d_id), None)
        if mine is None:
            return 200, {"rank": None, "score": 0, "above": board[-1:], "below": []}
        i = mine["rank"] - 1
        return 200, {**mine, "above": board[max(0, i - 1) : i], "below": board[i + 1 : i + 2]}

    def get_poster(self, request: httpx.Request, body: Any, d_id: str) -> tuple[int, Any]:
        self._distributor(d_id)
        magic = (
            b"\x89PNG\r\n\x1a\n" if request.url.params.get("format") == "png" else b"\xff\xd8\xff"
        )
        return 200, magic + f"fake poster of {d_id}".encode()

    # -- settlements ---------------------------------------------------------------------
    def post_settlement(self, request: httpx.Request, body: Any) -> tuple[int, Any]:
        datetime.fromisoformat(body["cutoff"])
        totals: dict[str, dict[str, int]] = {}
        for entry in self.ledger:
            line = totals.setdefault(
                entry["distributor_id"],
                dict.fromkeys(("commission_fen", "red_packet_fen", "prize_fen", "reversal_fen"), 0),
            )
            line[f"{entry['kind']}_fen"] += entry["amount_fen"]
        lines = [
            {"distributor_id": d, **t, "net_fen": sum(t.values())}
            for d, t in sorted(totals.items())
        ]
        settlement_id = f"st_{len(self.settlements) + 1}"
        self.settlements[settlement_id] = {
            "id": settlement_id,
            "status": "draft",
            "cutoff": body["cutoff"],
            "created_at": datetime.now(UTC).isoformat(),
            "lines": lines,
            "total_fen": sum(line["net_fen"] for line in lines),
        }
        return 201, self.settlements[settlement_id]

    def get_settlement(self, request: httpx.Request, body: Any, s_id: str) -> tuple[int, Any]:
        return 200, self.settlements[s_id]

    def approve_settlement(self, request: httpx.Request, body: Any, s_id: str) -> tuple[int, Any]:
        self.settlements[s_id]["status"] = "approved"
        return 200, self.settlements[s_id]

    def pay_settlement(self, request: httpx.Request, body: Any, s_id: str) -> tuple[int, Any]:
        settlement = self.settlements[s_id]
        if settlement["status"] != "approved":
            raise Problem(409, "Conflict", "only an approved settlement can be paid")
        settlement["status"] = "paid"
        return 200, settlement

    def export_settlement(
        self, request: httpx.Request, body: Any, s_id: str, fmt: str
    ) -> tuple[int, Any]:
        settlement = self.settlements[s_id]
        rows = ["distributor_id,net_fen"] + [
            f"{line['distributor_id']},{line['net_fen']}" for line in settlement["lines"]
        ]
        text = "\ufeff" + "\r\n".join(rows) + "\r\n"
        return 200, text.encode() if fmt != "xlsx" else b"PK\x03\x04fake-xlsx"


def _problem(problem: Problem) -> httpx.Response:
    return httpx.Response(
        problem.status,
        json={
            "type": "about:blank",
            "title": problem.title,
            "status": problem.status,
            "detail": problem.detail,
            "errors": problem.errors,
        },
        headers={"Content-Type": "application/problem+json"},
    )
