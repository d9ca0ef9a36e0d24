"""The ``patchfleet`` command line. Thin: it validates input, then runs the same flows the
deployments run, and prints what they return.

Exit codes: 0 the run completed (non-compliant nodes included); 2 bad input (nothing was
scanned or written); 3 the error threshold stopped an install rollout; 4 the Prefect API
stopped answering during a run (the message says whether the run reached the store); 1 any
other error (store not writable, Prefect could not start, ...).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
import yaml
from pydantic import ValidationError
from rich.markup import escape

from patchfleet.atomicio import write_atomic
from patchfleet.cli import progress, render
from patchfleet.cli.prefect_api import check_api
from patchfleet.config import prefect_env
from patchfleet.config.allowed_operations import check_operations
from patchfleet.domain.baseline import Baseline
from patchfleet.domain.model_errors import short_repr
from patchfleet.domain.requests import Operation, PatchRequest
from patchfleet.errors import InputError, PatchfleetError
from patchfleet.ops.summary import RunSummary
from patchfleet.store.query import ANALYST_VIEWS, ComplianceStore

if TYPE_CHECKING:
    from patchfleet.store.location import StoreLocation

app = typer.Typer(
    name="patchfleet",
    help="Agentless patch compliance and patching for Linux fleets (AWS Patch Manager "
    "semantics over SSH, on Prefect, with a Parquet/DuckDB compliance store).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # click's plain help: at 80 columns rich's boxed table squeezed the help into a narrow
    # column and cut defaults off (install --help ran to 98 lines)
    rich_markup_mode=None,
)
baseline_app = typer.Typer(help="Validate, show, import and export patch baselines.",
                           no_args_is_help=True, rich_markup_mode=None)
app.add_typer(baseline_app, name="baseline")
deployments_app = typer.Typer(help="Validate patch policies and maintenance windows and "
                              "deploy them to a Prefect server.",
                              no_args_is_help=True, rich_markup_mode=None)
app.add_typer(deployments_app, name="deployments")
store_app = typer.Typer(help="Check the compliance store: damaged files, leftovers of killed "
                        "runs.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(store_app, name="store")

out = render.console()
err = render.console(stderr=True)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


_QUERY_HELP = (
    "One SELECT over the store's views. Base views: "
    + ", ".join(v for v in ComplianceStore.VIEWS if v not in ANALYST_VIEWS)
    + ". One view per analyst question (README, 'Where data lands'): "
    + ", ".join(ANALYST_VIEWS) + "."
)


class QueryFormat(StrEnum):
    table = "table"
    vertical = "vertical"
    json = "json"
    csv = "csv"


def _fail(error: PatchfleetError) -> NoReturn:
    # The message is text, not markup: "[START:END:STEP]" or an INI "[web]" section must print
    # as written (rich ate the brackets and turned ":END:" into an emoji).
    err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, markup=True,
              emoji=False, soft_wrap=True)
    raise typer.Exit(2 if isinstance(error, InputError) else 1)


def _refuse_empty(*flags: tuple[str, str | list[str] | None]) -> None:
    """An empty value is bad input, never "use the default" (issue 13 #8): ``-b ""`` once
    scanned with the default baselines and ``report --out ""`` wrote to the default folder."""
    for flag, value in flags:
        values = value if isinstance(value, list) else [value]
        if any(v is not None and not v.strip() for v in values):
            raise InputError(f"{flag}: is empty; give a value, or leave the option out")


InventoryOpt = Annotated[
    str | None,
    typer.Option("--inventory", "-i", help="Nodes: patchfleet inventory YAML, an Ansible "
                 "INI/YAML inventory, or ec2://REGION?tag:K=V (EC2 discovery). Default: only "
                 "this machine (the 'local' node)."),
]
TargetsOpt = Annotated[
    str,
    typer.Option("--targets", "-t", help="Comma-separated: '*', node ids (wildcards), "
                 "tag:KEY=VALUE, tag-key:KEY, group:PATCHGROUP, os:OPERATING_SYSTEM."),
]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="Compliance store: a folder, or s3://BUCKET/PREFIX (endpoint, "
                 "region, credentials: the usual AWS settings). Default: $PATCHFLEET_STORE or "
                 "~/.local/share/patchfleet/store."),
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show Prefect's log lines (on a terminal they "
                       "are replaced by a progress line; piped output always has them).")]
BaselinesDirOpt = Annotated[
    str | None,
    typer.Option("--baselines-dir", help="Folder of extra baseline YAML files (they override "
                 "embedded ones of the same name)."),
]



def _print_json(data: object) -> None:
    """JSON on stdout: highlighted on a terminal; plain when piped, where rich's highlighter
    would cost seconds on a 10,000-node summary and add nothing."""
    text = json.dumps(render.json_value(data), default=str, indent=2, allow_nan=False)
    if out.is_terminal:
        out.print_json(text)
    else:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


@app.command()
def scan(
    inventory: InventoryOpt = None,
    targets: TargetsOpt = "*",
    baseline: Annotated[
        str | None,
        typer.Option("--baseline", "-b", help="BaselineOverride: a baseline name, a YAML file, "
                     "or AWS get-patch-baseline JSON (one object or an array, one per OS)."),
    ] = None,
    baselines_dir: BaselinesDirOpt = None,
    store: StoreOpt = None,
    snapshot_id: Annotated[
        str | None, typer.Option("--snapshot-id", help="AWS SnapshotId recorded with the run.")
    ] = None,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh/--no-refresh",
            help="Refresh package metadata first (apt-get update, dnf makecache, zypper "
            "refresh), as AWS does.",
        ),
    ] = True,
    concurrency: Annotated[int, typer.Option(help="Nodes scanned at once.")] = 50,
    batch_size: Annotated[int, typer.Option(help="Nodes per Prefect task.")] = 100,
    lock_timeout: Annotated[
        int, typer.Option(help="Seconds to wait for a held package-manager lock.")
    ] = 60,
    report_dir: Annotated[
        str | None, typer.Option(help="Where CSV reports go. Default: STORE/reports/RUN_ID "
                                 "(for a store on S3: ~/.local/share/patchfleet/reports/RUN_ID).")
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
    verbose: VerboseOpt = False,
) -> None:
    """Scan nodes against their patch baselines (AWS-RunPatchBaseline Operation=Scan)."""
    from patchfleet.ops.plan import plan_scan

    params: dict[str, Any] = dict(
        operation=Operation.SCAN,
        inventory=inventory,
        targets=targets,
        baselines_dir=baselines_dir,
        store=store,
        refresh=refresh,
        concurrency=concurrency,
        lock_timeout=lock_timeout,
    )
    try:
        check_operations([Operation.SCAN])  # PATCHFLEET_OPERATIONS, before anything is planned
        _refuse_empty(("--baseline", baseline), ("--targets", targets))
        request = _request(**params, baseline_override=baseline, snapshot_id=snapshot_id,
                           batch_size=batch_size, report_dir=report_dir)
        plan = plan_scan(baseline=baseline, **params)
    except PatchfleetError as e:
        _fail(e)
    if output is OutputFormat.table:
        err.print(
            f"Scanning {len(plan.nodes)} node(s) from {plan.inventory_source}"
            f"{' (before os: selectors are checked)' if 'os:' in targets else ''}; store "
            f"{plan.store_root}",
            highlight=False,
        )
    summary = _run_flow(request, len(plan.nodes), "scanned", verbose)
    if output is OutputFormat.json:
        _print_json(summary.output())
    else:
        _print_summary(summary)


@app.command()
def install(
    inventory: InventoryOpt = None,
    targets: TargetsOpt = "*",
    baseline: Annotated[
        str | None,
        typer.Option("--baseline", "-b", help="BaselineOverride (name, YAML or AWS JSON)."),
    ] = None,
    baselines_dir: BaselinesDirOpt = None,
    store: StoreOpt = None,
    snapshot_id: Annotated[str | None, typer.Option("--snapshot-id")] = None,
    reboot_option: Annotated[
        str,
        typer.Option(help="RebootIfNeeded (AWS default), NoReboot, or RebootIfRequired "
                     "(reboot only when the OS says so)."),
    ] = "RebootIfNeeded",
    install_override_list: Annotated[
        str | None,
        typer.Option(help="InstallOverrideList YAML: a path, https:// or s3:// URL. Installs "
                     "exactly that list; refused together with --baseline."),
    ] = None,
    hooks: Annotated[
        str | None,
        typer.Option(help="YAML file with pre_install / post_install / on_exit hooks "
                     "({command: ...} or {script: file}, timeout)."),
    ] = None,
    max_concurrency: Annotated[
        str | None, typer.Option(help="Nodes at once: a number or a percentage. Default: AWS "
                                 "Patch now tiers by fleet size.")
    ] = None,
    max_errors: Annotated[
        str | None, typer.Option(help="Failed nodes tolerated before no new node starts: a "
                                 "number or a percentage. Default: Patch now tiers.")
    ] = None,
    refresh: Annotated[bool, typer.Option("--refresh/--no-refresh")] = True,
    lock_timeout: Annotated[
        int, typer.Option(help="Seconds to wait for a held package-manager lock.")
    ] = 60,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Scan and print the exact plan per node; change "
                           "nothing, write nothing.")
    ] = False,
    report_dir: Annotated[str | None, typer.Option(help="Where CSV reports go.")] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
    verbose: VerboseOpt = False,
) -> None:
    """Scan and install approved patches (AWS-RunPatchBaseline Operation=Install), with reboot
    options, lifecycle hooks and rate control. Exit 3 when the error threshold stopped the run."""
    from patchfleet.ops.plan import plan_install_settings, plan_scan

    params: dict[str, Any] = dict(
        operation=Operation.INSTALL, inventory=inventory, targets=targets,
        baselines_dir=baselines_dir, store=store, refresh=refresh, lock_timeout=lock_timeout,
    )
    extra: dict[str, Any] = dict(
        reboot_option=reboot_option, install_override_list=install_override_list,
        hooks=hooks, max_concurrency=max_concurrency, max_errors=max_errors, dry_run=dry_run,
    )
    try:
        check_operations([Operation.INSTALL])  # PATCHFLEET_OPERATIONS, before anything else
        _refuse_empty(("--baseline", baseline), ("--targets", targets),
                      ("--install-override-list", install_override_list), ("--hooks", hooks),
                      ("--max-concurrency", max_concurrency), ("--max-errors", max_errors))
        request = _request(**params, baseline_override=baseline, snapshot_id=snapshot_id,
                           report_dir=report_dir, **extra)
        # checked before the scan is planned, which creates the store folder (the node count
        # only picks default rates, so one node checks the same)
        plan_install_settings(nodes=1, baseline_override=baseline, **extra)
        plan = plan_scan(baseline=baseline, **params)
    except PatchfleetError as e:
        _fail(e)
    summary = _run_flow(request, len(plan.nodes), "planned" if dry_run else "patched",
                        verbose)
    if output is OutputFormat.json:
        _print_json(summary.output())
    else:
        if summary.dry_run:
            for node_id, lines in summary.plans.items():
                out.print(f"[bold]{node_id}[/]")
                for line in lines or ["nothing to install"]:
                    out.print(f"  {line}", highlight=False)
        else:
            _print_summary(summary)
    if summary.stopped:
        err.print("[bold red]the error threshold (max errors) stopped the rollout[/]")
        raise typer.Exit(3)


_FLAGS = {"snapshot_id": "--snapshot-id", "batch_size": "--batch-size",
          "concurrency": "--concurrency", "lock_timeout": "--lock-timeout",
          "report_dir": "--report-dir"}


def _request(**fields: Any) -> PatchRequest:
    """The run's request, checked before anything starts or is written: an InputError naming
    the flag instead of a pydantic traceback after Prefect started."""
    try:
        request = PatchRequest(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "request"
        flag = _FLAGS.get(name, "--" + name.replace("_", "-"))
        shown = short_repr(first.get("input"))
        fix = (" (1-128 of A-Z a-z 0-9 . _ -; a GUID works)" if name == "snapshot_id" else "")
        raise InputError(f"{flag}: {shown}: {first['msg']}{fix}") from None
    if request.report_dir is not None:
        folder = Path(request.report_dir).expanduser()
        if not request.report_dir.strip() or (folder.exists() and not folder.is_dir()):
            raise InputError(f"--report-dir: {request.report_dir!r} is not a folder; give a "
                             "folder (it is created if missing)")
    return request


def _run_flow(request: PatchRequest, total: int, verb: str, verbose: bool) -> RunSummary:
    """Run the ``patch-nodes`` flow on ``request`` (the deployments run the same flow), with
    a progress line on a terminal instead of Prefect's log lines (unless ``verbose``).

    Without ``PREFECT_API_URL`` the temporary server dies with this process, however it ends,
    runs an earlier CLI left RUNNING when it was killed are marked Crashed first, and a server
    that stops answering fails fast (two retries, not Prefect's five)."""
    live = progress.quiet_prefect_console(verbose, err)
    prefect_env.apply_defaults()
    try:
        check_api()
    except PatchfleetError as e:
        _fail(e)
    from patchfleet.cli import crashed_runs
    from patchfleet.ops import progress as run_progress

    if not os.environ.get("PREFECT_API_URL"):
        os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "2")
        crashed_runs.tie_temporary_server()
    try:
        for run_id in crashed_runs.mark_crashed_runs():
            err.print(f"note: run {run_id} was left running by a patchfleet CLI that was "
                      "killed; marked Crashed in Prefect", highlight=False, soft_wrap=True)
    except Exception as exc:  # bookkeeping of earlier runs must never stop this one
        err.print(f"note: could not check for runs left by a killed CLI: {exc}",
                  highlight=False, soft_wrap=True)
    from flows.patch_nodes import patch_nodes

    if not verbose:
        progress.one_line_prefect_errors()
    try:
        with progress.display(err, total, verb, live):
            result: RunSummary = asyncio.run(patch_nodes(**request.flow_parameters()))
    except PatchfleetError as e:
        _fail(e)
    except Exception as exc:
        if not _api_lost(exc):
            raise
        _api_lost_exit(exc, run_progress.last_finished())
    return result


def _api_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is the Prefect API failing: a transport error, an
    HTTP error status from the API, or Prefect's "Failed to reach API"."""
    import httpx

    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, httpx.TransportError | httpx.HTTPStatusError) or (
                "Failed to reach API" in str(seen)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _api_lost_exit(exc: BaseException, finished: RunSummary | None) -> NoReturn:
    """One line for a Prefect API that stopped answering mid-run, then exit 4 at once: Prefect's
    own shutdown would retry the dead API for another minute."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    why = text if len(text) <= 160 else text[:157] + "..."
    if finished is not None:
        if finished.nodes:
            _print_summary(finished)
        line = (f"the Prefect API stopped answering ({why}) after run {finished.run_id} "
                f"finished: it is complete in the store ({finished.store}) and its reports "
                "were written; only Prefect's record of the run is incomplete")
        err.print(f"[bold red]error:[/] {escape(line)}", highlight=False, markup=True,
                  emoji=False, soft_wrap=True)
    else:
        err.print(f"[bold red]error:[/] the Prefect API stopped answering during the run "
                  f"({escape(why)}); the run did not finish and nothing was stored for it: "
                  "check the Prefect server (or unset PREFECT_API_URL) and run it again",
                  highlight=False, markup=True, emoji=False, soft_wrap=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(4)


def _require_local_store(location: StoreLocation) -> None:
    """A local store that is not there is bad input: a typo in --store looked like an empty
    fleet (``store check`` said all is well, ``report`` blamed the runs)."""
    if not location.is_s3 and not location.local.is_dir():
        raise InputError(f"--store: there is no compliance store at {location.local}; run a "
                         "scan first, or pass --store (or PATCHFLEET_STORE) with the store's "
                         "folder")


def _print_summary(summary: RunSummary) -> None:
    render.print_summary(out, summary)


@app.command()
def evaluate(
    baseline: Annotated[str, typer.Option(
        "--baseline", "-b", help="The baseline to judge with: a name, a YAML file, or AWS "
        "get-patch-baseline JSON (one object or an array, one per OS). Nodes of other OSes "
        "are skipped.")],
    run_id: Annotated[str | None, typer.Option(
        "--run-id", help="Judge the facts this run stored (default: each node's latest).")
    ] = None,
    latest: Annotated[bool, typer.Option(
        "--latest", help="Judge each node's latest stored facts (the default).")] = False,
    targets: TargetsOpt = "*",
    baselines_dir: BaselinesDirOpt = None,
    store: StoreOpt = None,
    at: Annotated[str | None, typer.Option(
        "--at", help="Judge as of this time (ISO 8601, UTC unless it says otherwise), e.g. "
        "to see what an approval delay releases next week. Default: now.")] = None,
    save: Annotated[bool, typer.Option(
        "--save", help="Store the evaluation as a run flagged what_if (never in the "
        "latest-state views or the compliance history).")] = False,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
) -> None:
    """What-if: judge stored facts with any baseline, without contacting a node."""
    from patchfleet.cli import evaluate as what_if_cli
    from patchfleet.domain.selectors import parse_targets
    from patchfleet.ops.plan import load_override, load_registry
    from patchfleet.ops.what_if import evaluate_stored, parse_at
    from patchfleet.store.location import StoreLocation

    try:
        if run_id is not None and latest:
            raise InputError("--run-id and --latest: give one (--latest is the default)")
        for flag, value in (("--baseline", baseline), ("--run-id", run_id),
                            ("--store", store), ("--baselines-dir", baselines_dir)):
            if value is not None and not value.strip():
                raise InputError(f"{flag}: is empty; give a value, or leave the option out")
        when = parse_at(at)
        parse_targets(targets)
        baselines = load_override(baseline, load_registry(baselines_dir))
        location = StoreLocation.resolve(store)
        _require_local_store(location)
        outcome = evaluate_stored(location, baselines, run_id=run_id, targets=targets,
                                  at=when, save=save)
    except PatchfleetError as e:
        _fail(e)
    if output is OutputFormat.json:
        _print_json(what_if_cli.as_json(outcome, str(location)))
    else:
        what_if_cli.print_outcome(out, outcome, str(location))


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help=_QUERY_HELP)],
    store: StoreOpt = None,
    output: Annotated[QueryFormat, typer.Option(
        "--format", "--output", "-o",
        help="table (columns empty in every row left out), vertical (one line per field: "
             "reads well at 80 columns), csv (lists as one field, items joined by ';'), json "
             "(lists as arrays); timestamps are ISO-8601.")] = QueryFormat.table,
) -> None:
    """Run SQL on the compliance store with DuckDB."""
    from patchfleet.store.location import StoreLocation

    try:
        location = StoreLocation.resolve(store)
        _require_local_store(location)
        with ComplianceStore(location) as cs:
            columns, rows = cs.query(sql)
            skipped = dict(cs.skipped)
    except PatchfleetError as e:
        _fail(e)
    for path, why in skipped.items():
        err.print(f"warning: left out {path}: {why}; run patchfleet store check --quarantine",
                  highlight=False, soft_wrap=True)
    if output is QueryFormat.json:
        render.write_json(sys.stdout, columns, rows)
    elif output is QueryFormat.csv:
        render.write_csv(sys.stdout, columns, rows)
    else:
        hidden = render.print_rows(out, columns, rows, output is QueryFormat.vertical)
        note = f"; {len(hidden)} empty column(s) not shown" if hidden else ""
        err.print(f"{len(rows)} row(s){note}", highlight=False)


@app.command()
def report(
    store: StoreOpt = None,
    run_id: Annotated[str | None, typer.Option(help="Run to report on. Default: each node's "
                                               "latest run.")] = None,
    out_dir: Annotated[str | None, typer.Option("--out", help="Folder for the CSVs. Default: "
                                                "STORE/reports/<run id or 'latest'> (for a "
                                                "store on S3: ~/.local/share/patchfleet/"
                                                "reports/...).")] = None,
    upload: Annotated[str | None, typer.Option(
        "--upload", metavar="s3://BUCKET[/PREFIX]",
        help="Also upload the folder there (manifests last; they name the uploaded objects). "
             "Endpoint, region and credentials: the usual AWS settings (AWS_ENDPOINT_URL_S3, "
             "AWS_PROFILE, AWS_REGION, ...).")] = None,
    node: Annotated[list[str] | None, typer.Option(
        "--node", metavar="ID",
        help="Write the single-node reports of this node only (repeatable). Default: every "
             "node's.")] = None,
    html: Annotated[bool, typer.Option(
        "--html", help="Also write dashboard.html beside the CSVs: one self-contained page "
        "(no network needed) of the fleet's latest state, trend, top missing patches and "
        "CVEs, time to patch and failed nodes; uploaded with the CSVs.")] = False,
) -> None:
    """(Re)write the AWS-format CSV compliance reports from the store, and optionally publish
    them to S3 (any S3 endpoint). Runs write only the all-nodes report; single-node reports
    and the HTML dashboard are written here, on demand."""
    from patchfleet.config.paths import reports_dir
    from patchfleet.domain.uris import normalize_s3_uri
    from patchfleet.report.csv_reports import write_reports_from_store
    from patchfleet.report.dashboard import write_dashboard
    from patchfleet.report.publish import publish_reports
    from patchfleet.store.location import StoreLocation
    from patchfleet.store.query import ComplianceStore

    uris: list[str] = []
    try:
        _refuse_empty(("--store", store), ("--run-id", run_id), ("--out", out_dir),
                      ("--upload", upload), ("--node", node))
        root = StoreLocation.resolve(store)
        _require_local_store(root)
        target = Path(out_dir) if out_dir else reports_dir(root.work_dir, run_id or "latest")
        uri_prefix = normalize_s3_uri(upload, "--upload") if upload else None
        with ComplianceStore(root) as opened:
            files = write_reports_from_store(opened, target, run_id=run_id,
                                             uri_prefix=uri_prefix, detail_nodes=node or None)
            written = [*files, *([write_dashboard(opened, files.folder)] if html else [])]
        for f in written:
            out.print(f"wrote {f}", highlight=False)
        if uri_prefix:
            uris = publish_reports(files.folder, uri_prefix, files=written, source="--upload")
    except PatchfleetError as e:
        _fail(e)
    for uri in uris:
        out.print(f"uploaded {uri}", highlight=False)
    _audit("REPORT", run_id or "latest", store, f"wrote {len(written)} file(s)"
           + (f", uploaded {len(uris)}" if uris else ""), detail=str(files.folder))


@app.command()
def findings(
    account_id: Annotated[str, typer.Option(
        "--account-id", help="The AWS account of the Security Hub (12 digits).")],
    region: Annotated[str | None, typer.Option(
        help="AWS region of the Security Hub. Default: $AWS_REGION / $AWS_DEFAULT_REGION.")
    ] = None,
    store: StoreOpt = None,
    run_id: Annotated[str | None, typer.Option(help="Run to report on. Default: each node's "
                                               "latest run.")] = None,
    out_file: Annotated[str | None, typer.Option(
        "--out", help="The findings file. Default: STORE/reports/<run id or 'latest'>/"
        "asff-findings.json.")] = None,
    send: Annotated[bool, typer.Option(
        "--send", help="Also import them into Security Hub (BatchImportFindings; endpoint and "
        "credentials: the usual AWS settings, e.g. AWS_ENDPOINT_URL_SECURITYHUB).")] = False,
) -> None:
    """Security Hub findings (ASFF), one per non-compliant node, as AWS Patch Manager sends
    them: written to a JSON file and, with --send, imported into Security Hub."""
    from patchfleet.config.paths import reports_dir
    from patchfleet.report import asff
    from patchfleet.store.location import StoreLocation
    from patchfleet.store.query import ComplianceStore

    imported = None
    try:
        where = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not where:
            raise InputError("--region: no region given and neither AWS_REGION nor "
                             "AWS_DEFAULT_REGION is set; pass --region eu-west-1 (say)")
        asff.check_target(account_id, where)
        root = StoreLocation.resolve(store)
        _require_local_store(root)
        with ComplianceStore(root) as cs:
            nodes = asff.nodes_from_store(cs, run_id)
        found = asff.findings(nodes, account_id, where)
        target = Path(out_file) if out_file else (
            reports_dir(root.work_dir, run_id or "latest") / "asff-findings.json")
        asff.write_findings(target, found)
        if send and found:
            imported = asff.send_findings(found, where)
    except PatchfleetError as e:
        _fail(e)
    out.print(f"wrote {len(found)} finding(s) for {len(nodes)} node(s) to {target}",
              highlight=False, soft_wrap=True)
    if imported is not None:
        out.print(f"imported {imported} finding(s) into Security Hub ({where})",
                  highlight=False)
    _audit("FINDINGS", run_id or "latest", store, f"wrote {len(found)} finding(s)"
           + (f", imported {imported} into Security Hub {account_id}/{where}"
              if imported is not None else ""), nodes=len(nodes), detail=str(target))


@app.command()
def sudoers(
    scan_user: Annotated[str, typer.Option(
        "--scan-user", help="The user scans log in as (the inventory's user).")
    ] = "patchfleet-scan",
    install_user: Annotated[str, typer.Option(
        "--install-user", help="The user installs log in as (the inventory's install_user; "
        "the same name as --scan-user gives one user both sets).")] = "patchfleet-install",
    family: Annotated[list[str] | None, typer.Option(
        "--family", help="Package managers of the nodes: apt, dnf, zypper (repeat; default "
        "all three).")] = None,
    hooks_file: Annotated[Path | None, typer.Option(
        "--hooks", help="Also allow the install user exactly the hooks of this hooks file "
        "(command hooks; a script hook is refused).")] = None,
    out_file: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the rules to this file (default: print them).")] = None,
) -> None:
    """Print the sudoers rules that let the scan user and the install user run, as root,
    exactly the commands patchfleet runs as root (and nothing else): install them on each node
    in /etc/sudoers.d/patchfleet (sudo >= 1.9.10)."""
    from patchfleet.config.hooks import load_hooks_file
    from patchfleet.ops.sudoers import FAMILIES, render_sudoers

    _refuse_empty(("--scan-user", scan_user), ("--install-user", install_user),
                  ("--family", family))
    try:
        hooks = load_hooks_file(hooks_file) if hooks_file else None
        line = " ".join(["patchfleet sudoers", f"--scan-user {scan_user}",
                         f"--install-user {install_user}",
                         *(f"--family {f}" for f in family or ()),
                         *([f"--hooks {hooks_file}"] if hooks_file else [])])
        text = render_sudoers(scan_user=scan_user, install_user=install_user,
                              families=tuple(family or FAMILIES), hooks=hooks,
                              command_line=line)
    except PatchfleetError as e:
        _fail(e)
    if out_file is None:
        sys.stdout.write(text)
        return
    try:
        write_atomic(out_file, text)
    except OSError as e:
        _fail(InputError(f"--out {out_file}: cannot write it ({e.strerror}); pick a writable "
                         "path"))
    out.print(f"wrote the sudoers rules to {out_file}; check them with 'visudo -c -f "
              f"{out_file}'", highlight=False, soft_wrap=True)


@baseline_app.command("validate")
def baseline_validate(
    files: Annotated[list[Path], typer.Argument(help="Baseline YAML or AWS JSON files.")],
) -> None:
    """Check baseline files; exit 2 naming the file and field of the first problem."""
    from patchfleet.config.baselines import load_aws_json_file, load_baseline

    try:
        for f in files:
            loaded = load_aws_json_file(f) if f.suffix.lower() == ".json" else [load_baseline(f)]
            for b in loaded:
                out.print(f"{f}: {b.name} ({b.operating_system}) is valid", highlight=False)
                _warn_ignored_delays(f, b)
    except PatchfleetError as e:
        _fail(e)


def _warn_ignored_delays(path: Path, b: Baseline) -> None:
    """Say which delays an apt baseline carries that AWS's behaviour (the default) ignores."""
    for field in b.ignored_delays():
        err.print(f"warning: {path}: {field} is ignored on {b.operating_system.value}, as in AWS "
                  "(apt publishes no release dates: updates are approved at once); set "
                  "staged_approval: true to count it from the first time the fleet saw each "
                  "version", highlight=False, soft_wrap=True)


@baseline_app.command("show")
def baseline_show(
    name: str,
    baselines_dir: BaselinesDirOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="yaml or aws-json")] = "yaml",
) -> None:
    """Print a baseline (embedded or from --baselines-dir) as YAML or AWS JSON."""
    from patchfleet.config.baselines import to_yaml_data
    from patchfleet.domain.baseline_aws import to_aws_json
    from patchfleet.ops.plan import load_registry

    try:
        b = load_registry(baselines_dir).get(name)
    except PatchfleetError as e:
        _fail(e)
    if fmt == "aws-json":
        out.print_json(json.dumps(to_aws_json(b)))
    elif fmt == "yaml":
        sys.stdout.write(yaml.safe_dump(to_yaml_data(b), sort_keys=False))
    else:
        _fail(InputError(f"--format: {fmt!r} is not yaml or aws-json"))


