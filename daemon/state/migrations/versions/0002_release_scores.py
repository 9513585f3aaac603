"""release scores

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 03:55:06.127930
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("release_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("critic_version_id", sa.Integer(), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("quality_mean", sa.Float(), nullable=False),
        sa.Column("quality_std", sa.Float(), nullable=False),
        sa.Column("alignment_mean", sa.Float(), nullable=True),
        sa.Column("alignment_std", sa.Float(), nullable=True),
        sa.Column("scores_path", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["critic_version_id"],
            ["critic_versions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["release_id"],
            ["releases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("release_id", "critic_version_id"),
    )
    with op.batch_alter_table("release_scores", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_release_scores_critic_version_id"), ["critic_version_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_release_scores_release_id"), ["release_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("release_scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_scores_release_id"))
        batch_op.drop_index(batch_op.f("ix_release_scores_critic_version_id"))

    op.drop_table("release_scores")
