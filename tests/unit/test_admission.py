"""The dialects' network policy, judged purely: longest prefix, IPv4-mapped addresses, the
built-in loopback rules, and whether an app owns where a rule writes."""

from __future__ import annotations

import pytest

from cronwheel.domain.admission import (
    AdmissionRule,
    check_rule_owned,
    choose,
    client_address,
    default_rules,
    new_rule,
    owns_prefix,
    parse_network,
    qschedule_token_hash,
)
from cronwheel.domain.errors import InvalidField

RULES = (
    new_rule("delayjob", "10.0.0.0/8", "wide", "wide-ns"),
    new_rule("delayjob", "10.1.0.0/16", "narrow", "narrow-ns"),
    new_rule("delayjob", "10.1.2.3/32", "one", "one-ns"),
    new_rule("delayjob", "2001:db8::/32", "six", "six-ns"),
)


def chosen(host: str) -> str | None:
    rule = choose(RULES, client_address(host))
    return None if rule is None else rule.app


@pytest.mark.parametrize(("host", "app"), [
    ("10.9.9.9", "wide"), ("10.1.9.9", "narrow"), ("10.1.2.3", "one"), ("10.1.2.4", "narrow"),
    ("11.0.0.1", None), ("2001:db8::1", "six"), ("2001:db9::1", None),
    ("::ffff:10.1.2.3", "one"),  # a dual-stack socket's form of an IPv4 client
    ("::ffff:11.0.0.1", None), ("unix-socket", None), ("", None),
])
def test_the_most_specific_network_holding_the_address_wins(host: str, app: str | None) -> None:
    assert chosen(host) == app


def test_the_built_in_rules_admit_loopback_only() -> None:
    rules = default_rules("kubernetes", "k8s-job")
    for host in ("127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"):
        rule = choose(rules, client_address(host))
        assert rule is not None and (rule.app, rule.namespace) == ("system", "k8s-job")
    for host in ("10.1.2.3", "::2", "192.168.0.1"):
        assert choose(rules, client_address(host)) is None


def test_networks_are_checked_and_kept_canonical() -> None:
    assert str(parse_network("10.1.2.3")) == "10.1.2.3/32"
    assert str(parse_network("::ffff:10.0.0.0/104")) == "10.0.0.0/8"  # mapped: judged as v4
    assert new_rule("kubernetes", "2001:DB8::/32", "a", "ns").network == "2001:db8::/32"
    for bad in ("10.0.0.1/8", "10.0.0.0/33", "example.com", ""):
        with pytest.raises(InvalidField) as refused:
            parse_network(bad)
        assert refused.value.field == "network"
    with pytest.raises(InvalidField, match="dialect"):
        new_rule("qschedule", "10.0.0.0/8", "a", "ns")
    with pytest.raises(InvalidField, match="namespace"):
        new_rule("delayjob", "10.0.0.0/8", "a", "team-*")


def test_a_rule_writes_only_where_its_app_owns() -> None:
    claims = {"team": "team", "team-*": "team", "dispatch:*": "system",
              "dispatch:team-*": "team", "dispatch:team-x*": "other"}
    check_rule_owned(new_rule("delayjob", "10.0.0.0/8", "team", "team-dj"), claims)
    with pytest.raises(InvalidField, match="does not own namespace 'billing'"):
        check_rule_owned(new_rule("delayjob", "10.0.0.0/8", "team", "billing"), claims)
    # dispatchserver names a prefix: the app must own every namespace under it
    assert owns_prefix("team", "dispatch:team-a:", claims)
    assert not owns_prefix("team", "dispatch:team-", claims)  # 'dispatch:team-x*' is other's
    assert not owns_prefix("team", "dispatch:", claims)
    assert owns_prefix("system", "dispatch:legacy:", claims)
    with pytest.raises(InvalidField, match="starting with 'dispatch:'"):
        check_rule_owned(new_rule("dispatchserver", "10.0.0.0/8", "team", "dispatch:"), claims)


def test_a_qschedule_token_is_kept_as_a_hash_of_its_bytes() -> None:
    digest = qschedule_token_hash(b"a-qschedule-token")
    assert len(digest) == 64 and "a-qschedule-token" not in digest
    assert digest != qschedule_token_hash(b"a-qschedule-tokeN")


def test_a_rule_is_a_value() -> None:
    rule = AdmissionRule("delayjob", "10.0.0.0/8", "a", "ns")
    assert rule == new_rule("delayjob", "10.0.0.0/8", "a", "ns")
