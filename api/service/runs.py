"""Attribution runs from request to stored table: plan, load, run the engine, store.

:func:`plan_run` merges a request with the workspace defaults and checks every model
option and confidence setting with the engine before anything runs. :func:`execute`
reads the selection in one snapshot, runs each model (recording progress after each),
and stores the table and totals, or the problem that stopped it. Synchronous runs
execute in a thread of the server process that the request waits on for at most the
configured time limit (held by the process's heartbeat, :mod:`.heartbeat`).
Asynchronous runs are jobs of the queue (:mod:`.jobs`), executed by worker processes
through :func:`execute_job`, which decides what a failed try records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from attribution import Credit, InvalidParameter, PathSet, get_model
from attribution.bootstrap import CONSTRAINTS as BOOTSTRAP_CONSTRAINTS
from attribution.bootstrap import bootstrap
from attribution.campaigns import DEFAULT_TOP_N
from attribution.models import Model

from .. import store
from ..problems import problem_for
from ..store import limits, runs
from . import cost, jobs
from .errors import FieldError, InvalidInput, TooManyRequests, Unavailable
from .heartbeat import heartbeat, sweep
from .selection import Selection, load_selection, selection_from, selection_warnings

log = logging.getLogger(__name__)

DEFAULT_MODELS = ("first_touch", "last_touch", "linear", "position_based", "markov", "shapley")
"""Models a run uses when neither the request nor the workspace names any."""

BUILT_IN_SETTINGS: Mapping[str, Any] = {
    "models": list(DEFAULT_MODELS),
    "options": {},
    "lookback_days": None,
    "channel_groups": {},
    "collapse_repeats": False,
    "confidence": None,
}
"""What a run uses for each setting the workspace has not set."""

CONFIDENCE_DEFAULTS = {"level": 0.95, "replicates": 200, "method": "poisson", "seed": 0}
CONFIDENCE_ARGS = {
    "level": "level",
    "replicates": "n_replicates",
    "method": "method",
    "seed": "random_state",
}
TIMED_MODELS = frozenset({"time_decay"})
"""Models that need each touch's time, hence one path per raw journey."""

NO_CAMPAIGNS = (
    "This run asked for campaign credit, but no journey in the selection carries a "
    "campaign: the table has no campaign rows."
)

RUNS_RETRY_AFTER = 10
"""Seconds a request refused for the runs under way is told to wait."""

Stop = Callable[[], "str | None"]
"""Asked before each model: the reason to stop there, or None to go on."""


