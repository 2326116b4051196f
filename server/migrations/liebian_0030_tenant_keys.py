"""Tenant-first keys (a schema Citus can distribute by ``tenant_id``), and the share-code
reference table.

Self-contained and driven by the catalog, so it also converts tables that earlier migrations
of any branch added: every table with a ``tenant_id`` column, except the reference tables
below, gets its primary key and every unique key rewritten to start with ``tenant_id``.

- PostgreSQL: a primary key ``(id)`` becomes ``(tenant_id, id)`` (drop and add the
  constraint); a unique constraint ``(x)`` is dropped and re-made as a unique index
  ``(tenant_id, x)``; a unique index is rebuilt with ``tenant_id`` first (its predicate kept);
  foreign keys that referenced a rewritten key are re-made as ``(tenant_id, ...)`` to it.
- SQLite (never distributed): an ``INTEGER PRIMARY KEY`` stays the rowid (SQLite allows
  AUTOINCREMENT only there); any other primary key and inline ``UNIQUE`` column needs the
  table-rebuild procedure (create the new table, copy, drop, rename, re-make its indexes,
  keep its AUTOINCREMENT counter); unique indexes are rebuilt as on PostgreSQL.
- ``link_codes`` (code -> tenant): a share code is global (the public ``/s/{code}`` knows no
  tenant), so its uniqueness moves from ``links.code`` to this reference table, filled from
  ``links``.

The reference tables keep their keys (``server.sharding.REFERENCE_TABLES``; listed here too,
so this migration means the same thing whatever that module later says).
"""

from __future__ import annotations

import re
from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-01T03:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "tenant-first primary and unique keys; link_codes reference table"

REFERENCE = frozenset(
    {"tenants", "api_keys", "link_codes", "console_sessions", "stats_watermarks", "migration"}
)

LINK_CODES = (
    "CREATE TABLE IF NOT EXISTS link_codes ("
    " code VARCHAR(16) NOT NULL PRIMARY KEY, tenant_id VARCHAR(32) NOT NULL)"
)
FILL_LINK_CODES = (
    "INSERT INTO link_codes (code, tenant_id) SELECT code, tenant_id FROM links WHERE true"
    " ON CONFLICT (code) DO NOTHING"
)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tenant_first(columns: list[str]) -> list[str]:
    return ["tenant_id", *(c for c in columns if c != "tenant_id")]


# ----------------------------------------------------------------------------- PostgreSQL

_PG_TABLES = """
SELECT c.relname AS name FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1
"""

_PG_KEYS = """
SELECT i.relname AS index_name, x.indisprimary AS is_primary, con.conname AS constraint_name,
       ARRAY(SELECT a.attname::text FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
             ORDER BY k.n) AS columns,
       x.indexprs IS NOT NULL AS has_expressions,
       pg_get_expr(x.indpred, x.indrelid) AS predicate
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid
     AND con.contype IN ('p', 'u')
WHERE x.indrelid = '{table}'::regclass AND (x.indisunique OR x.indisprimary)
"""

_PG_FOREIGN = """
SELECT con.conname AS name, con.conrelid::regclass::text AS owner,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.n) AS columns,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.n) AS referenced
FROM pg_constraint con WHERE con.contype = 'f' AND con.confrelid = '{table}'::regclass
"""


def postgres_statements(table: str, keys: list[dict[str, Any]], foreign: list[dict[str, Any]]
                        ) -> list[str]:
    """The DDL that makes ``table``'s keys tenant-first (empty when they already are)."""
    wrong = [k for k in keys if list(k["columns"])[:1] != ["tenant_id"]]
    if not wrong:
        return []
    sql: list[str] = []
    # Foreign keys that reference this table go first (they depend on its keys) and come
    # back tenant-first.
    for fk in foreign:
        sql.append(f"ALTER TABLE {fk['owner']} DROP CONSTRAINT {_q(fk['name'])}")
    t = _q(table)
    for key in wrong:
        columns = list(key["columns"])
        if key["has_expressions"] or not columns:
            raise RuntimeError(f"{table}.{key['index_name']}: an expression key, convert it by hand")
        cols = ", ".join(_q(c) for c in _tenant_first(columns))
        where = f" WHERE {key['predicate']}" if key["predicate"] else ""
        if key["is_primary"]:
            sql.append(f"ALTER TABLE {t} DROP CONSTRAINT {_q(key['constraint_name'])}")
            sql.append(f"ALTER TABLE {t} ADD CONSTRAINT {_q(table + '_pkey')} PRIMARY KEY ({cols})")
        elif key["constraint_name"]:
            sql.append(f"ALTER TABLE {t} DROP CONSTRAINT {_q(key['constraint_name'])}")
            name = _q(f"ux_{table}_{'_'.join(columns)}"[:63])
            sql.append(f"CREATE UNIQUE INDEX {name} ON {t} ({cols})")
        else:
            sql.append(f"DROP INDEX {_q(key['index_name'])}")
            sql.append(f"CREATE UNIQUE INDEX {_q(key['index_name'])} ON {t} ({cols}){where}")
    for fk in foreign:
        sql.append(
            f"ALTER TABLE {fk['owner']} ADD CONSTRAINT {_q(fk['name'])} FOREIGN KEY"
            f" ({', '.join(_q(c) for c in _tenant_first(list(fk['columns'])))}) REFERENCES {t}"
            f" ({', '.join(_q(c) for c in _tenant_first(list(fk['referenced'])))})"
        )
    return sql


