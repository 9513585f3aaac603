"""held-out pair outcomes per critic and pair set, reused across cycles

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 23:00:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pair_outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("critic", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("pair_set", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("critic", "pair_set"),
    )
    with op.batch_alter_table("pair_outcomes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pair_outcomes_critic"), ["critic"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pair_outcomes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pair_outcomes_critic"))
    op.drop_table("pair_outcomes")
