"""The migrations form one line: branches merged with their own numbers must be re-chained,
or `upgrade head` refuses to start a server ("multiple heads")."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from cronwheel.store.migrate import MIGRATIONS


def test_the_migrations_have_one_head_and_no_branch() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1
    chain = [rev.revision for rev in script.walk_revisions()]
    assert chain == sorted(chain, reverse=True)  # 0006 -> 0005 -> ... -> 0001, one each
    assert [r for r in script.walk_revisions() if r.is_branch_point] == []
