"""Piccolo tables: the schema, and the source of the migrations in ``server/migrations``.

Conventions, so the schema can be sharded by tenant later (Citus, CockroachDB):
- every table carries ``tenant_id`` and its primary key and every unique key start with it
  (migration 0030 made the database key ``(tenant_id, id)`` where Piccolo's column is ``id``;
  the reference tables are listed in :mod:`server.sharding`);
- times are integer microseconds since the Unix epoch (``*_us``, UTC): the same arithmetic and
  ordering on both engines, and no time-zone conversion in SQL;
- money is integer fen (``*_fen``), rates basis points (``*_bps``);
- JSON documents are stored as text and decoded with msgspec.
Services query these tables through :mod:`server.db` with plain SQL; Piccolo owns the schema.
Composite unique keys and indexes are created by migration 0002 (SQLite cannot add
constraints with ALTER TABLE), listed there beside the table they serve.
"""

from __future__ import annotations

from piccolo.columns import BigInt, BigSerial, Integer, Text, Varchar
from piccolo.table import Table


class Tenant(Table, tablename="tenants"):
    tenant_id = Varchar(length=32, unique=True)
    name = Varchar(length=200)
    created_at_us = BigInt()


class ApiKey(Table, tablename="api_keys"):
    tenant_id = Varchar(length=32, index=True)
    # The non-secret part of the key, shown in listings and used for the indexed lookup.
    prefix = Varchar(length=32, unique=True)
    # HMAC-SHA256 of the whole key; keys are random 192-bit tokens, so a slow hash adds nothing.
    secret_hash = Varchar(length=64)
    scope = Varchar(length=8)
    created_at_us = BigInt()
    revoked_at_us = BigInt(null=True, default=None)


class Program(Table, tablename="programs"):
    tenant_id = Varchar(length=32, unique=True)
    document = Text()  # the program as JSON (server.program.schemas.Program)
    updated_at_us = BigInt()


class IdempotencyKey(Table, tablename="idempotency_keys"):
    tenant_id = Varchar(length=32)
    key = Varchar(length=255)
    request_hash = Varchar(length=64)
    status_code = Integer(default=0)
    response_body = Text(default="")
    created_at_us = BigInt()


class Distributor(Table, tablename="distributors"):
    tenant_id = Varchar(length=32)
    distributor_id = Varchar(length=64)
    nickname = Varchar(length=200)
    avatar_url = Varchar(length=1000, null=True, default=None)
    tier = Varchar(length=8, default="member")
    status = Varchar(length=8, default="active")  # active | held | frozen
    created_at_us = BigInt()
    updated_at_us = BigInt()
    # Recruitment (server.recruitment): new | applied | approved | rejected. A row made while
    # the program recruits openly is approved at once; under approval/threshold it starts new.
    recruitment = Varchar(length=8, default="approved")
    application = Text(default="")  # the application's form fields, JSON
    recruitment_reason = Varchar(length=200, null=True, default=None)
    recruitment_at_us = BigInt(null=True, default=None)
    # Index into the program's tiers (0 = the first); sets the rates this distributor earns.
    tier_level = Integer(default=0)


class UserBinding(Table, tablename="user_bindings"):
    """The current referral state of one end user; its history is in ``attribution_events``."""

    tenant_id = Varchar(length=32)
    user_id = Varchar(length=64)
    inviter_id = Varchar(length=64, null=True, default=None)
    bound_at_us = BigInt(null=True, default=None)
    expires_at_us = BigInt(null=True, default=None)
    first_seen_at_us = BigInt()
    event_id = BigInt(null=True, default=None)
    # The inviter under whom the user is counted in ``team_counts``: the inviter while the
    # binding is active, NULL once its lapse has been applied (server.referrals.teams).
    team_inviter_id = Varchar(length=64, null=True, default=None)


class AttributionEvent(Table, tablename="attribution_events"):
    """Append-only: every arrival and every binding decision, with its link and reason."""

    id = BigSerial(primary_key=True)
    tenant_id = Varchar(length=32)
    user_id = Varchar(length=64)
    occurred_at_us = BigInt()
    recorded_at_us = BigInt()
    link_code = Varchar(length=32, null=True, default=None)
    scene = Varchar(length=64, null=True, default=None)
    channel = Varchar(length=64, null=True, default=None)
    campaign_id = Varchar(length=32, null=True, default=None)
    candidate_inviter_id = Varchar(length=64, null=True, default=None)
    previous_inviter_id = Varchar(length=64, null=True, default=None)
    outcome = Varchar(length=16)
    reason = Varchar(length=64, null=True, default=None)


