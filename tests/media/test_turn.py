"""TURN: REST-API credentials from the server, and a commune behind NAT that reaches the SFU only through coturn.

The NAT test builds four namespaces of ours (nothing else is touched, and nothing leaves them):

    client 192.168.77.10 --- 192.168.77.1 [nat: nftables masquerade] 10.98.0.2 --- 10.98.0.1 [turn: coturn]
                                                            coturn relays from 10.98.5.1 --- 10.98.5.2 [sfu]

The turn namespace does not forward, so the client has no route to 10.98.5.0/24 and the SFU none to the client:
the only way between them is a relayed allocation on coturn.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from meeting.errors import InvalidInput
from meeting.media import turn
from meeting.services import auth
from meeting.settings import Settings
from tests.media.conftest import REPO
from tests.meeting.conftest import OPERATOR_SITE, prepare_db

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SECRET_ENV = "LT_TEST_TURN_SECRET"
TURN_URL = "turn:10.98.0.1:3478?transport=udp"


def _hmac(secret: str, username: str) -> str:
    """The coturn REST-API password as coturn's docs define it (independent of meeting.media.turn)."""
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def test_credentials_follow_the_coturn_rest_api_scheme() -> None:
    creds = turn.make_credentials("s3cret-value", "site:03160", 3600, now=1_800_000_000)
    assert creds.username == "1800003600:site:03160"
    assert creds.credential == _hmac("s3cret-value", "1800003600:site:03160")
    assert creds.expires_at.timestamp() == 1_800_003_600
    assert "s3cret" not in repr(creds) and creds.credential not in repr(creds)
    docs = turn.ice_servers([TURN_URL], creds)
    assert docs == [{"urls": [TURN_URL], "username": creds.username, "credential": creds.credential,
                     "credentialType": "password"}]
    assert turn.ice_servers([], creds) == []
    assert [s.urls for s in turn.rtc_ice_servers(docs)] == [[TURN_URL]]


@pytest.mark.parametrize("bad", ["http://10.0.0.1", "turn:", "stun:10.0.0.1:3478", "turn:h:3478?transport=sctp x"])
def test_bad_turn_urls_are_refused_by_name(bad: str) -> None:
    with pytest.raises(InvalidInput) as info:
        turn.check_urls([TURN_URL, bad])
    assert info.value.field == "turn_urls" and bad in info.value.render("en")


def test_bad_identity_ttl_and_coturn_addresses_are_refused() -> None:
    with pytest.raises(InvalidInput):
        turn.make_credentials("s", "site 1", 60)
    with pytest.raises(InvalidInput):
        turn.make_credentials("s", "site:1", 0)
    with pytest.raises(InvalidInput, match="listen_ip"):
        turn.CoturnConfig(listen_ip="not-an-ip", relay_ip="10.0.0.1", secret="s")
    with pytest.raises(turn.TurnError):
        turn.resolve_secret(None)


