"""Hot statements run straight on the DBAPI cursor, compiled once per dialect (the other
packages may import `audit`).

A token grant runs five to eight small statements, and SQLAlchemy's Core execution (an
execution context, the compiled-cache lookup, parameter construction, a `Result` and its
metadata) cost more Python than the database's own work: about a fifth of a grant's CPU on
SQLite, by py-spy, where the cursor's own `execute` was under a fiftieth. A `Prepared`
statement keeps what SQLAlchemy does that these statements need (the SQL compiled for the
dialect, each parameter's and each result column's type conversion) and hands the rest to the
cursor. CPU per client_credentials grant, in-process (`bench.grant_cost`): 2.8-3.8 ms before,
1.9-2.3 after on SQLite; 5.0 against 3.8 on PostgreSQL.

What stays as SQLAlchemy has it:
- the engine's `before_cursor_execute` and `after_cursor_execute` listeners hear every
  statement, with a context that says what it is (SQLite's write lock in `api.database`
  takes the lock on the first write, or on a SELECT ... FOR UPDATE, from it; tests inject
  faults through them);
- a DBAPI error goes through the connection's own handling: wrapped as SQLAlchemy's
  exception (IntegrityError and the rest), and a disconnect invalidates the connection and
  is flagged `connection_invalidated`, which `Runtime.rerunnable` relies on.

Only plain statements qualify: every parameter given by the caller or fixed in the
statement, no Python-side column defaults, no expanding IN lists. Compiling refuses the rest,
at the first run, so a statement that would need more fails loudly.
"""

from __future__ import annotations

import threading
import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Delete, Insert, Select, Update
from sqlalchemy.sql.compiler import SQLCompiler

Params = Mapping[str, Any]
Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Bind:
    """One parameter: where its value comes from, and how it is converted for the driver."""

    name: str  # in the caller's parameters
    fixed: Any  # the statement's own value, for a parameter the caller does not give
    required: bool
    convert: Processor


@dataclass(frozen=True, slots=True)
class _Context:
    """What `before_cursor_execute` listeners read of an execution context."""

    compiled: SQLCompiler
    isinsert: bool
    isupdate: bool
    isdelete: bool
    executemany: bool
    isddl: bool = False


class _Compiled:
    """A statement compiled for one dialect (and, for INSERT and UPDATE, one set of keys)."""

    def __init__(self, statement: Select[Any] | Insert | Update | Delete, dialect: Dialect,
                 keys: Sequence[str] | None) -> None:  # fmt: skip
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        if not isinstance(compiled, SQLCompiler):
            raise TypeError("only SELECT, INSERT, UPDATE and DELETE statements are prepared")
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise TypeError(
                "a prepared statement takes every column's value from its caller "
                "(no Python-side defaults)"
            )
        if compiled.escaped_bind_names:
            raise TypeError("a prepared statement's parameter names must be plain")
        self.sql = compiled.string
        self.positional = compiled.positional
        names = compiled.positiontup if compiled.positional else list(compiled.binds)
        self.binds = tuple(self._bind(compiled, dialect, name) for name in names or ())
        self.context = _Context(
            compiled, compiled.isinsert, compiled.isupdate, compiled.isdelete, executemany=False
        )
        self.many_context = _Context(
            compiled, compiled.isinsert, compiled.isupdate, compiled.isdelete, executemany=True
        )
        self.row: Any = None  # a named tuple class, for a SELECT or a RETURNING
        self.results: tuple[Processor, ...] = ()
        columns = (
            list(statement.selected_columns)
            if isinstance(statement, Select)
            else list(compiled.effective_returning or ())
        )
        if columns:
            self.row = _row_type([str(column.key) for column in columns])
            self.results = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in columns
            )

    @staticmethod
    def _bind(compiled: SQLCompiler, dialect: Dialect, name: str) -> _Bind:
        bind = compiled.binds[name]
        if bind.expanding or bind.callable is not None:
            raise TypeError(f"parameter {name!r}: no expanding or computed parameters")
        convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
        return _Bind(name, bind.value, bind.required, convert)

    def values(self, params: Params) -> tuple[Any, ...] | dict[str, Any]:
        """The parameters as the driver takes them, converted as SQLAlchemy would."""
        converted = []
        for bind in self.binds:
            if bind.name in params:
                value = params[bind.name]
            elif bind.required:
                raise KeyError(f"the statement needs a value for {bind.name!r}")
            else:
                value = bind.fixed
            converted.append(value if bind.convert is None or value is None
                             else bind.convert(value))  # fmt: skip
        if self.positional:
            return tuple(converted)
        return {bind.name: value for bind, value in zip(self.binds, converted, strict=True)}

    def rows(self, raw: Sequence[Any]) -> list[tuple[Any, ...]]:
        if self.row is None:
            raise TypeError("only a SELECT or a RETURNING gives rows")
        make, results = self.row._make, self.results
        if not any(results):
            return [make(row) for row in raw]
        return [make(map(_converted, results, row)) for row in raw]