class Link(Table, tablename="links"):
    tenant_id = Varchar(length=32)
    # Globally unique: the public redirect /s/{code} knows no tenant.
    code = Varchar(length=16, unique=True)
    distributor_id = Varchar(length=64)
    campaign_id = Varchar(length=32, default="")
    channel = Varchar(length=64, default="")
    created_at_us = BigInt()


class LinkClick(Table, tablename="link_clicks"):
    tenant_id = Varchar(length=32)
    code = Varchar(length=16)
    client_hash = Varchar(length=32)
    minute = BigInt()  # clicks from one client inside one minute count once


class Order(Table, tablename="orders"):
    tenant_id = Varchar(length=32)
    order_id = Varchar(length=64)
    user_id = Varchar(length=64)
    amount_fen = BigInt()
    paid_at_us = BigInt()
    campaign_id = Varchar(length=32, null=True, default=None)
    # Snapshot of what the commission was computed from, for /explain after any re-binding.
    upline = Text(default="[]")  # JSON [distributor_id, ...], nearest first
    rates_bps = Text(default="[]")  # JSON [bps, ...] per level
    event_id = BigInt(null=True, default=None)  # the attribution event behind the binding
    request_hash = Varchar(length=64)
    created_at_us = BigInt()


class Refund(Table, tablename="refunds"):
    tenant_id = Varchar(length=32)
    order_id = Varchar(length=64)
    refund_id = Varchar(length=64)
    amount_fen = BigInt()
    refunded_before_fen = BigInt()
    created_at_us = BigInt()


class LedgerEntry(Table, tablename="ledger_entries"):
    """Append-only. A correction is a new entry (a reversal), never an update.

    Status is derived, never stored: ``pending`` before ``available_at_us``, ``available``
    after it, ``settled``/``paid`` once an approved/paid settlement holds the entry
    (``settlement_locks``).
    """

    id = BigSerial(primary_key=True)
    tenant_id = Varchar(length=32)
    distributor_id = Varchar(length=64)
    # commission | red_packet | prize | reversal | absorbed_reversal
    kind = Varchar(length=20)
    amount_fen = BigInt()
    level = Integer(null=True, default=None)
    order_id = Varchar(length=64, null=True, default=None)
    refund_id = Varchar(length=64, null=True, default=None)
    campaign_id = Varchar(length=32, null=True, default=None)
    reverses_entry_id = BigInt(null=True, default=None)
    available_at_us = BigInt()
    created_at_us = BigInt()
    memo = Text(default="")
    # What makes the entry unique: one commission per (order, level), one reversal per
    # (refund, level), one prize per (campaign, rank) ...; a replay cannot pay twice.
    dedupe_key = Varchar(length=200)


TABLES: list[type[Table]] = [
    Tenant,
    ApiKey,
    Program,
    IdempotencyKey,
    Distributor,
    UserBinding,
    AttributionEvent,
    Link,
    LinkClick,
    Order,
    Refund,
    LedgerEntry,
]


class SettlementLock(Table, tablename="settlement_locks"):
    """An entry held by an approved settlement (at most one: unique per entry).

    The ledger stays append-only; settlement state lives here: ``settled`` on approval,
    ``paid`` once the settlement is marked paid.
    """

    tenant_id = Varchar(length=32)
    entry_id = BigInt()
    settlement_id = Varchar(length=32)
    status = Varchar(length=8)


TABLES.append(SettlementLock)


class Campaign(Table, tablename="campaigns"):
    tenant_id = Varchar(length=32)
    campaign_id = Varchar(length=32)
    name = Varchar(length=200)
    starts_at_us = BigInt()
    ends_at_us = BigInt()
    metric = Varchar(length=16)  # invites | orders | gmv | commission
    document = Text()  # the campaign as created (prizes, min_score, red packet config), JSON
    red_packet_remaining_fen = BigInt(null=True, default=None)
    red_packets_issued = Integer(default=0)
    status = Varchar(length=8, default="open")  # open | closed
    closed_at_us = BigInt(null=True, default=None)
    created_at_us = BigInt()


