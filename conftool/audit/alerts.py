"""Alerts on change only: a new failure or a recovery, confirmed by N consecutive runs, one message per run.

Why this shape: the NOC and the commune staff read these on a phone. A link that flaps between two runs must not
send two messages, a failure that lasts a week must not send one per run, and a broken mail relay must neither
lose the alert nor stop the scheduler. So:

* state per finding key (site, device, check, kind) lives in ``audit_alert_state``: the status last observed, how
  many runs in a row it has been observed, and the status last *alerted*. A change is alerted once it has held
  for ``consecutive`` runs and differs from the last alerted status (every key starts as "ok");
* a site in a maintenance window is silenced: its state keeps counting but nothing is marked alerted, so a fault
  that outlasts the window is alerted when the window ends, and one fixed inside it never is;
* each run's events become one batch — one e-mail per recipient (the NOC gets everything, a site's contacts get
  their site's part) and one JSON POST per webhook — written to ``audit_alert_outbox`` before sending, and
  pending batches are retried (oldest first) on the next run. A channel failure is logged, never raised.

Secrets: an SMTP password comes from a credential reference (``env:VAR`` …), never from the URL; URLs in logs
and in the outbox carry no password.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from conftool.audit.errors import AuditError
from conftool.audit.maintenance import MaintenanceBook
from conftool.audit.results import Finding, RunRecord, Status
from conftool.inventory import Inventory
from conftool.inventory.secrets import Secret, resolve

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 100  # a batch still failing after this many runs is dropped (logged); weeks at a 4-hour cadence

# Core definitions for the queries below; the schema itself is made by the store's Alembic migration
# (a2_alerts_maintenance), so the engine must be an `AuditStore`'s (opening the store migrates it).
metadata = sa.MetaData()
state_table = sa.Table(
    "audit_alert_state", metadata,
    sa.Column("site_id", sa.String(10), primary_key=True),
    sa.Column("device", sa.String(100), primary_key=True),
    sa.Column("check", sa.String(50), primary_key=True),
    sa.Column("kind", sa.String(100), primary_key=True),
    sa.Column("observed", sa.String(10), nullable=False),  # ok | bad
    sa.Column("streak", sa.Integer, nullable=False),
    sa.Column("alerted", sa.String(10), nullable=False),  # ok | bad
    sa.Column("run_id", sa.Integer, nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
outbox_table = sa.Table(
    "audit_alert_outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, nullable=True),
    sa.Column("channel", sa.String(500), nullable=False, index=True),  # password-free URL
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
)

KIND_VI = {"lan": "mạng LAN", "internet": "Internet", "dedicated": "mạng TSLCD"}
CHECK_VI = {"reachability": "kết nối", "device": "thiết bị", "drift": "lệch cấu hình", "compliance": "tuân thủ",
            "hosts": "máy trạm"}


def _obs(status: Status) -> str | None:
    if status in (Status.FAIL, Status.ERROR):
        return "bad"
    return "ok" if status == Status.OK else None


@dataclass
class Event:
    change: str  # failure | recovery
    finding: Finding
    site_name: str
    contacts: list[str]  # e-mail addresses of the site's contacts

    def label(self) -> str:
        f = self.finding
        what = KIND_VI.get(f.kind, f.kind) if f.check == "reachability" else f"{CHECK_VI.get(f.check, f.check)} " \
                                                                            f"{f.kind}".strip()
        dev = f" [{f.device}]" if f.device else ""
        return f"{self.site_name} ({f.site}) — {what}{dev}"

    def as_dict(self) -> dict[str, Any]:
        return {"change": self.change, "site": self.finding.site, "site_name": self.site_name,
                "check": self.finding.check, "kind": self.finding.kind, "device": self.finding.device,
                "status": self.finding.status.value, "detail": self.finding.detail, "contacts": self.contacts}


@dataclass
class Evaluation:
    events: list[Event] = field(default_factory=list)
    silenced: list[Event] = field(default_factory=list)  # would have been events, but the site is in maintenance


class AlertState:
    """The per-key counters in the database and the change detection over them."""

    def __init__(self, engine: Engine, inv: Inventory, consecutive: int = 2,
                 maintenance: MaintenanceBook | None = None) -> None:
        if consecutive < 1:
            raise AuditError(f"--consecutive {consecutive}: must be at least 1")
        self.engine = engine
        self.inv = inv
        self.consecutive = consecutive
        self.maintenance = maintenance

    def _event(self, change: str, f: Finding) -> Event:
        site = self.inv.find(f.site)
        name = site.full_name if site else f.site
        contacts = [c.email for c in site.contacts if c.email] if site else []
        return Event(change, f, name, contacts)

    def evaluate(self, run: RunRecord, now: datetime | None = None) -> Evaluation:
        """Fold one run into the state (in one transaction) and return the changes to alert."""
        now = now or run.finished_at
        silenced = self.maintenance.silenced(now) if self.maintenance else {}
        out = Evaluation()
        t = state_table
        with self.engine.begin() as c:
            rows = {(r.site_id, r.device, r.check, r.kind): r for r in c.execute(sa.select(t)).all()}
            for f in run.findings:
                obs = _obs(f.status)
                if obs is None:
                    continue
                key = (f.site, f.device or "", f.check, f.kind)
                row = rows.get(key)
                if row is None:
                    observed, streak, alerted = obs, 1, "ok"
                else:
                    observed, streak, alerted = obs, (row.streak + 1 if row.observed == obs else 1), row.alerted
                if streak >= self.consecutive and observed != alerted:
                    ev = self._event("failure" if observed == "bad" else "recovery", f)
                    if f.site in silenced:
                        out.silenced.append(ev)
                    else:
                        out.events.append(ev)
                        alerted = observed
                values = {"observed": observed, "streak": streak, "alerted": alerted, "run_id": run.id,
                          "updated_at": now}
                if row is None:
                    c.execute(t.insert().values(site_id=key[0], device=key[1], check=key[2], kind=key[3], **values))
                    rows[key] = c.execute(sa.select(t).where(*_where(key))).one()
                else:
                    c.execute(t.update().where(*_where(key)).values(**values))
                    rows[key] = c.execute(sa.select(t).where(*_where(key))).one()
        if out.silenced:
            logger.info("run %s: %d alert(s) silenced by maintenance windows", run.id, len(out.silenced))
        return out


def _where(key: tuple[str, str, str, str]) -> list[sa.ColumnElement[bool]]:
    t = state_table
    return [t.c.site_id == key[0], t.c.device == key[1], t.c.check == key[2], t.c.kind == key[3]]


# ----- messages ------------------------------------------------------------------------------------------------
def _body(province: str, run: RunRecord, events: Sequence[Event]) -> str:
    fails = [e for e in events if e.change == "failure"]
    recs = [e for e in events if e.change == "recovery"]
    at = run.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Cảnh báo mạng — {province} — lần kiểm tra {run.id} ({at})", ""]
    if fails:
        lines.append(f"LỖI MỚI ({len(fails)}):")
        lines += [f"  • {e.label()}: {e.finding.detail}" for e in fails]
        lines.append("")
    if recs:
        lines.append(f"ĐÃ PHỤC HỒI ({len(recs)}):")
        lines += [f"  • {e.label()}" for e in recs]
        lines.append("")
    lines.append("Thư tự động từ hệ thống Liên Thông; xem chi tiết: conftool audit diff / conftool audit report.")
    return "\n".join(lines) + "\n"


def _subject(run: RunRecord, events: Sequence[Event]) -> str:
    n_f = sum(e.change == "failure" for e in events)
    n_r = sum(e.change == "recovery" for e in events)
    parts = ([f"{n_f} lỗi mới"] if n_f else []) + ([f"{n_r} phục hồi"] if n_r else [])
    return f"[Liên Thông] {', '.join(parts)} — lần kiểm tra {run.id}"


def compose(run: RunRecord, events: Sequence[Event], province: str, noc: Sequence[str]) -> dict[str, Any]:
    """One batch per run: the webhook document, with the e-mails (one per recipient) inside it."""
    per_contact: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        for addr in e.contacts:
            per_contact[addr].append(e)
    mails = []
    if noc:
        mails.append({"to": list(noc), "subject": _subject(run, events), "body": _body(province, run, events)})
    for addr in sorted(per_contact):
        if addr in noc:
            continue
        evs = per_contact[addr]
        mails.append({"to": [addr], "subject": _subject(run, evs), "body": _body(province, run, evs)})
    return {"source": "lienthong", "province": province, "run": run.id,
            "started_at": run.started_at.isoformat(), "subject": _subject(run, events),
            "text": _body(province, run, events), "events": [e.as_dict() for e in events], "mails": mails}


# ----- channels ------------------------------------------------------------------------------------------------
class Channel(Protocol):
    name: str  # password-free URL, used in logs and as the outbox key

    def send(self, batch: dict[str, Any]) -> None: ...


class SmtpChannel:
    """``smtp://[user@]host[:port][?starttls=1]`` or ``smtps://…``; the password comes from a reference."""

    def __init__(self, url: str, *, sender: str, password: Secret | None = None, timeout: float = 15.0) -> None:
        u = urlsplit(url)
        if u.password is not None:
            raise AuditError("--alert: do not put a password in the SMTP URL; pass --smtp-password env:VAR")
        if not u.hostname:
            raise AuditError(f"--alert {url!r}: no host; write smtp://host:port")
        self.scheme = u.scheme
        self.host = u.hostname
        self.port = u.port or (465 if u.scheme == "smtps" else 25)
        self.user = u.username
        self.starttls = parse_qs(u.query).get("starttls", ["0"])[0] in ("1", "true", "yes")
        self.password = password
        self.sender = sender
        self.timeout = timeout
        self.name = f"{u.scheme}://{self.user + '@' if self.user else ''}{self.host}:{self.port}"

    def send(self, batch: dict[str, Any]) -> None:
        mails = batch.get("mails", [])
        if not mails:
            return
        smtp: smtplib.SMTP
        if self.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user and self.password is not None:
                smtp.login(self.user, self.password.reveal())
            for m in mails:
                msg = EmailMessage()
                msg["From"] = self.sender
                msg["To"] = ", ".join(m["to"])
                msg["Subject"] = m["subject"]
                msg.set_content(m["body"])
                smtp.send_message(msg)


