"""testkit/haproxy.py's pure parts: the config it writes and the runtime API's `show stat` it reads."""

from pathlib import Path

from testkit.haproxy import BACKEND, Checks, config_text, parse_stat


def directives(text: str) -> list[str]:
    return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]


def test_config_binds_loopback_and_lists_each_gateway_with_health_checks():
    text = config_text(18090, {"gw1": 18081, "gw2": 18082}, Path("/tmp/x/admin.sock"))
    lines = directives(text)
    assert "bind 127.0.0.1:18090" in lines
    assert "server gw1 127.0.0.1:18081" in lines and "server gw2 127.0.0.1:18082" in lines
    assert "option httpchk GET /health" in lines and "http-check expect status 200" in lines
    assert "default-server check inter 500ms fastinter 250ms fall 2 rise 2" in lines
    assert "stats socket /tmp/x/admin.sock mode 600 level admin" in lines
    assert f"backend {BACKEND}" in lines


def test_config_retries_only_requests_that_were_never_sent():
    lines = directives(config_text(1, {"gw1": 2}, Path("s")))
    assert [line for line in lines if line.startswith("retry-on")] == ["retry-on conn-failure"]
    assert "option redispatch 1" in lines and "retries 3" in lines
    assert "option http-server-close" in lines  # no idle server connection a draining gateway could close


def test_config_never_buffers_streams_nor_leaves_the_foreground_user():
    text = config_text(1, {"gw1": 2}, Path("s"))
    for absent in (
        "http-buffer-request",
        "compression",
        "daemon",
        "chroot",
        "user ",
        "group ",
        "master-worker",
    ):
        assert absent not in " ".join(directives(text))
    assert "option http-no-delay" in directives(text)  # a token frame is not held back to fill a packet
    assert "noreuseport" in directives(text)  # a second haproxy on our port must fail to bind, not share it


def test_config_follows_custom_checks():
    lines = directives(
        config_text(1, {"a": 2}, Path("s"), Checks(inter_ms=100, fall=3, rise=1, timeout_ms=900))
    )
    assert "default-server check inter 100ms fastinter 250ms fall 3 rise 1" in lines
    assert "timeout check 900ms" in lines


STAT = """# pxname,svname,qcur,status,addr,wretr,wredis,econ,eresp
clients,FRONTEND,,OPEN,,,,,
gateways,gw1,0,UP,127.0.0.1:18081,2,2,1,0
gateways,gw2,0,DOWN 1/2,127.0.0.1:40001,0,0,,
gateways,BACKEND,0,UP,,2,2,1,0
"""


def test_parse_stat_reads_each_servers_state_port_and_retries():
    servers = parse_stat(STAT)
    assert set(servers) == {"gw1", "gw2"}
    assert servers["gw1"].status == "UP" and servers["gw1"].port == 18081
    assert (
        servers["gw1"].retries == 2
        and servers["gw1"].redispatches == 2
        and servers["gw1"].connect_errors == 1
    )
    assert servers["gw2"].status == "DOWN 1/2" and servers["gw2"].port == 40001
    assert servers["gw2"].connect_errors == 0
