"""The target policy: which addresses a job may make the server connect to."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronwheel.domain.netpolicy import (
    UNRESTRICTED,
    NetPolicy,
    PolicyError,
    always_refusal,
    literal_address,
)

DEFAULT = NetPolicy()

ALWAYS_DENIED = [
    "169.254.169.254",
    "169.254.0.1",
    "100.100.100.200",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fd00:ec2::254",
    "ff02::1",
    "::ffff:169.254.169.254",
    "[::ffff:169.254.169.254]",
    "::ffff:0.0.0.0",
    "2002:a9fe:a9fe::1",  # 6to4 wrapping 169.254.169.254
    "64:ff9b::a9fe:a9fe",  # NAT64 wrapping 169.254.169.254
    "0xa9fea9fe",
    "2852039166",
    "0251.0376.0251.0376",
    "169.254.43518",
]


@pytest.mark.parametrize("host", ALWAYS_DENIED)
def test_the_always_denied_set_is_refused_even_when_everything_is_allowed(host: str) -> None:
    everything = NetPolicy.from_settings(allow=["0.0.0.0/0", "::/0"])
    reason = everything.host_refusal(host)
    assert reason is not None and "always refused" in reason
    assert always_refusal(host) is not None
    assert DEFAULT.host_refusal(host) is not None


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.1", "0x7f.1", "2130706433", "0177.0.0.1", "::1", "[::1]",
             "::ffff:127.0.0.1", "127.255.255.254"]
)
def test_loopback_in_any_spelling_is_allowed_by_default_and_refused_without_the_allowance(
    host: str,
) -> None:
    assert DEFAULT.host_refusal(host) is None
    strict = NetPolicy.from_settings(allow=[])
    reason = strict.host_refusal(host)
    assert reason is not None and "internal address" in reason


@pytest.mark.parametrize(
    "host", ["10.0.0.5", "172.16.3.4", "192.168.1.1", "100.64.0.1", "fc00::1", "fd12::1",
             "::ffff:10.1.1.1", "198.18.0.1"]
)
def test_private_ranges_are_refused_unless_allowed(host: str) -> None:
    assert DEFAULT.host_refusal(host) is not None
    lan = NetPolicy.from_settings(
        allow=["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7",
               "198.18.0.0/15"]
    )
    assert lan.host_refusal(host) is None


def test_public_addresses_pass_and_names_are_left_to_connect_time() -> None:
    assert DEFAULT.host_refusal("93.184.215.14") is None
    assert DEFAULT.host_refusal("2606:4700::1111") is None
    assert DEFAULT.host_refusal("example.com") is None
    assert DEFAULT.host_refusal("metadata.google.internal") is None


def test_the_more_specific_entry_wins_and_a_tie_denies() -> None:
    policy = NetPolicy.from_settings(allow=["10.1.2.0/24"], deny=["10.0.0.0/8", "93.0.0.0/8"])
    assert policy.host_refusal("10.1.2.3") is None
    assert "deny list" in (policy.host_refusal("10.9.9.9") or "")
    assert "deny list" in (policy.host_refusal("93.184.215.14") or "")
    tie = NetPolicy.from_settings(allow=["127.0.0.0/8"], deny=["127.0.0.0/8"])
    assert tie.host_refusal("127.0.0.1") is not None


def test_deny_everything_but_one_network() -> None:
    policy = NetPolicy.from_settings(allow=["10.1.0.0/16"], deny=["0.0.0.0/0", "::/0"])
    assert policy.host_refusal("10.1.7.7") is None
    assert policy.host_refusal("8.8.8.8") is not None
    assert policy.host_refusal("2606:4700::1111") is not None


@pytest.mark.parametrize("bad", ["10.0.0.1/8", "nonsense", "300.0.0.0/8", ""])
def test_a_malformed_cidr_is_a_setting_error(bad: str) -> None:
    with pytest.raises(PolicyError):
        NetPolicy.from_settings(allow=[bad])


def test_schemes_are_a_subset_of_http_and_https() -> None:
    assert NetPolicy.from_settings(schemes=["HTTPS"]).schemes == {"https"}
    for schemes in (["ftp"], [], ["file", "http"]):
        with pytest.raises(PolicyError):
            NetPolicy.from_settings(schemes=schemes)


@pytest.mark.parametrize("name", ["1.2.3.4.5", "256.1.1.1", "08.1.1.1", "0x100.1", "a.b", "::zz"])
def test_text_resolvers_would_not_read_as_an_address_is_a_name(name: str) -> None:
    assert literal_address(name) is None


_PART_FORMATS = st.sampled_from(["{:d}", "0{:o}", "0x{:x}", "0X{:X}"])


@st.composite
def _inet_aton_text(draw: st.DrawFn) -> str:
    """1-4 dotted parts in decimal, octal or hex, as C resolvers accept them."""
    count = draw(st.integers(1, 4))
    high = [draw(st.integers(0, 255)) for _ in range(count - 1)]
    last = draw(st.integers(0, (1 << (8 * (5 - count))) - 1))
    return ".".join(draw(_PART_FORMATS).format(part) for part in [*high, last])


@given(_inet_aton_text())
def test_ipv4_text_forms_read_as_inet_aton_reads_them(text: str) -> None:
    expected = ipaddress.IPv4Address(socket.inet_aton(text))
    assert literal_address(text) == expected


@given(st.integers(0, 2**32 - 1))
def test_an_ipv4_mapped_address_is_judged_as_its_ipv4_address(number: int) -> None:
    v4 = ipaddress.IPv4Address(number)
    mapped = ipaddress.IPv6Address(f"::ffff:{v4}")
    assert DEFAULT.refusal(mapped) == (
        None if DEFAULT.refusal(v4) is None else f"{mapped}: {DEFAULT.refusal(v4)}"
    )


def test_unrestricted_only_refuses_the_always_denied_set() -> None:
    assert UNRESTRICTED.host_refusal("10.0.0.1") is None
    assert UNRESTRICTED.host_refusal("127.0.0.1") is None
    assert UNRESTRICTED.host_refusal("169.254.169.254") is not None


def test_a_worker_reads_the_same_setting_names_from_its_environment() -> None:
    from cronwheel.domain.netpolicy import policy_from_env

    assert policy_from_env({}) == NetPolicy()
    lan = policy_from_env({"CRONWHEEL_TARGET_ALLOW": "10.0.0.0/8, 127.0.0.0/8",
                           "CRONWHEEL_TARGET_DENY": '["10.9.0.0/16"]'})
    assert lan.host_refusal("10.1.1.1") is None
    assert lan.host_refusal("10.9.1.1") is not None
    assert policy_from_env({"CRONWHEEL_TARGET_ALLOW": ""}).host_refusal("127.0.0.1") is not None
