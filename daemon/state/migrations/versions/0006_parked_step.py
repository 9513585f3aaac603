"""where a parked release failed: a column of step names, out of the release's metadata

Until now the cycle kept the name of the method that failed in ``meta["parked_at_step"]``,
so renaming a method stranded parked releases. The step names are now a fixed vocabulary
(``daemon.state.Step``); this migration moves each parked release's name into the new
``parked_step`` column. A name outside that vocabulary is dropped with a warning: retry then
starts the release over at sampling (every step is idempotent).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 18:10:00.000000
"""

import logging

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The steps as this revision knows them; a later rename adds its own migration.
STEPS = (
    "sample",
    "build_pairs",
    "retune",
    "register",
    "evaluate",
    "check_drift",
    "decide",
    "announce",
)
releases = sa.table(
    "releases",
    sa.column("id", sa.String()),
    sa.column("state", sa.String()),
    sa.column("meta", sa.JSON()),
    sa.column("parked_step", sa.String()),
)
log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("parked_step", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(releases.c.id, releases.c.state, releases.c.meta).where(
            releases.c.meta.is_not(None)
        )
    ).all()
    for release_id, state, meta in rows:
        if "parked_at_step" not in (meta or {}):
            continue
        meta = dict(meta)
        name = meta.pop("parked_at_step")
        step = name if state == "parked" and name in STEPS else None
        if state == "parked" and step is None:
            log.warning(
                "release %s was parked at an unknown step %r: retry samples again", release_id, name
            )
        connection.execute(
            releases.update().where(releases.c.id == release_id).values(meta=meta, parked_step=step)
        )


def downgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(releases.c.id, releases.c.meta, releases.c.parked_step).where(
            releases.c.parked_step.is_not(None)
        )
    ).all()
    for release_id, meta, step in rows:
        connection.execute(
            releases.update()
            .where(releases.c.id == release_id)
            .values(meta={**(meta or {}), "parked_at_step": step})
        )
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_column("parked_step")
