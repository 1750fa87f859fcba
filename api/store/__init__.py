"""The PostgreSQL path store.

Functions take a connection first and never commit: the caller owns the transaction
(``with database.transaction() as conn:``), so a failed request writes nothing. All SQL
lives in ``sql/``. Nothing here imports Flask.
"""

from .admin import copy_database, drop_database, ensure_database, list_databases, migrate_url
from .database import Database
from .dictionaries import (
    DEFAULT_STAGES,
    Channel,
    Coder,
    Stage,
    list_channels,
    list_stages,
    replace_stages,
)
from .errors import (
    ConflictError,
    InvalidDataError,
    MigrationError,
    NotFoundError,
    StoreError,
    UnavailableError,
    translated,
)
from .filters import JourneyFilter
from .interned import database_oid, load_path_days, load_totals
from .journeys import (
    JourneyRow,
    JourneyWrite,
    WriteCounts,
    delete_customer,
    delete_journey,
    get_journey,
)
from .migrations import migrate, migration_files, pending
from .paths import (
    PathRow,
    dictionary_names,
    load_journeys,
    load_paths,
    paths_of_totals,
    write_paths,
)
from .workspaces import (
    Workspace,
    authenticate,
    create_api_key,
    create_workspace,
    find_workspace,
    get_workspace,
    revoke_api_key,
)

__all__ = [
    "DEFAULT_STAGES",
    "Channel",
    "Coder",
    "ConflictError",
    "Database",
    "InvalidDataError",
    "JourneyFilter",
    "JourneyRow",
    "JourneyWrite",
    "MigrationError",
    "NotFoundError",
    "PathRow",
    "Stage",
    "StoreError",
    "UnavailableError",
    "Workspace",
    "WriteCounts",
    "authenticate",
    "copy_database",
    "create_api_key",
    "create_workspace",
    "database_oid",
    "delete_customer",
    "delete_journey",
    "dictionary_names",
    "drop_database",
    "ensure_database",
    "find_workspace",
    "get_journey",
    "get_workspace",
    "list_channels",
    "list_databases",
    "list_stages",
    "load_journeys",
    "load_path_days",
    "load_paths",
    "load_totals",
    "migrate",
    "migrate_url",
    "migration_files",
    "paths_of_totals",
    "pending",
    "replace_stages",
    "revoke_api_key",
    "translated",
    "write_paths",
]
