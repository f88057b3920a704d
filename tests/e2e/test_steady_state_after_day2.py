"""After every day-2 command of the suite, `deploy` changes nothing on any host.

Each of them claims to leave the hosts as a deploy of the (new) spec would: the restores of
test_postgresql_backups.py, both rotations of test_rotate_minio_users.py, the Trino worker's
scale-out and scale-in, and the MinIO server pool's scale-out (4 -> 8 nodes). One deploy here
checks them all: a deploy of this environment takes minutes on CI, and one after each operation
was a fifth of the end-to-end suite's time. When it fails, the changed tasks are in the message
and `.platform/e2e/history.jsonl` says which operation ran last on those hosts.

Runs after test_scale_with_a_minio_pool.py and before test_teardown_destroy.py (pytest orders files
by name); the environment's own first deploy is checked for idempotence in test_local_env.py.
"""

from __future__ import annotations

import pytest
from e2e_support import changed_by_deploy

pytestmark = pytest.mark.e2e


def test_a_deploy_after_restores_rotations_and_scale_outs_changes_nothing(deployed):
    changed = changed_by_deploy(deployed)
    assert changed == {}, f"deploy after the suite's day-2 commands changed: {changed}"