@store_app.command("check")
def store_check(
    store: StoreOpt = None,
    quarantine_files: Annotated[bool, typer.Option(
        "--quarantine", help="Move damaged files to STORE/_quarantine/ and delete leftovers of "
        "killed runs.")] = False,
) -> None:
    """List damaged Parquet files (left out of every query) and leftovers of killed runs
    (.tmp files, staging folders untouched for an hour). Exit 1 while any remain."""
    from patchfleet.store.integrity import check_store, quarantine
    from patchfleet.store.location import StoreLocation

    try:
        _refuse_empty(("--store", store))
        location = StoreLocation.resolve(store)
        _require_local_store(location)
        if location.is_s3:
            raise InputError(f"--store: {location} is on S3: runs there are committed by "
                             "markers, so a damaged upload is never read; store check is for "
                             "local stores")
    except PatchfleetError as e:
        _fail(e)
    health = check_store(location.local)
    files = sum(len(v) for v in health.good.values())
    out.print(f"{location}: {files} readable data file(s), {len(health.damaged)} damaged, "
              f"{len(health.leftovers)} leftover(s) of killed runs", highlight=False)
    for path, why in health.damaged.items():
        out.print(f"  damaged: {path}: {why}", highlight=False, soft_wrap=True)
    for path in health.leftovers:
        out.print(f"  leftover: {path}", highlight=False, soft_wrap=True)
    if quarantine_files:
        for path, target in quarantine(health):
            done = f"moved {path} to {target}" if target else f"deleted {path}"
            out.print(f"  {done}", highlight=False, soft_wrap=True)
        return
    if not health.healthy:
        err.print("run patchfleet store check --quarantine to move them aside", highlight=False)
        raise typer.Exit(1)