class WebhookChannel:
    """A JSON POST of the whole batch (chat bridges, ticketing); any 2xx is delivered."""

    def __init__(self, url: str, *, timeout: float = 15.0) -> None:
        u = urlsplit(url)
        if u.password is not None:
            raise AuditError("--alert: do not put credentials in the webhook URL")
        self.url = url
        self.name = f"{u.scheme}://{u.hostname}{':' + str(u.port) if u.port else ''}{u.path}"
        self.timeout = timeout

    def send(self, batch: dict[str, Any]) -> None:
        r = httpx.post(self.url, content=json.dumps(batch, ensure_ascii=False, default=str).encode(),
                       headers={"Content-Type": "application/json; charset=utf-8"}, timeout=self.timeout)
        r.raise_for_status()


def make_channel(url: str, *, sender: str, smtp_password: str | None = None) -> Channel:
    scheme = urlsplit(url).scheme
    if scheme in ("smtp", "smtps"):
        secret = resolve(smtp_password) if smtp_password else None
        return SmtpChannel(url, sender=sender, password=secret)
    if scheme in ("http", "https"):
        return WebhookChannel(url)
    raise AuditError(f"--alert {url!r}: expected smtp://host:port, smtps://…, or an https:// webhook")


class Dispatcher:
    """Outbox + channels: store each batch once per channel, then flush every channel's pending batches."""

    def __init__(self, engine: Engine, channels: Sequence[Channel]) -> None:
        self.engine = engine
        self.channels = list(channels)

    def enqueue(self, batch: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        with self.engine.begin() as c:
            for ch in self.channels:
                c.execute(outbox_table.insert().values(run_id=batch.get("run"), channel=ch.name, payload=batch,
                                                       created_at=now, attempts=0))

    def flush(self) -> dict[str, int]:
        """Send what is pending, oldest first, per channel; stop a channel at its first failure (kept for later)."""
        sent = 0
        failed = 0
        t = outbox_table
        for ch in self.channels:
            with self.engine.connect() as c:
                pending = c.execute(sa.select(t).where(t.c.channel == ch.name, t.c.sent_at.is_(None))
                                    .order_by(t.c.id)).all()
            for row in pending:
                try:
                    ch.send(row.payload)
                except Exception as exc:  # any channel failure: log, keep, retry next run
                    failed += 1
                    err = f"{exc.__class__.__name__}: {exc}"[:500]
                    attempts = row.attempts + 1
                    logger.warning("alert channel %s failed (batch of run %s, attempt %d): %s", ch.name,
                                   row.run_id, attempts, err)
                    with self.engine.begin() as c:
                        if attempts >= MAX_ATTEMPTS:
                            logger.error("alert channel %s: dropping the batch of run %s after %d attempts",
                                         ch.name, row.run_id, attempts)
                            c.execute(t.delete().where(t.c.id == row.id))
                        else:
                            c.execute(t.update().where(t.c.id == row.id).values(attempts=attempts, last_error=err))
                    break
                with self.engine.begin() as c:
                    c.execute(t.update().where(t.c.id == row.id).values(sent_at=datetime.now(UTC),
                                                                       attempts=row.attempts + 1))
                sent += 1
                logger.info("alert batch of run %s sent via %s", row.run_id, ch.name)
        return {"sent": sent, "failed": failed}

    def pending(self) -> int:
        t = outbox_table
        with self.engine.connect() as c:
            return int(c.scalar(sa.select(sa.func.count()).select_from(t).where(t.c.sent_at.is_(None))) or 0)


class Alerter:
    """State + messages + delivery for one database: `process(run)` after every stored run."""

    def __init__(self, engine: Engine, inv: Inventory, channels: Sequence[Channel], *, noc: Sequence[str] = (),
                 consecutive: int = 2, maintenance: MaintenanceBook | None = None) -> None:
        self.state = AlertState(engine, inv, consecutive, maintenance)
        self.dispatcher = Dispatcher(engine, channels)
        self.inv = inv
        self.noc = list(noc)

    def set_inventory(self, inv: Inventory) -> None:
        """Take a re-read inventory (the daemon re-reads it every run: contacts and windows change)."""
        self.inv = self.state.inv = inv
        if self.state.maintenance is not None:
            self.state.maintenance.inv = inv

    def process(self, run: RunRecord, now: datetime | None = None) -> dict[str, Any]:
        ev = self.state.evaluate(run, now)
        if ev.events:
            self.dispatcher.enqueue(compose(run, ev.events, self.inv.province.name, self.noc))
        result = self.dispatcher.flush()
        return {"events": len(ev.events), "silenced": len(ev.silenced), **result,
                "pending": self.dispatcher.pending()}
