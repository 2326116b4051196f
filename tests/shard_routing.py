"""Would a statement route to one shard of a schema distributed by ``tenant_id`` (Citus)?

``multi_shard_reasons(sql)`` parses ``sql`` with sqlglot (PostgreSQL dialect) and returns why
it could touch more than one shard (empty: it routes to one, or touches reference tables only).
The rule, per query block (SELECT, UPDATE, DELETE, INSERT): every distributed table it names is
tied to one tenant — ``tenant_id`` equal to a parameter or literal in a top-level conjunct of
its WHERE or JOIN ON, directly or through ``a.tenant_id = b.tenant_id`` equalities with a table
that is (a join on tenant_id, which Citus co-locates). An INSERT ... VALUES names ``tenant_id``
among its columns, with a parameter or literal in each row. Conditions under OR / NOT do not
count. CTE names and subquery aliases are not tables; their own blocks are checked the same way.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

import sqlglot
from sqlglot import exp

from server.sharding import LOCAL_TABLES, REFERENCE_TABLES

__all__ = ["multi_shard_reasons"]

_BLOCKS = (exp.Select, exp.Update, exp.Delete)
_ON_CONFLICT_AFTER_FROM = re.compile(r"(\bAS\s+\w+\s*\([\w\s,]*\))\s+ON\s+CONFLICT", re.I)
_CONST = "<const>"


def _arg(node: exp.Expression, *names: str) -> object:
    for name in names:  # sqlglot renamed from/with to from_/with_ in recent releases
        if node.args.get(name) is not None:
            return node.args[name]
    return None


def _is_const(node: exp.Expression) -> bool:
    while isinstance(node, exp.Cast | exp.Paren):
        node = node.this
    return isinstance(node, exp.Parameter | exp.Placeholder | exp.Literal)


def _conjuncts(condition: exp.Expression | None) -> Iterable[exp.Expression]:
    if condition is None:
        return
    while isinstance(condition, exp.Paren):
        condition = condition.this
    if isinstance(condition, exp.And):
        yield from _conjuncts(condition.this)
        yield from _conjuncts(condition.expression)
    else:
        yield condition


class _Block:
    """One query block: its table sources (alias -> table name) and its conditions."""

    def __init__(self, node: exp.Expression, ctes: set[str]) -> None:
        self.node = node
        self.sources: dict[str, str] = {}
        tables: list[exp.Expression] = []
        if isinstance(node, exp.Select):
            from_ = _arg(node, "from_", "from")
            if isinstance(from_, exp.From):
                tables.append(from_.this)
        elif isinstance(node, exp.Update | exp.Delete):
            tables.append(node.this)
            from_ = _arg(node, "from_", "from")
            if isinstance(from_, exp.From):
                tables.append(from_.this)
            tables.extend(node.args.get("using") or [])
        joins: list[exp.Join] = list(node.args.get("joins") or [])
        tables.extend(join.this for join in joins)
        for table in tables:
            if isinstance(table, exp.Table) and not _is_catalog(table):
                name = table.name
                if name in ctes:
                    continue
                self.sources[table.alias_or_name] = name
        self.conditions: list[exp.Expression] = []
        where = node.args.get("where")
        if isinstance(where, exp.Where):
            self.conditions.extend(_conjuncts(where.this))
        for join in joins:
            self.conditions.extend(_conjuncts(join.args.get("on")))

    def distributed(self) -> dict[str, str]:
        return {
            alias: name
            for alias, name in self.sources.items()
            if name not in REFERENCE_TABLES and name not in LOCAL_TABLES
        }


def _is_catalog(table: exp.Table) -> bool:
    return table.db in ("pg_catalog", "information_schema") or table.name.startswith("pg_")


def _enclosing_blocks(node: exp.Expression, blocks: dict[int, _Block]) -> list[_Block]:
    found = []
    parent = node.parent
    while parent is not None:
        if id(parent) in blocks:
            found.append(blocks[id(parent)])
        parent = parent.parent
    return found


def _tenant_side(column: exp.Expression, chain: list[_Block]) -> tuple[int, str] | None:
    """The (block, alias) whose tenant_id ``column`` is, or None."""
    if not isinstance(column, exp.Column) or column.name != "tenant_id":
        return None
    qualifier = column.table
    for block in chain:
        if qualifier:
            if qualifier in block.sources:
                return id(block), qualifier
        elif len(block.distributed()) == 1:
            return id(block), next(iter(block.distributed()))
        elif len(block.sources) == 1:
            return id(block), next(iter(block.sources))
    return None


def multi_shard_reasons(sql: str) -> list[str]:
    try:
        statements = sqlglot.parse(sql, read="postgres")
    except sqlglot.errors.ParseError as exc:
        # ``INSERT ... SELECT ... FROM a CROSS JOIN f() AS x(c) ON CONFLICT``: sqlglot reads the
        # ON as the join's condition (the ambiguity SQLite's docs resolve with WHERE true).
        # The same statement with that WHERE true routes the same.
        patched = _ON_CONFLICT_AFTER_FROM.sub(r"\1 WHERE true ON CONFLICT", sql)
        try:
            statements = sqlglot.parse(patched, read="postgres")
        except sqlglot.errors.ParseError:
            return [f"unparsable: {str(exc).splitlines()[0]}"]
    reasons: list[str] = []
    for statement in statements:
        if statement is not None:
            reasons.extend(_check(statement))
    return reasons


def _check(statement: exp.Expression) -> list[str]:
    ctes = {cte.alias_or_name for cte in statement.find_all(exp.CTE)}
    blocks = {id(node): _Block(node, ctes) for node in statement.find_all(*_BLOCKS)}
    # Union-find over (block, alias) tenant columns, and the constant.
    parent: dict[object, object] = {}

    def find(item: object) -> object:
        parent.setdefault(item, item)
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(a: object, b: object) -> None:
        parent[find(a)] = find(b)

    for block in blocks.values():
        chain = [block, *_enclosing_blocks(block.node, blocks)]
        for condition in block.conditions:
            if not isinstance(condition, exp.EQ):
                continue
            left = _tenant_side(condition.this, chain)
            right = _tenant_side(condition.expression, chain)
            if left and right:
                union(left, right)
            elif left and _is_const(condition.expression):
                union(left, _CONST)
            elif right and _is_const(condition.this):
                union(right, _CONST)
    reasons = []
    for block in blocks.values():
        for alias, name in block.distributed().items():
            if find((id(block), alias)) != find(_CONST):
                kind = type(block.node).__name__.upper()
                reasons.append(f"{kind} block reads {name} ({alias}) without tenant_id = $n")
    for insert in statement.find_all(exp.Insert):
        reasons.extend(_check_insert(insert, ctes))
    return reasons


def _check_insert(insert: exp.Insert, ctes: set[str]) -> list[str]:
    target = insert.this
    columns: list[str] = []
    if isinstance(target, exp.Schema):
        columns = [ident.name for ident in target.expressions]
        target = target.this
    if not isinstance(target, exp.Table):
        return [f"INSERT into {target.sql()}: not a table"]
    name = target.name
    if name in REFERENCE_TABLES or name in LOCAL_TABLES or name in ctes:
        return []
    if "tenant_id" not in columns:
        return [f"INSERT into {name} names no tenant_id column"]
    source = insert.expression
    if isinstance(source, exp.Values):
        position = columns.index("tenant_id")
        for row in source.expressions:
            values = row.expressions if isinstance(row, exp.Tuple) else [row]
            if position >= len(values) or not _is_const(values[position]):
                return [f"INSERT into {name}: a row's tenant_id is not a parameter"]
    if isinstance(source, exp.Select):
        # INSERT ... SELECT: the SELECT block is checked as a block of its own; the tenant it
        # inserts is a parameter or a tenant_id it reads.
        position = columns.index("tenant_id")
        values = source.expressions
        if position >= len(values):
            return [f"INSERT into {name}: the SELECT gives no tenant_id"]
        value = values[position]
        while isinstance(value, exp.Alias | exp.Cast | exp.Paren):
            value = value.this
        if not (_is_const(value) or (isinstance(value, exp.Column) and value.name == "tenant_id")):
            return [f"INSERT into {name}: the SELECT's tenant_id is {value.sql()}"]
    return []


# ------------------------------------------------------------------ recording the test pass

# Every statement the store (server.db's PostgreSQL connection) ran during this test session:
# (sql, issuing function "module.qualname") -> the first test that ran it.
RECORDED: dict[tuple[str, str], str] = {}
_DUMP = os.environ.get("LIEBIAN_TEST_SQL_LOG", "")
current_test = ""


def _caller() -> str:
    import sys

    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__") in ("server.db", __name__):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "?"
    return f"{frame.f_globals.get('__name__')}.{frame.f_code.co_qualname}"


def record_statements() -> None:
    """Wrap the store's PostgreSQL statement methods to record what they run."""
    from server import db

    for name in ("fetch", "fetch_values", "fetchrow", "execute", "executemany"):
        original = getattr(db._PgConn, name)

        def wrapper(self: object, sql: str, *args: object, __original: object = original) -> object:
            key = (sql, _caller())
            if key not in RECORDED:
                RECORDED[key] = current_test
                if _DUMP:  # LIEBIAN_TEST_SQL_LOG: every new statement, as it is first seen
                    with Path(_DUMP).open("a") as log:
                        log.write(json.dumps([sql, key[1], current_test]) + "\n")
            return __original(self, sql, *args)  # type: ignore[operator]

        wrapper.__name__ = name
        setattr(db._PgConn, name, wrapper)