@baseline_app.command("export")
def baseline_export(
    name: str,
    baselines_dir: BaselinesDirOpt = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="File to write (default: "
                                                  "stdout).")] = None,
    strict_aws: Annotated[bool, typer.Option(
        "--strict-aws", help="Refuse a baseline that uses a patchfleet extension (AWS's API "
        "would reject the JSON).")] = False,
) -> None:
    """Export a baseline as AWS get-patch-baseline JSON."""
    from patchfleet.domain.baseline_aws import EXTENSION_KEY, to_aws_json
    from patchfleet.ops.plan import load_registry

    try:
        b = load_registry(baselines_dir).get(name)
        if strict_aws and b.staged_approval:
            raise InputError(
                f"--strict-aws: baseline {name!r} uses staged_approval, a patchfleet extension "
                f"(exported as {EXTENSION_KEY}); AWS has no such setting: remove it, or export "
                "without --strict-aws")
        text = json.dumps(to_aws_json(b), indent=2) + "\n"
    except PatchfleetError as e:
        _fail(e)
    if out_file and out_file.is_dir():
        _fail(InputError(f"--out: {out_file} is a folder; give a file name"))
    if out_file:
        write_atomic(out_file, text, parents=True)
        err.print(f"wrote {out_file}")
    else:
        sys.stdout.write(text)


