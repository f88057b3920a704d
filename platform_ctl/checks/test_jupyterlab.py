"""What the jupyterlab role promises on the apps hosts, checked on the host over SSH."""

from __future__ import annotations

import shlex

testinfra_hosts = ["ansible://apps"]


def _status(host, url: str, token: str | None) -> str:
    # curl verifies the server against the host's trust store, which holds the environment's CA; the
    # token travels in a header read from stdin, never on a command line.
    header = f"Authorization: token {token}" if token else "X-No-Token: 1"
    return host.check_output(f"curl -sS -o /dev/null -w '%{{http_code}}' --max-time 10 -H @- {shlex.quote(url)}"
                             f" <<'EOF'\n{header}\nEOF")


def test_jupyterlab_runs_and_listens_on_the_private_address_only(host, hostvars):
    assert host.service("jupyterlab").is_running
    port = hostvars.get("jupyterlab_port", 8888)
    listeners = host.check_output(f"ss -Htln 'sport = :{port}'").splitlines()
    assert [line.split()[3] for line in listeners] == [f"{hostvars['platform_private_ip']}:{port}"]


def test_jupyterlab_answers_over_tls_with_the_token_only(host, hostvars):
    url = f"https://{hostvars['platform_private_ip']}:{hostvars.get('jupyterlab_port', 8888)}/api/status"
    assert _status(host, url, None) == "403"
    assert _status(host, url, "not-the-token-not-the-token-not-the-token") == "403"
    assert _status(host, url, hostvars["vault_jupyterlab_token"]) == "200"
