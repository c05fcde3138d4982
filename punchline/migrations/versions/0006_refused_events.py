"""refused events: the fence between a 503 at the edge and the worker

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('refused_events',
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('external_id', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('refused_at', sa.TIMESTAMP(timezone=True), server_default=sa.text('clock_timestamp()'), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_refused_events_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_refused_events'))
    )
    op.create_index(op.f('ix_refused_events_refused_at'), 'refused_events', ['refused_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_refused_events_refused_at'), table_name='refused_events')
    op.drop_table('refused_events')