@baseline_app.command("import")
def baseline_import(
    file: Annotated[Path, typer.Argument(help="AWS get-patch-baseline JSON, or a "
                                         "BaselineOverride array.")],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for the YAML files.")] =
    Path("baselines"),
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
) -> None:
    """Convert AWS baseline JSON to patchfleet baseline YAML files."""
    from patchfleet.config.baselines import load_aws_json_file, to_yaml_data

    try:
        if out_dir.exists() and not out_dir.is_dir():
            raise InputError(f"--out-dir: {out_dir} is not a folder; give a folder (it is "
                             "created if missing)")
        baselines = load_aws_json_file(file)
    except PatchfleetError as e:
        _fail(e)
    targets = [(out_dir / f"{b.name}.yaml", b) for b in baselines]
    existing = [str(p) for p, _ in targets if p.exists()]
    if existing and not force:
        _fail(InputError(f"{', '.join(existing)} already exist(s); pass --force to overwrite"))
    for path, b in targets:
        write_atomic(path, yaml.safe_dump(to_yaml_data(b), sort_keys=False), parents=True)
        out.print(f"wrote {path}", highlight=False)
        _warn_ignored_delays(path, b)


@deployments_app.command("validate")
def deployments_validate(
    file: Annotated[Path, typer.Argument(help="Deployments YAML (policies: and windows: lists).")
                    ] = Path("deployments/policies.yaml"),
    baselines_dir: BaselinesDirOpt = None,
) -> None:
    """Check patch policies and maintenance windows: schedules, timezones, cutoffs, baselines and
    that every target expression selects nodes. Exit 2 on the first error; warn about windows
    that overlap on the same nodes."""
    from patchfleet.config.policies import load_deployments, validate_deployments
    from patchfleet.config.sources import load_nodes_source
    from patchfleet.domain.inventory import default_inventory
    from patchfleet.ops.plan import load_registry

    try:
        warnings = validate_deployments(
            file, load_registry(baselines_dir),
            lambda spec: load_nodes_source(spec) if spec else default_inventory())
        dep = load_deployments(file)
    except PatchfleetError as e:
        _fail(e)
    for w in [*warnings, *_environment_warnings()]:
        err.print(f"[bold yellow]warning:[/] {w}", highlight=False, markup=True, soft_wrap=True)
    out.print(f"{file}: {len(dep.policies)} patch policy(ies), {len(dep.windows)} maintenance "
              f"window(s) are valid", highlight=False)