@dataclass(frozen=True)
class RunPlan:
    """Everything a run needs, defaults applied and options checked."""

    models: tuple[str, ...]
    built: Mapping[str, Model]
    """Each model, built (and so checked) once from its effective options."""
    selection: Selection
    confidence: Mapping[str, Any] | None
    campaigns: Mapping[str, Any] | None = None
    """``{"top_n": N}`` for campaign credit (channel-campaign pairs as states), or None."""

    @property
    def campaign_top_n(self) -> int | None:
        return None if self.campaigns is None else int(self.campaigns["top_n"])

    @property
    def options(self) -> dict[str, dict[str, Any]]:
        """Every hyper-parameter of every model, JSON-ready."""
        return {m: options_of(self.built[m]) for m in self.models}

    @property
    def need_times(self) -> bool:
        return any(m in TIMED_MODELS for m in self.models)

    def parameters(self) -> dict[str, Any]:
        """What the run records and the cache is keyed on: every effective value."""
        return {
            "models": list(self.models),
            "options": self.options,
            **self.selection.parameters(),
            "confidence": None if self.confidence is None else dict(self.confidence),
            "campaigns": None if self.campaigns is None else dict(self.campaigns),
        }

    def parameters_hash(self) -> str:
        text = json.dumps(self.parameters(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def new_run(self) -> runs.NewRun:
        s = self.selection
        return runs.NewRun(
            parameters=self.parameters(),
            parameters_hash=self.parameters_hash(),
            date_from=s.date_from,
            date_to=s.date_to,
            filtered=s.has_filters,
            models_total=len(self.models),
        )


@dataclass(frozen=True)
class Pointers:
    """Where a request carries model options and confidence settings (for errors)."""

    options: str = ""
    confidence: str = "/confidence"


QUERY_POINTERS = Pointers(options="/query/options", confidence="/query/confidence")


def plan_run(
    data: Mapping[str, Any], defaults: Mapping[str, Any], pointers: Pointers = Pointers()
) -> RunPlan:
    """Merge a loaded request with workspace defaults; raise InvalidInput on bad options.

    Request options for a model are laid over the workspace's options for it, key by
    key; ``confidence`` given as null turns a default off.
    """
    models = tuple(data.get("models") or defaults.get("models") or DEFAULT_MODELS)
    given = data.get("options") or {}
    older = {m: data[m] for m in models if m in data}  # each model's options under its name
    default_options = defaults.get("options") or {}
    built = {}
    for m in models:
        merged = {**default_options.get(m, {}), **older.get(m, {}), **given.get(m, {})}
        base = pointers.options or ("/options" if m in given else "")
        built[m] = build_model(m, merged, base)
    confidence = data["confidence"] if "confidence" in data else defaults.get("confidence")
    campaigns = data.get("campaigns")
    return RunPlan(
        models=models,
        built=built,
        selection=selection_from(data, defaults),
        confidence=None if confidence is None else check_confidence(confidence, pointers),
        campaigns=None if campaigns is None else {"top_n": DEFAULT_TOP_N, **campaigns},
    )


def build_model(model: str, options: Mapping[str, Any], base: str = "") -> Model:
    """``model`` with ``options`` applied, checked by the engine; a bad option is
    invalid input pointing at it (under ``base``)."""
    try:
        return get_model(model, **options)
    except InvalidParameter as e:
        key = e.name.split(".")[-1]
        raise InvalidInput(str(e), [FieldError(f"{base}/{model}/{key}", str(e))]) from None


def options_of(model: Model) -> dict[str, Any]:
    """Every hyper-parameter of a built model, JSON-ready."""
    return json.loads(json.dumps(dataclasses.asdict(model)))  # type: ignore[call-overload, no-any-return]


def check_confidence(given: Mapping[str, Any], pointers: Pointers = Pointers()) -> dict[str, Any]:
    """Confidence settings with defaults filled in, checked against the bootstrap's limits."""
    merged = {**CONFIDENCE_DEFAULTS, **given}
    for key, arg in CONFIDENCE_ARGS.items():
        param = BOOTSTRAP_CONSTRAINTS[arg]
        if not param.accepts(merged[key]):
            detail = f"{key}={merged[key]!r} is not allowed: {key} must be {param.describe()}"
            raise InvalidInput(detail, [FieldError(f"{pointers.confidence}/{key}", detail)])
    return merged


# ---------------------------------------------------------------------- running
class RunCancelled(Exception):
    """The run was told to stop (its time limit, its worker stopping); it stops before
    its next model."""


class RetryLater(Exception):
    """A try of a background run that may succeed later; the run is queued again."""


Claim = Callable[[Any, str], None]
"""Called with the transaction and the id of a run being recorded; raising undoes it."""


def start(
    db: store.Database,
    workspace_id: int,
    plan: RunPlan,
    status: str = "queued",
    *,
    max_runs: int = 0,
    claim: Claim | None = None,
) -> str:
    """Record a new synchronous run, held by this process until :func:`execute` ends it.
    ``claim`` runs in the same transaction (a saved report claiming the run)."""
    with db.transaction() as conn:
        check_room(conn, workspace_id, max_runs)
        run_id = runs.create_run(conn, workspace_id, plan.new_run(), status)
        if claim is not None:
            claim(conn, run_id)
    heartbeat.hold(db, workspace_id, run_id)
    return run_id


def check_room(conn: Any, workspace_id: int, max_runs: int) -> None:
    """Raise TooManyRequests when the workspace has ``max_runs`` runs unfinished (0: no
    limit). Holds the workspace's run starts until the caller's transaction ends, so the
    run it records next is counted by the next request."""
    if max_runs <= 0:
        return
    limits.lock_run_starts(conn, workspace_id)
    sweep(conn, workspace_id)
    if limits.count_unfinished_runs(conn, workspace_id) < max_runs:
        return
    raise TooManyRequests(
        f"This workspace has {max_runs} attribution runs queued or running, its most at "
        "once; start another when one has finished.",
        retry_after=RUNS_RETRY_AFTER,
    )


def check_sync_budget(
    db: store.Database,
    workspace_id: int,
    plan: RunPlan,
    budget: int,
    pointers: Pointers = Pointers(),
) -> cost.Estimate:
    """The plan's estimated work; raise InvalidInput when it is over ``budget``, too much
    to run synchronously.

    The estimate reads the selection's unique paths, which this process keeps for the
    run to read again (:func:`load_selection`).
    """
    with db.transaction() as conn:
        version = runs.data_version(conn, workspace_id)
        paths = load_selection(
            conn, workspace_id, plan.selection, version=version, campaign_top_n=plan.campaign_top_n
        )
    found = cost.estimate(plan.built, plan.confidence, paths)
    if found.work <= budget:
        return found
    ci = f" x {found.replicates} bootstrap replicates" if plan.confidence is not None else ""
    detail = (
        f"This run is too much work for a synchronous request: {len(plan.models)} models "
        f"over {found.unique_paths} unique paths with {found.players} players{ci} is an "
        f"estimated {found.work:,} units, over the budget of {budget:,}. Start it with "
        "POST /v1/attribution/runs, or ask for fewer models, replicates or channels."
    )
    if plan.confidence is not None:
        pointer = f"{pointers.confidence}/replicates"
    else:
        pointer = pointers.confidence.rsplit("/", 1)[0] + "/models"
    raise InvalidInput(detail, [FieldError(pointer, detail)])


def run_sync(
    db: store.Database,
    workspace_id: int,
    plan: RunPlan,
    timeout: float,
    pointers: Pointers = Pointers(),
    *,
    budget: int,
    max_runs: int = 0,
    claim: Claim | None = None,
) -> str:
    """Create and execute a run, waiting at most ``timeout`` seconds; returns its id.

    A plan whose estimated work is over ``budget`` is refused first (422), and so is
    one more run than ``max_runs`` unfinished in the workspace (429). Past the time
    limit the run is told to stop before its next model and recorded as failed, and
    the request gets a 503 problem pointing at the asynchronous route. ``claim`` is
    called as the run is recorded (see :func:`start`).
    """
    check_sync_budget(db, workspace_id, plan, budget, pointers)
    run_id = start(db, workspace_id, plan, max_runs=max_runs, claim=claim)
    cancel = threading.Event()
    outcome: dict[str, BaseException] = {}

    def stop() -> str | None:
        return "the run passed its time limit" if cancel.is_set() else None

    def target() -> None:
        try:
            execute(db, workspace_id, run_id, plan, stop)
        except BaseException as e:  # handed to the waiting request
            outcome["error"] = e

    worker = threading.Thread(target=target, name=f"run-{run_id}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        cancel.set()
        raise Unavailable(
            f"Run {run_id} did not finish within the {timeout:g} s limit and was stopped. "
            "Start long runs with POST /v1/attribution/runs and poll them.",
            retry_after=60,
        )
    if "error" in outcome:
        raise outcome["error"]
    return run_id


def run_async(db: store.Database, workspace_id: int, plan: RunPlan, *, max_runs: int = 0) -> str:
    """Record a run and queue its job, in one transaction; returns the run's id at once
    (429 when the workspace has ``max_runs`` runs unfinished)."""
    with db.transaction() as conn:
        check_room(conn, workspace_id, max_runs)
        run_id = runs.create_run(conn, workspace_id, plan.new_run(), "queued")
        runs.set_job(conn, workspace_id, run_id, jobs.defer_run(conn, workspace_id, run_id))
    return run_id


def execute(
    db: store.Database,
    workspace_id: int,
    run_id: str,
    plan: RunPlan,
    stop: Stop | None = None,
    *,
    retry: bool = False,
    tries: int = 1,
    patience: float = 0.0,
) -> None:
    """Run ``plan`` as run ``run_id``: status, progress, table; failures are recorded.

    With ``retry``, a lost database or a stop puts the run back in the queue and raises
    :class:`RetryLater`; otherwise every failure is recorded on the run, with its true
    reason, and raised. ``patience`` is how long to wait for a lost database before
    recording anything (a background run's worker can wait; a request cannot).
    """
    version: int | None = None
    try:
        with db.transaction() as conn:
            runs.mark_running(conn, workspace_id, run_id)
        version, paths, notes = _read(db, workspace_id, plan)
        rows, warnings = _run_models(db, workspace_id, run_id, plan, paths, notes, stop)
        with db.transaction() as conn:
            runs.finish_run(
                conn, workspace_id, run_id, version=version, totals=totals(paths),
                warnings=warnings, rows=rows,
            )  # fmt: skip
    except BaseException as e:
        if isinstance(e, store.UnavailableError) and patience > 0:
            log.warning("run %s lost the database: %s", run_id, e)
            wait_for_database(db, patience)
        if retry and isinstance(e, (store.UnavailableError, RunCancelled)):
            _record(db, lambda conn: runs.requeue(conn, workspace_id, run_id))
            raise RetryLater(f"run {run_id}: {e}") from e
        body = problem_for(failure(e, tries)).body()
        _record(db, lambda conn: runs.fail_run(conn, workspace_id, run_id, body, version=version))
        error = as_service_error(e)
        if error is not e:
            raise error from None
        raise
    finally:
        heartbeat.release(run_id)


def execute_job(
    db: store.Database,
    workspace_id: int,
    run_id: str,
    *,
    tries: int,
    final: bool,
    stop: Stop | None = None,
    patience: float = 0.0,
) -> None:
    """One try of a background run's job: execute the stored run unless it has ended.

    Raises :class:`RetryLater` when a try that is not the ``final`` one may succeed
    later; the engine's refusals and other errors fail the run at once.
    """
    try:
        with db.transaction() as conn:
            run = runs.get_run(conn, workspace_id, run_id)
    except store.NotFoundError:
        log.warning("run %s is gone (its workspace was deleted): nothing to do", run_id)
        return
    except store.UnavailableError as e:
        if patience > 0:
            wait_for_database(db, patience)
        if not final:
            raise RetryLater(f"run {run_id}: {e}") from e
        body = problem_for(failure(e, tries)).body()
        _record(db, lambda conn: runs.fail_run(conn, workspace_id, run_id, body))
        raise
    if run["status"] in ("succeeded", "failed"):
        return  # an earlier try recorded the outcome before its job could
    plan = plan_from_parameters(run["parameters"])
    execute(db, workspace_id, run_id, plan, stop, retry=not final, tries=tries, patience=patience)


def requeue(db: store.Database, workspace_id: int, run_id: str) -> None:
    """Put a run whose job stalled back in the queued state."""
    with db.transaction() as conn:
        runs.requeue(conn, workspace_id, run_id)


def fail_stalled(
    db: store.Database, workspace_id: int, run_id: str, *, tries: int, silent_seconds: float
) -> None:
    """Fail a run whose job stalled on its last try, saying so (unless that try recorded
    the run's outcome before its worker went)."""
    problem = Unavailable(
        f"The run was tried {tries} times; the worker running the last try stopped "
        f"reporting for {silent_seconds:g} s (its process ended, or it lost its "
        "connection to the database) before the run finished. Start it again."
    )
    with db.transaction() as conn:
        try:
            status = runs.get_run(conn, workspace_id, run_id)["status"]
        except store.NotFoundError:
            return  # its workspace was deleted
        if status in ("queued", "running"):
            runs.fail_run(conn, workspace_id, run_id, problem_for(problem).body())


def wait_for_database(db: store.Database, patience: float, interval: float = 1.0) -> bool:
    """Wait up to ``patience`` seconds for the database to answer; whether it does."""
    deadline = time.monotonic() + patience
    while True:
        try:
            with db.transaction() as conn:
                runs.data_version(conn, 0)
            return True
        except store.UnavailableError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def _record(db: store.Database, write: Callable[[Any], None]) -> None:
    """Write a run's outcome; when the database refuses, log it and let the caller's
    error go on (a job that stalls this way is recovered by the queue)."""
    try:
        with db.transaction() as conn:
            write(conn)
    except store.UnavailableError:
        log.exception("could not record the outcome of a run")


def _read(db: store.Database, workspace_id: int, plan: RunPlan) -> tuple[int, PathSet, list[str]]:
    """The data version, the selected paths and caveats, all from one snapshot."""
    with db.transaction() as conn:
        runs.begin_snapshot(conn)
        version = runs.data_version(conn, workspace_id)
        need, top_n = plan.need_times, plan.campaign_top_n
        paths = load_selection(conn, workspace_id, plan.selection, need_times=need,
                               version=version, campaign_top_n=top_n)  # fmt: skip
        notes = selection_warnings(conn, workspace_id, plan.selection, need_times=need,
                                   paths=paths, campaigns=top_n is not None)  # fmt: skip
    if top_n is not None and not paths.has_campaigns:
        notes.append(NO_CAMPAIGNS)
    return version, paths, notes


def _run_models(
    db: store.Database,
    workspace_id: int,
    run_id: str,
    plan: RunPlan,
    paths: PathSet,
    notes: list[str],
    stop: Stop | None,
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    unique = paths.aggregate() if plan.need_times else paths
    rows: list[dict[str, Any]] = []
    warnings: dict[str, list[str]] = {}
    for done, model in enumerate(plan.models, start=1):
        if stop is not None and (reason := stop()):
            raise RunCancelled(f"stopped before {model}: {reason}")
        credit = credit_of(model, plan, paths if model in TIMED_MODELS else unique)
        rows.extend(credit.to_rows())
        warnings[model] = [*notes, *credit.warnings]
        with db.transaction() as conn:
            runs.set_progress(conn, workspace_id, run_id, done)
    return rows, warnings


def credit_of(model: str, plan: RunPlan, paths: PathSet) -> Credit:
    """One model's credit, with bootstrap intervals when the plan asks for them."""
    fitted = plan.built[model]
    if plan.confidence is None:
        return fitted.attribute(paths)
    args = {CONFIDENCE_ARGS[k]: v for k, v in plan.confidence.items()}
    return bootstrap(fitted, paths, **args)


def totals(paths: PathSet) -> dict[str, Any]:
    conversions, nulls = paths.total_conversions, paths.total_nulls
    journeys = conversions + nulls
    return {
        "journeys": journeys,
        "conversions": conversions,
        "value": paths.total_value,
        "conversion_rate": conversions / journeys if journeys else None,
    }


def as_service_error(error: BaseException) -> BaseException:
    """What a failed run raises: being stopped is the service being unavailable; other
    errors stay as they are."""
    if isinstance(error, RunCancelled):
        return Unavailable(f"The run was stopped: {error}.")
    return error


def failure(error: BaseException, tries: int = 1) -> BaseException:
    """What a failed run records: :func:`as_service_error`, and a lost database said
    as such (its address stays in the log)."""
    if isinstance(error, store.UnavailableError):
        times = f" (tried {tries} times)" if tries > 1 else ""
        return Unavailable(
            f"The database was unavailable while the run executed{times}; start it again."
        )
    return as_service_error(error)


def plan_from_parameters(parameters: Mapping[str, Any]) -> RunPlan:
    """The plan a stored run ran (its parameters already hold every effective value)."""
    selection = {
        k: parameters.get(k)
        for k in ("filters", "channel_groups", "collapse_repeats", "lookback_days")
    }
    for key in ("date_from", "date_to"):
        if parameters.get(key):
            selection[key] = date.fromisoformat(parameters[key])
    models = tuple(parameters["models"])
    return RunPlan(
        models=models,
        built={m: build_model(m, parameters["options"][m]) for m in models},
        selection=selection_from(selection),
        confidence=parameters.get("confidence"),
        campaigns=parameters.get("campaigns"),
    )


def table_notes(run: Mapping[str, Any]) -> list[str]:
    """A run's warnings for a table's headers: a note every model has (what the
    selection left out) once, a model's own note prefixed with the model."""
    by_model: Mapping[str, Sequence[str]] = run.get("warnings") or {}
    shared = set.intersection(*(set(n) for n in by_model.values())) if by_model else set()
    notes = [n for n in next(iter(by_model.values()), []) if n in shared]
    for model, model_notes in by_model.items():
        notes += [f"{model}: {n}" for n in model_notes if n not in shared]
    return notes
