"""the wall time of each release's scoring, for the scoring throughput metric

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 13:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("release_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("release_scores", schema=None) as batch_op:
        batch_op.drop_column("seconds")