def _environment_warnings() -> list[str]:
    """What ``prefect deploy`` (whose build step runs ``deployments validate``) would bake into
    the fixed deployments that doesn't exist here: ``PATCHFLEET_INVENTORY``, the default
    ``inventory`` parameter."""
    inventory = os.environ.get("PATCHFLEET_INVENTORY", "")
    if inventory and "://" not in inventory and not Path(inventory).expanduser().is_file():
        return [f"PATCHFLEET_INVENTORY={inventory} does not exist: it becomes the default "
                "`inventory` parameter of the patch-nodes deployments, whose runs fail until "
                "it exists; create it or export the path of an existing inventory"]
    return []


def _policies_file_param(file: Path, repo: Path) -> str:
    """The path the deployed flows load: relative to the checkout when inside it (workers run
    there, wherever the checkout lives), else absolute."""
    path = file.resolve()
    try:
        return str(path.relative_to(repo.resolve()))
    except ValueError:
        return str(path)


@deployments_app.command("apply")
def deployments_apply(
    file: Annotated[Path, typer.Argument(help="Deployments YAML (policies: and windows: lists).")
                    ] = Path("deployments/policies.yaml"),
    pool: Annotated[str, typer.Option(help="Prefect work pool (type process) the workers poll."
                                      )] = "patchfleet",
    queue: Annotated[str | None, typer.Option(help="Work queue in the pool. Default: the "
                                              "pool's default queue.")] = None,
    repo: Annotated[Path, typer.Option(help="The patchfleet checkout, at the same path on "
                                       "every worker machine (flows/ is loaded from there).")
                    ] = Path("."),
    install_pool: Annotated[str | None, typer.Option(
        help="Put the deployments that can install (a policy's -install, a window with an "
             "Install task) in this pool instead of --pool (README \"Security\").")] = None,
    prune: Annotated[bool, typer.Option(help="Delete generated deployments (tag "
                                        "patchfleet-generated) that the file no longer has.")
                     ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and print the "
                                          "deployments without contacting the server.")
                       ] = False,
    baselines_dir: BaselinesDirOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Start the first run of new policies "
                                      "with NextInterval false now (without it: printed, not "
                                      "started).")] = False,
) -> None:
    """Validate FILE, then create or update one scheduled Prefect deployment per patch policy
    operation (patch-policy/NAME-scan, patch-policy/NAME-install) and per maintenance window
    (maintenance-window/NAME). Needs PREFECT_API_URL (not with --dry-run). Exit 2 on a bad
    file (nothing is deployed), 1 if the server refuses. Deployments that can install are
    created with their schedule paused; the command that resumes each is printed."""
    from datetime import UTC, datetime

    from patchfleet.config.policies import load_deployments, validate_deployments
    from patchfleet.config.sources import load_nodes_source
    from patchfleet.domain.inventory import default_inventory
    from patchfleet.ops.deploy_plan import build_specs
    from patchfleet.ops.plan import load_registry

    now = datetime.now(UTC)
    try:
        _refuse_empty(("--pool", pool), ("--queue", queue), ("--baselines-dir", baselines_dir),
                      ("--install-pool", install_pool))
        warnings = validate_deployments(
            file, load_registry(baselines_dir),
            lambda spec: load_nodes_source(spec) if spec else default_inventory(), now=now)
        specs = build_specs(load_deployments(file), _policies_file_param(file, repo), now)
    except PatchfleetError as e:
        _fail(e)
    for w in warnings:
        err.print(f"[bold yellow]warning:[/] {w}", highlight=False, markup=True, soft_wrap=True)
    render.print_deployments(out, specs)
    if dry_run:
        out.print(f"dry run: {len(specs)} deployment(s) not applied", highlight=False)
        return
    prefect_env.apply_defaults()
    try:
        check_api()
    except PatchfleetError as e:
        _fail(e)
    from patchfleet.cli.deploy import apply_specs

    try:
        report = asyncio.run(apply_specs(specs, repo=repo.resolve(), pool=pool, queue=queue,
                                         prune=prune, start_runs=yes,
                                         install_pool=install_pool))
    except PatchfleetError as e:
        _fail(e)
    for label, names in (("created", report.created), ("updated", report.updated),
                         ("deleted", report.deleted)):
        if names:
            out.print(f"{label}: {', '.join(names)}", highlight=False)
    for name, run_id in report.started.items():
        out.print(f"started {name} now (NextInterval false): flow run {run_id}",
                  highlight=False)
    for name in report.pending_runs:
        out.print(f"not started (NextInterval false; pass --yes to start it now): "
                  f"prefect deployment run '{name}'", highlight=False, soft_wrap=True)
    for name, schedule_id in report.paused.items():
        out.print(f"paused (it installs); to enable its schedule: prefect deployment schedule "
                  f"resume '{name}' {schedule_id}", highlight=False, soft_wrap=True)
    _audit("DEPLOYMENTS_APPLY", "deployments", None, "applied", detail=(
        f"{file}: created {len(report.created)}, updated {len(report.updated)}, deleted "
        f"{len(report.deleted)}, started {len(report.started)}, paused {len(report.paused)}; "
        f"pool {pool}{f', install pool {install_pool}' if install_pool else ''}"))