def _converted(convert: Processor, value: Any) -> Any:
    return value if convert is None else convert(value)


def _row_type(names: list[str]) -> type[tuple[Any, ...]]:
    """A named tuple with SQLAlchemy's `Row._mapping`, which the row seals read."""
    base = namedtuple("Row", names)  # type: ignore[misc]
    mapping = property(lambda self: dict(zip(self._fields, self, strict=True)))
    return type("Row", (base,), {"__slots__": (), "_mapping": mapping})


class Prepared:
    """A statement built once at import and run through `execute`, `one_or_none` or `all`."""

    def __init__(self, statement: Select[Any] | Insert | Update | Delete) -> None:
        self._statement = statement
        self._by_dialect: weakref.WeakKeyDictionary[Dialect, dict[Any, _Compiled]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def execute(self, connection: Connection, params: Params | Sequence[Params] = ()) -> int:
        """Run the statement (once per mapping when given several); the rows it matched."""
        return self._run(connection, params)[1]

    def all(self, connection: Connection, params: Params = {}) -> list[Any]:  # noqa: B006
        """The rows, as named tuples (with `_mapping`, as SQLAlchemy's rows have)."""
        return self._run(connection, params, fetch=True)[0]

    def one_or_none(self, connection: Connection, params: Params = {}) -> Any:  # noqa: B006
        """The one row, or None; LookupError if there are more."""
        rows = self.all(connection, params)
        if len(rows) > 1:
            raise LookupError("the statement matched more than one row")
        return rows[0] if rows else None

    def one(self, connection: Connection, params: Params = {}) -> Any:  # noqa: B006
        row = self.one_or_none(connection, params)
        if row is None:
            raise LookupError("the statement matched no row")
        return row

    def _compiled(self, dialect: Dialect, sample: Params) -> _Compiled:
        # INSERT and UPDATE compile for the keys given (in the caller's order: the same call
        # site gives them in the same order, and another order is only another entry).
        keys = None if isinstance(self._statement, Select | Delete) else tuple(sample)
        known = self._by_dialect.get(dialect)
        found = known.get(keys) if known is not None else None
        if found is None:
            found = _Compiled(self._statement, dialect, keys)
            with self._lock:
                self._by_dialect.setdefault(dialect, {})[keys] = found
        return found

    def _run(
        self, connection: Connection, params: Params | Sequence[Params], *, fetch: bool = False
    ) -> tuple[list[Any], int]:
        batch: Sequence[Params] = [params] if isinstance(params, Mapping) else params
        if not batch:
            return [], 0
        # One row goes as one execute: psycopg runs executemany in pipeline mode, whose set-up
        # costs more than the row.
        many = len(batch) > 1
        compiled = self._compiled(connection.dialect, batch[0])
        sql = compiled.sql
        values: Any = [compiled.values(one) for one in batch] if many else compiled.values(batch[0])
        context = compiled.many_context if many else compiled.context
        cursor = connection.connection.cursor()
        try:
            for listener in connection.dispatch.before_cursor_execute:
                sql, values = listener(connection, cursor, sql, values, context, many)
            if many:
                cursor.executemany(sql, values)
            else:
                cursor.execute(sql, values)
            connection.dispatch.after_cursor_execute(connection, cursor, sql, values, context, many)
            rows = compiled.rows(cursor.fetchall()) if fetch else []
            count = cursor.rowcount
        except BaseException as error:
            # Wraps it, invalidates the connection on a disconnect, closes the cursor; raises.
            connection._handle_dbapi_exception(error, sql, values, cursor, None)
            raise  # not reached: the line above always raises
        cursor.close()
        return rows, count
