"""The trial database: the only module that touches SQL.

SQLAlchemy 2 typed ORM over an embedded SQLite file (default ``sqlite:///trial.db``) or
PostgreSQL (``postgresql+psycopg://...``), with the schema created and migrated by the
Alembic revisions shipped in ``hairtrial/store/migrations``. Data functions take
keyword-only arguments and return frozen dataclasses, never ORM rows; none of them returns
a site's arm unless asked for it by name (the trial is assessor-blinded).

Importing :mod:`hairtrial` does not import this package (SQLAlchemy loads only here).
"""

from hairtrial.store.audit import (
    AuditRecord,
    ChainReport,
    append_event,
    list_events,
    verify_audit_chain,
)
from hairtrial.store.engine import (
    DEFAULT_URL,
    Store,
    current_revision,
    head_revision,
    make_engine,
    open_store,
    parse_url,
    upgrade,
)
from hairtrial.store.export import EXPORT_FORMATS, export_tables
from hairtrial.store.images import (
    read_stored_image,
    sha256_file,
    verify_image_file,
    verify_images,
)
from hairtrial.store.ingest import (
    IngestError,
    IngestReport,
    RowProblem,
    ingest_manifest,
    validate_manifest,
)
from hairtrial.store.reviews import (
    Progress,
    RevisionInfo,
    latest_approved_revision,
    review_progress,
    review_queue,
    revision_history,
    save_revision,
)
from hairtrial.store.runs import (
    ClaimedImage,
    FailedRun,
    LeaseLostError,
    RunStatus,
    claim_pending_images,
    enqueue_runs,
    mark_failed,
    run_status,
    save_measurement,
)
from hairtrial.store.tracks import save_tracks
from hairtrial.store.trials import (
    DEFAULT_ARMS,
    DEFAULT_TRIAL,
    SiteInfo,
    SubjectInfo,
    TrialInfo,
    add_trial,
    get_or_create_site,
    get_or_create_subject,
    get_or_create_trial,
    get_or_create_visit,
    get_trial,
    list_trials,
    record_event,
    site_arm,
)
from hairtrial.store.users import (
    UserInfo,
    authenticate,
    create_user,
    disable_user,
    list_users,
)

__all__ = [
    "DEFAULT_ARMS",
    "DEFAULT_TRIAL",
    "DEFAULT_URL",
    "EXPORT_FORMATS",
    "AuditRecord",
    "ChainReport",
    "ClaimedImage",
    "FailedRun",
    "IngestError",
    "IngestReport",
    "LeaseLostError",
    "Progress",
    "RevisionInfo",
    "RowProblem",
    "RunStatus",
    "SiteInfo",
    "Store",
    "SubjectInfo",
    "TrialInfo",
    "UserInfo",
    "add_trial",
    "append_event",
    "authenticate",
    "claim_pending_images",
    "create_user",
    "current_revision",
    "disable_user",
    "enqueue_runs",
    "export_tables",
    "get_or_create_site",
    "get_or_create_subject",
    "get_or_create_trial",
    "get_or_create_visit",
    "get_trial",
    "head_revision",
    "ingest_manifest",
    "latest_approved_revision",
    "list_events",
    "list_trials",
    "list_users",
    "make_engine",
    "mark_failed",
    "open_store",
    "parse_url",
    "read_stored_image",
    "record_event",
    "review_progress",
    "review_queue",
    "revision_history",
    "run_status",
    "save_measurement",
    "save_revision",
    "save_tracks",
    "sha256_file",
    "site_arm",
    "upgrade",
    "validate_manifest",
    "verify_audit_chain",
    "verify_image_file",
    "verify_images",
]