# -- the route ------------------------------------------------------------------------------------------------
@pytest.fixture
def turn_app(tmp_path: Path, reference_inventory: Path, state_dir: Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    db_url = f"sqlite:///{tmp_path / 'lienthong.db'}"
    tokens = prepare_db(db_url, reference_inventory)
    secret = os.urandom(24).hex()
    monkeypatch.setenv(SECRET_ENV, secret)
    settings = Settings.load(db_url, turn_urls=(TURN_URL,), turn_secret_ref=f"env:{SECRET_ENV}", turn_ttl_s=600)
    from meeting.api.app import create_app

    with TestClient(create_app(settings)) as client:
        with client.app.state.sessions() as s:  # type: ignore[attr-defined]
            tokens["site"] = auth.issue_site_token(s, OPERATOR_SITE)
            s.commit()
        yield client, tokens, secret


def test_route_hands_out_credentials_to_sites_and_users_only(turn_app: tuple[TestClient, dict[str, str], str]
                                                             ) -> None:
    client, tokens, secret = turn_app
    t0 = time.time()
    r = client.get("/api/v1/turn", headers={"Authorization": f"Bearer {tokens['site']}"})
    assert r.status_code == 200, r.text
    doc = r.json()
    server = doc["iceServers"][0]
    expiry, _, who = server["username"].partition(":")
    assert who == f"site:{OPERATOR_SITE}" and t0 + 590 <= int(expiry) <= time.time() + 610
    assert server["credential"] == _hmac(secret, server["username"])
    assert server["urls"] == [TURN_URL] and doc["ttl"] == 600
    r = client.get("/api/v1/turn", headers={"Authorization": f"Bearer {tokens['engineer']}"})
    assert r.json()["iceServers"][0]["username"].endswith(":user:engineer")
    assert client.get("/api/v1/turn").status_code == 401
    assert client.get("/api/v1/turn", headers={"Authorization": "Bearer lts_forged"}).status_code == 401
    assert secret not in r.text


def test_route_without_turn_or_with_a_missing_secret(tmp_path: Path, reference_inventory: Path, state_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    db_url = f"sqlite:///{tmp_path / 'lienthong.db'}"
    tokens = prepare_db(db_url, reference_inventory)
    from meeting.api.app import create_app

    h = {"Authorization": f"Bearer {tokens['admin']}"}
    with TestClient(create_app(Settings.load(db_url))) as client:
        assert client.get("/api/v1/turn", headers=h).json() == {"iceServers": [], "ttl": 0, "expires_at": None}
    monkeypatch.delenv(SECRET_ENV, raising=False)
    broken = Settings.load(db_url, turn_urls=(TURN_URL,), turn_secret_ref=f"env:{SECRET_ENV}")
    with TestClient(create_app(broken)) as client:
        r = client.get("/api/v1/turn", headers=h)
        assert r.status_code == 503 and SECRET_ENV in r.text


# -- coturn in a namespace, a client behind NAT -------------------------------------------------------------
@dataclass(frozen=True)
class NatLab:
    client: str
    nat: str
    turn: str
    sfu: str
    listen_ip: str = "10.98.0.1"
    relay_ip: str = "10.98.5.1"
    sfu_ip: str = "10.98.5.2"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _in(ns: str, *cmd: str, stdin: str | None = None) -> None:
    subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True, capture_output=True, text=True, input=stdin)


@pytest.fixture(scope="module")
def nat_lab() -> Iterator[NatLab]:
    if os.geteuid() != 0:
        pytest.fail("the TURN test creates network namespaces and needs root")
    pid = os.getpid()
    lab = NatLab(*(f"lt-turn-test-{pid}-{r}" for r in ("client", "nat", "turn", "sfu")))
    tag = f"lt{pid % 100000}"
    created: list[str] = []
    try:
        for ns in (lab.client, lab.nat, lab.turn, lab.sfu):
            _ip("netns", "add", ns)
            created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        links = [  # (ns a, if a, address a, ns b, if b, address b)
            (lab.client, f"{tag}c0", "192.168.77.10/24", lab.nat, f"{tag}n0", "192.168.77.1/24"),
            (lab.nat, f"{tag}n1", "10.98.0.2/24", lab.turn, f"{tag}t0", f"{lab.listen_ip}/24"),
            (lab.turn, f"{tag}t1", f"{lab.relay_ip}/24", lab.sfu, f"{tag}s0", f"{lab.sfu_ip}/24"),
        ]
        for ns_a, if_a, addr_a, ns_b, if_b, addr_b in links:
            _ip("-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
            _ip("-n", ns_a, "addr", "add", addr_a, "dev", if_a)
            _ip("-n", ns_b, "addr", "add", addr_b, "dev", if_b)
            _ip("-n", ns_a, "link", "set", if_a, "up")
            _ip("-n", ns_b, "link", "set", if_b, "up")
        _ip("-n", lab.client, "route", "add", "default", "via", "192.168.77.1")
        _in(lab.nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        _in(lab.nat, "nft", "-f", "-", stdin=(
            "table ip lt_nat {\n"
            "  chain post { type nat hook postrouting priority srcnat; policy accept;\n"
            f'    oifname "{tag}n1" masquerade\n'
            "  }\n"
            "}\n"
        ))
        yield lab
    finally:
        for ns in reversed(created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture
def coturn(nat_lab: NatLab, tmp_path: Path) -> Iterator[tuple[turn.Coturn, str]]:
    secret = os.urandom(24).hex()
    server = turn.Coturn(
        turn.CoturnConfig(listen_ip=nat_lab.listen_ip, relay_ip=nat_lab.relay_ip, secret=secret,
                          allowed_peers=("10.98.5.0-10.98.5.255",)),
        tmp_path / "coturn", netns=nat_lab.turn,
    )
    server.start()
    try:
        yield server, secret
    finally:
        server.stop()


def _scenario(lab: NatLab, ice: list[dict[str, Any]], seconds: float = 3.0, connect_timeout: float = 30.0
              ) -> dict[str, Any]:
    cp = subprocess.run(
        ["ip", "netns", "exec", lab.sfu, sys.executable, "-m", "tests.media.turn_scenario", "sfu", lab.client,
         json.dumps(ice), str(seconds), str(connect_timeout)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=150,
    )
    lines = [ln for ln in cp.stdout.splitlines() if ln.startswith("{")]
    assert cp.returncode == 0 and lines, f"{cp.stdout[-3000:]}\n{cp.stderr[-5000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def test_client_behind_nat_connects_through_a_relay_candidate(
    nat_lab: NatLab, coturn: tuple[turn.Coturn, str], turn_app: tuple[TestClient, dict[str, str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, secret = coturn
    client, tokens, _ = turn_app
    monkeypatch.setenv(SECRET_ENV, secret)  # the app hands out credentials for the coturn we started
    ice = client.get("/api/v1/turn", headers={"Authorization": f"Bearer {tokens['site']}"}).json()["iceServers"]
    r = _scenario(nat_lab, ice)
    print("relay scenario:", json.dumps(r))
    assert "relay" in r["client_candidates"], r
    assert r["client"]["state"] == "connected", r
    local, remote = r["client"]["pair"]["local"], r["client"]["pair"]["remote"]
    assert local["type"] == "relay" and local["host"] == nat_lab.relay_ip, r
    assert remote["host"] == nat_lab.sfu_ip, r
    # the SFU sees the commune at coturn's relayed address, never at its own (NATed, unroutable) one
    assert r["sfu_pair"]["remote"]["host"] == nat_lab.relay_ip, r
    assert r["frames"]["video"] >= 0.5 * 15 * r["seconds"] and r["frames"]["audio"] >= 0.5 * 50 * r["seconds"], r
    assert secret not in server.log_path.read_text(errors="replace")


def test_expired_credentials_leave_the_nat_client_unconnected(
    nat_lab: NatLab, coturn: tuple[turn.Coturn, str]
) -> None:
    """Without a working TURN allocation there is no path at all: coturn refuses expired credentials."""
    _, secret = coturn
    expired = turn.make_credentials(secret, "site:expired", 60, now=time.time() - 3600)
    # the relayed path connects in about a second (previous test); 8 s without one is a clear no
    r = _scenario(nat_lab, turn.ice_servers([TURN_URL], expired), seconds=0.5, connect_timeout=8.0)
    assert "relay" not in r["client_candidates"], r
    assert r["client"]["state"] != "connected", r


# -- the CLI ------------------------------------------------------------------------------------------------
def _meeting_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meeting.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120, cwd=REPO)


def test_cli_prints_credentials_and_writes_a_private_coturn_config(tmp_path: Path, state_dir: Path) -> None:
    secret = os.urandom(24).hex()
    env = {"LIENTHONG_TURN_URLS": TURN_URL, "LIENTHONG_TURN_SECRET_REF": f"env:{SECRET_ENV}", SECRET_ENV: secret}
    r = _meeting_cli(["turn", "credentials", "--identity", "site:03160", "--json"], env)
    assert r.returncode == 0, r.stderr
    server = json.loads(r.stdout)["iceServers"][0]
    assert server["username"].endswith(":site:03160") and server["credential"] == _hmac(secret, server["username"])
    r = _meeting_cli(["turn", "config", "--listen-ip", "10.11.0.20", "--relay-ip", "10.11.0.20", "--out",
                      str(tmp_path / "coturn"), "--json"], env)
    assert r.returncode == 0, r.stderr
    conf = Path(json.loads(r.stdout)["config"])
    assert conf.stat().st_mode & 0o777 == 0o600
    text = conf.read_text()
    assert f"static-auth-secret={secret}" in text and "use-auth-secret" in text and "no-cli" in text
    assert secret not in r.stdout + r.stderr
    # bad input: exit 2 with the field named, no traceback; no URLs configured is said so
    bad = _meeting_cli(["turn", "config", "--listen-ip", "ten.eleven", "--relay-ip", "10.11.0.20", "--out",
                        str(tmp_path / "x")], env)
    assert bad.returncode == 2 and "listen_ip" in bad.stderr and "Traceback" not in bad.stderr
    none = _meeting_cli(["turn", "credentials", "--identity", "site:1"], {**env, "LIENTHONG_TURN_URLS": ""})
    assert none.returncode == 2 and "LIENTHONG_TURN_URLS" in none.stderr and "Traceback" not in none.stderr