class LeaderboardScore(Table, tablename="leaderboard_scores"):
    """One distributor's score in one campaign period (``campaign``, ``d:2026-11-29``,
    ``w:2026-W48``, ``m:2026-11``), and when it was reached (the tie-break)."""

    tenant_id = Varchar(length=32)
    campaign_id = Varchar(length=32)
    period_key = Varchar(length=16)
    distributor_id = Varchar(length=64)
    score = BigInt()
    reached_at_us = BigInt()


TABLES.extend([Campaign, LeaderboardScore])


class Settlement(Table, tablename="settlements"):
    tenant_id = Varchar(length=32)
    settlement_id = Varchar(length=32, unique=True)
    cutoff_us = BigInt()
    status = Varchar(length=8)  # draft | approved | paid
    total_fen = BigInt()
    line_count = Integer()
    created_at_us = BigInt()
    approved_at_us = BigInt(null=True, default=None)
    paid_at_us = BigInt(null=True, default=None)


class SettlementLine(Table, tablename="settlement_lines"):
    tenant_id = Varchar(length=32)
    settlement_id = Varchar(length=32)
    distributor_id = Varchar(length=64)
    # The payee's nickname when the draft was made: the statement is a document of its date.
    nickname = Varchar(length=200, default="")
    commission_fen = BigInt()
    red_packet_fen = BigInt()
    prize_fen = BigInt()
    reversal_fen = BigInt()
    net_fen = BigInt()
    transfer_ref = Varchar(length=128, null=True, default=None)
    # The line's CSV cells but the transfer reference, rendered once at draft time.
    csv_cells = Text(default="")
    # Part of reversal_fen netted against this line's own commission (migration 0016).
    netted_reversal_fen = BigInt(default=0)


class SettlementItem(Table, tablename="settlement_items"):
    """The entries a settlement (draft or not) covers; approval locks them."""

    tenant_id = Varchar(length=32)
    settlement_id = Varchar(length=32)
    entry_id = BigInt()


class WebhookEndpoint(Table, tablename="webhook_endpoints"):
    tenant_id = Varchar(length=32)
    endpoint_id = Varchar(length=32, unique=True)
    url = Varchar(length=2000)
    events = Text()  # JSON list of event types
    secret = Varchar(length=64)
    created_at_us = BigInt()


class WebhookDelivery(Table, tablename="webhook_outbox"):
    """Durable outbox: written in the transaction of the event, delivered with retries."""

    id = BigSerial(primary_key=True)
    tenant_id = Varchar(length=32)
    endpoint_id = Varchar(length=32)
    event_id = Varchar(length=40)
    event_type = Varchar(length=40)
    payload = Text()
    attempts = Integer(default=0)
    next_attempt_at_us = BigInt()
    delivered_at_us = BigInt(null=True, default=None)
    last_error = Text(default="")
    created_at_us = BigInt()
    # Set while an attempt is in flight (worker or "retry now"), cleared with its outcome.
    lease_until_us = BigInt(null=True, default=None)


class PosterTemplate(Table, tablename="poster_templates"):
    tenant_id = Varchar(length=32)
    name = Varchar(length=64)
    document = Text()
    updated_at_us = BigInt()


TABLES.extend(
    [
        Settlement,
        SettlementLine,
        SettlementItem,
        WebhookEndpoint,
        WebhookDelivery,
        PosterTemplate,
    ]
)


class DistributorTotals(Table, tablename="distributor_totals"):
    """Running sums of one distributor's ledger, written in the transaction of each entry.

    The ledger stays the source of truth (``liebian ledger verify`` recomputes these):
    ``credited_fen`` sums commissions, red packets and prizes, ``reversed_fen`` the reversals
    (negative), ``absorbed_fen`` the ``absorbed_reversal`` entries (negative, in no balance);
    ``settled_fen`` and ``paid_fen`` sum the entries an approved / paid settlement holds;
    ``matured_fen`` the entries due by the tenant's maturity checkpoint.
    """

    tenant_id = Varchar(length=32)
    distributor_id = Varchar(length=64)
    # A distributor's totals are the sum of up to SHARDS rows: concurrent orders crediting one
    # top distributor update different rows (server.ledger.totals).
    shard = Integer(default=0)
    credited_fen = BigInt(default=0)
    reversed_fen = BigInt(default=0)
    absorbed_fen = BigInt(default=0)
    settled_fen = BigInt(default=0)
    paid_fen = BigInt(default=0)
    # entries due by the tenant's maturity checkpoint (server.ledger.maturity)
    matured_fen = BigInt(default=0)