def _audit(action: str, run_id: str, store: str | None, outcome: str, **fields: Any) -> None:
    """Append a CLI operation to the store's audit trail; a warning if it can't be."""
    from patchfleet.ops.audit_trail import audit
    from patchfleet.store.audit import AuditEntry
    from patchfleet.store.location import StoreLocation

    try:
        root = StoreLocation.resolve(store)
    except PatchfleetError as e:
        err.print(f"warning: not in the audit trail ({e})", highlight=False, soft_wrap=True)
        return
    if audit(root, AuditEntry(action=action, run_id=run_id, outcome=outcome, **fields)) is None:
        err.print(f"warning: the {action.lower()} is not in the audit trail of {root} (see "
                  "the log line above)", highlight=False, soft_wrap=True)


def _terminated(signum: int, frame: object) -> None:
    raise _Terminated


class _Terminated(BaseException):
    """SIGTERM outside a Prefect flow run (inside one, Prefect raises TerminationSignal)."""


def _is_termination(exc: BaseException) -> bool:
    """Our own SIGTERM, or Prefect's TerminationSignal (its flow engine raises it on SIGTERM;
    looked up only if Prefect was imported, so other commands don't pay for importing it)."""
    prefect_exceptions = sys.modules.get("prefect.exceptions")
    termination = getattr(prefect_exceptions, "TerminationSignal", None)
    return isinstance(exc, _Terminated) or (
        isinstance(termination, type) and isinstance(exc, termination))


def main() -> None:
    """The ``patchfleet`` command. SIGTERM (a service manager stopping it, ``kill``) ends it
    like Ctrl-C: one line and exit 143, no traceback."""
    signal.signal(signal.SIGTERM, _terminated)
    try:
        app()
    except BaseException as exc:
        if not _is_termination(exc):
            raise
        err.print("patchfleet: stopped by SIGTERM; a run that had not finished was not recorded "
                  "in the store", highlight=False)
        raise SystemExit(143) from None


if __name__ == "__main__":
    main()