async def _postgres(run: Any) -> None:
    for row in await run(_PG_TABLES):
        table = row["name"]
        if table in REFERENCE:
            continue
        keys = [dict(k) for k in await run(_PG_KEYS.format(table=_q(table)))]
        foreign = [dict(f) for f in await run(_PG_FOREIGN.format(table=_q(table)))]
        for statement in postgres_statements(table, keys, foreign):
            await run(statement)


# ----------------------------------------------------------------------------- SQLite


def _strip_column_constraint(create: str, column: str, constraint: str) -> str:
    """``create`` without ``constraint`` (UNIQUE / PRIMARY KEY) in ``column``'s definition."""
    pattern = re.compile(
        rf'((?:^|[(,])\s*"?{re.escape(column)}"?\s[^,]*?)\s+{constraint}\b', re.IGNORECASE
    )
    stripped, count = pattern.subn(r"\1", create, count=1)
    if count != 1:
        raise RuntimeError(f"cannot find {constraint} on {column} in {create!r}")
    return stripped


async def _sqlite_table(run: Any, table: str) -> None:
    indexes = [dict(i) for i in await run(f"PRAGMA index_list({_q(table)})")]
    strip_unique: list[str] = []
    primary: list[str] = []
    rebuild_indexes: list[tuple[str, list[str], str]] = []  # name, columns, WHERE ...
    for index in indexes:
        if not index["unique"]:
            continue
        columns = [c["name"] for c in await run(f"PRAGMA index_info({_q(index['name'])})")]
        if columns[:1] == ["tenant_id"]:
            continue
        if None in columns:
            raise RuntimeError(f"{table}.{index['name']}: an expression key, convert it by hand")
        if index["origin"] == "pk":
            primary = columns
        elif index["origin"] == "u":
            if len(columns) != 1:
                raise RuntimeError(f"{table}: a multi-column UNIQUE constraint, convert by hand")
            strip_unique.append(columns[0])
        else:
            rows = await run(
                f"SELECT sql FROM sqlite_master WHERE type = 'index' AND name = '{index['name']}'"
            )
            where = str(rows[0]["sql"]).partition(" WHERE ")[2] if index["partial"] else ""
            rebuild_indexes.append((index["name"], columns, f" WHERE {where}" if where else ""))
    for name, columns, where in rebuild_indexes:
        cols = ", ".join(_q(c) for c in _tenant_first(columns))
        await run(f"DROP INDEX {_q(name)}")
        await run(f"CREATE UNIQUE INDEX {_q(name)} ON {_q(table)} ({cols}){where}")
    if not strip_unique and not primary:
        return
    # The table-rebuild procedure (https://www.sqlite.org/lang_altertable.html, section 7).
    create = str((await run(
        f"SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
    ))[0]["sql"])
    for column in strip_unique:
        create = _strip_column_constraint(create, column, "UNIQUE")
    if primary:
        if len(primary) == 1:
            create = _strip_column_constraint(create, primary[0], "PRIMARY KEY")
        else:
            create = re.sub(r",\s*PRIMARY KEY\s*\([^)]*\)", "", create, count=1, flags=re.I)
        cols = ", ".join(_q(c) for c in _tenant_first(primary))
        create = create.rstrip().removesuffix(")") + f", PRIMARY KEY ({cols}))"
    new = f"{table}__tenant_keys"
    create = re.sub(
        r"^\s*CREATE TABLE\s+(IF NOT EXISTS\s+)?(\"[^\"]+\"|\S+)",
        f"CREATE TABLE {_q(new)}",
        create,
        count=1,
        flags=re.IGNORECASE,
    )
    other_indexes = [
        str(r["sql"]) for r in await run(
            f"SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = '{table}'"
            " AND sql IS NOT NULL"
        )
    ]
    sequence = await run(f"SELECT seq FROM sqlite_sequence WHERE name = '{table}'") if (
        await run("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")
    ) else []
    await run(create)
    await run(f"INSERT INTO {_q(new)} SELECT * FROM {_q(table)}")
    await run(f"DROP TABLE {_q(table)}")
    await run(f"ALTER TABLE {_q(new)} RENAME TO {_q(table)}")
    for sql in other_indexes:
        await run(sql)
    for column in strip_unique:
        await run(
            f"CREATE UNIQUE INDEX {_q(f'ux_{table}_{column}')} ON {_q(table)}"
            f" (tenant_id, {_q(column)})"
        )
    if sequence:
        seq = int(sequence[0]["seq"])
        await run(f"UPDATE sqlite_sequence SET seq = max(seq, {seq}) WHERE name = '{table}'")


async def _sqlite(run: Any) -> None:
    tables = await run(
        "SELECT m.name FROM sqlite_master m WHERE m.type = 'table'"
        " AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name"
    )
    for row in tables:
        table = row["name"]
        if table in REFERENCE:
            continue
        columns = {c["name"] for c in await run(f"PRAGMA table_info({_q(table)})")}
        if "tenant_id" in columns:
            await _sqlite_table(run, table)


# ----------------------------------------------------------------------------- both


async def convert(run: Any, engine: str) -> None:
    """Make every key tenant-first on ``engine`` (``run(sql)`` returns rows as mappings)."""
    if engine == "postgres":
        await _postgres(run)
    else:
        await _sqlite(run)
    await run(LINK_CODES)
    await run(FILL_LINK_CODES)


async def _forwards() -> None:
    from piccolo.engine import engine_finder

    engine = engine_finder()
    if engine is None:
        raise RuntimeError("no Piccolo engine configured (PICCOLO_CONF)")

    async def run(sql: str) -> Any:
        return await engine.run_ddl(sql)

    await convert(run, engine.engine_type)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="liebian", description=DESCRIPTION)
    manager.add_raw(_forwards)
    return manager
