"""Runner events → per-host results: counts from Ansible's stats, the failing task's name and message."""

from __future__ import annotations

from typing import Any

from conftool.play.events import EventCollector, HostProgress


def ev(kind: str, host: str = "", task: str = "", **data: Any) -> dict[str, Any]:
    return {"event": kind, "event_data": {"host": host, "task": task, **data}}


def stats(**counts: dict[str, int]) -> dict[str, Any]:
    return {"event": "playbook_on_stats", "event_data": counts}


SITES = {"pc-a": "03124", "pc-b": "03127", "pc-c": "03148", "srv": "11"}


def test_results_statuses_and_messages() -> None:
    seen: list[tuple[str, int, str]] = []

    def on_progress(host: str, p: HostProgress) -> None:
        seen.append((host, p.done, p.status))

    c = EventCollector(sites=SITES, on_progress=on_progress)
    events = [
        ev("playbook_on_start"),
        ev("runner_on_start", "pc-a", "Inputs are complete"),
        ev("runner_on_ok", "pc-a", "chrony uses the province NTP servers",
           res={"changed": True, "diff": [{"before": "server 192.0.2.1\n", "after": "server 10.11.0.11 iburst\n",
                                           "before_header": "/etc/chrony/chrony.conf",
                                           "after_header": "dynamically generated"}]}),
        ev("runner_on_ok", "pc-b", "chrony uses the province NTP servers", res={"changed": False}),
        ev("runner_on_unreachable", "pc-c", "Service manager is detected",
           res={"msg": "Failed to connect to the host via ssh: ssh: connect to host 10.250.0.43 port 22: "
                       "No route to host", "unreachable": True}),
        ev("runner_on_failed", "srv", "sshd accepts the configuration",
           res={"rc": 255, "stderr": "line 1\n/etc/ssh/sshd_config line 3: Bad configuration option: Foo",
                "msg": "non-zero return code"}),
        ev("runner_on_failed", "pc-b", "ignored one", ignore_errors=True, res={"msg": "whatever"}),
        ev("runner_on_ok", "pc-a", "Site token (never logged)",
           res={"censored": "the output has been hidden due to the fact that 'no_log: true' was specified",
                "changed": True, "diff": {"before": "old-token", "after": "new-token"}}),
        stats(ok={"pc-a": 2, "pc-b": 2, "srv": 1}, changed={"pc-a": 2}, failures={"srv": 1},
              dark={"pc-c": 1}, skipped={"pc-b": 3}, ignored={"pc-b": 1}, rescued={}),
    ]
    for e in events:
        assert c(e) is False  # events are never written to disk
    by = {r.host: r for r in c.results()}
    assert [r.host for r in c.results()] == ["pc-a", "pc-b", "pc-c", "srv"]  # by site id
    assert (by["pc-a"].status, by["pc-a"].ok, by["pc-a"].changed) == ("changed", 2, 2)
    assert (by["pc-b"].status, by["pc-b"].skipped, by["pc-b"].task) == ("ok", 3, None)
    # --diff: a unified diff per changed task; never for a no_log task
    ((task, text),) = by["pc-a"].diffs
    assert task == "chrony uses the province NTP servers"
    assert "-server 192.0.2.1" in text and "+server 10.11.0.11 iburst" in text and "token" not in text
    assert by["pc-a"].item()["detail"]["diff"][0]["task"] == task
    assert by["pc-c"].status == "unreachable" and by["pc-c"].task == "Service manager is detected"
    assert "No route to host" in (by["pc-c"].message or "")
    assert by["srv"].status == "failed" and by["srv"].task == "sshd accepts the configuration"
    assert by["srv"].message == "non-zero return code — /etc/ssh/sshd_config line 3: Bad configuration option: Foo"
    item = by["srv"].item()
    assert item["site"] == "11" and item["device"] == "srv" and item["kind"] == "play"
    assert item["status"] == "failed" and item["detail"]["failed"] == 1
    assert ("pc-c", 1, "unreachable") in seen and ("srv", 1, "failed") in seen


def test_run_that_died_before_stats_keeps_event_counts() -> None:
    c = EventCollector(sites=SITES)
    c(ev("runner_on_ok", "pc-a", "t1", res={"changed": True}))
    c(ev("runner_on_failed", "pc-a", "t2", res={"msg": "x" * 1000}))
    c({"event": "verbose", "stdout": "ERROR! the playbook could not be parsed"})
    (r,) = c.results()
    assert (r.status, r.ok, r.changed, r.failed) == ("failed", 2, 1, 1)
    assert r.message is not None and len(r.message) == 300 and r.message.endswith("…")
    assert list(c.output_tail) == ["ERROR! the playbook could not be parsed"]
    assert c.stats is None


def test_unreachable_message_names_ssh_with_mitogen() -> None:
    """Mitogen's unreachable result says only "Task failed: Connection timed out."; the engineer still reads that
    the SSH connection failed. Plain Ansible's message already says so and is kept as it is."""
    from conftool.play.events import _unreachable_message

    assert _unreachable_message({"msg": "Task failed: Connection timed out.", "unreachable": True}) == (
        "no SSH connection: Task failed: Connection timed out.")
    plain = "Failed to connect to the host via ssh: ssh: connect to host 10.250.0.43 port 22: No route to host"
    assert _unreachable_message({"msg": plain}) == plain
