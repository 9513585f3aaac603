"""the critic the daemon starts from is a critic version of no release

The daemon registers the critic it starts from (the configured initial critic, or the
shipped reference) as its first champion, so a held challenger always leaves one in place;
that version was retuned on no release, so ``critic_versions.release_id`` may be null.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 22:30:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CRITIC_VERSIONS = sa.table("critic_versions", sa.column("release_id"))


def upgrade() -> None:
    with op.batch_alter_table("critic_versions", schema=None) as batch_op:
        batch_op.alter_column(
            "release_id", existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=True
        )


def downgrade() -> None:
    op.execute(CRITIC_VERSIONS.delete().where(CRITIC_VERSIONS.c.release_id.is_(None)))
    with op.batch_alter_table("critic_versions", schema=None) as batch_op:
        batch_op.alter_column(
            "release_id", existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=False
        )
