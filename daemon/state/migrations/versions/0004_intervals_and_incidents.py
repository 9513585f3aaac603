"""per-pair outcomes, score intervals and alert incidents

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 19:40:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcomes", sa.JSON(), nullable=True))
    with op.batch_alter_table("release_scores", schema=None) as batch_op:
        for column in ("quality_low", "quality_high", "alignment_low", "alignment_high"):
            batch_op.add_column(sa.Column(column, sa.Float(), nullable=True))
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("breaches", sa.Integer(), nullable=False),
        sa.Column("opened_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("closed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incidents_topic"), ["topic"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incidents_topic"))
    op.drop_table("incidents")
    with op.batch_alter_table("release_scores", schema=None) as batch_op:
        for column in ("alignment_high", "alignment_low", "quality_high", "quality_low"):
            batch_op.drop_column(column)
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.drop_column("outcomes")