class MaturityCheckpoint(Table, tablename="maturity_checkpoints"):
    """Per tenant, the time up to which ``distributor_totals.matured_fen`` holds every entry
    (server.ledger.maturity); one row per tenant, ``tenant_id`` its primary key."""

    tenant_id = Varchar(length=32, primary_key=True)
    checkpoint_us = BigInt(default=0)


class TeamAncestors(Table, tablename="team_ancestors"):
    """A user's 2nd and 3rd ancestors in the counted referral tree (the inviter's inviter, and
    the next) and their binding time, for team pages at levels 2 and 3 by keyset; a row per
    user that has a 2nd ancestor, kept by every move (server.referrals.teams). Primary key
    (tenant_id, user_id)."""

    tenant_id = Varchar(length=32)
    user_id = Varchar(length=64)
    ancestor2 = Varchar(length=64, null=True, default=None)
    ancestor3 = Varchar(length=64, null=True, default=None)
    bound_at_us = BigInt(default=0)


class TeamCounts(Table, tablename="team_counts"):
    """How many users are 1, 2 and 3 steps below a user in the counted referral tree
    (``user_bindings.team_inviter_id``), maintained on every binding change."""

    tenant_id = Varchar(length=32)
    user_id = Varchar(length=64)
    shard = Integer(default=0)  # summed on read, as distributor_totals (one per connection)
    level1 = BigInt(default=0)
    level2 = BigInt(default=0)
    level3 = BigInt(default=0)


class TeamTree(Table, tablename="team_trees"):
    """One row per tenant: a lock over its counted referral tree (PostgreSQL). Moves of a
    subtree update it (exclusive); bindings of new leaves share-lock it and re-check its
    ``version`` (server.referrals.teams)."""

    tenant_id = Varchar(length=32)
    version = BigInt(default=0)


TABLES.extend([DistributorTotals, TeamCounts, TeamTree])


class Withdrawal(Table, tablename="withdrawals"):
    """A distributor's request to be paid part of their available balance (提现).

    requested → approved → paid, or requested → rejected. The entries it covers are held in
    ``settlement_locks`` under ``withdrawal_id`` from the request on (so no settlement can
    approve them), released on rejection.
    """

    tenant_id = Varchar(length=32)
    withdrawal_id = Varchar(length=32, unique=True)
    distributor_id = Varchar(length=64)
    amount_fen = BigInt()  # asked for, out of the available balance
    fee_fen = BigInt()  # floor(amount × fee_bps / 10000), its own ledger entry
    net_fen = BigInt()  # paid out: amount - fee
    status = Varchar(length=9)  # requested | approved | rejected | paid
    reason = Varchar(length=200, null=True, default=None)
    transfer_ref = Varchar(length=128, null=True, default=None)
    created_at_us = BigInt()
    decided_at_us = BigInt(null=True, default=None)
    paid_at_us = BigInt(null=True, default=None)


TABLES.append(Withdrawal)


class TierSales(Table, tablename="tier_sales"):
    """Sales a tier condition counts, per distributor and UTC day of payment (fen, net of
    refunds): ``team_fen`` of orders credited to them, ``own_fen`` of their own orders.
    Written only while the program has promotion conditions (server.tiers), so an evaluation
    sums at most one row a day and shard instead of every order. ``shard``: the writing
    connection's (server.ledger.totals), so concurrent orders never wait on one row."""

    tenant_id = Varchar(length=32)
    distributor_id = Varchar(length=64)
    day = Integer()
    shard = Integer(default=0)
    team_fen = BigInt(default=0)
    own_fen = BigInt(default=0)


TABLES.append(TierSales)
