#!/usr/bin/env python3
"""GitLab API v4 fake for nexus-shipper tests (standard library only).

Same server, CLI and scenario format as nexus_fake.py; only the scenario's
"gitlab" block matters here. Use it when a test wants GitLab on its own port:

    gitlab_fake.py --scenario FILE [--host 127.0.0.1] [--port 0] [--port-file PATH]

Serves /api/v4/projects, /api/v4/projects/:id, /api/v4/projects/:id/repository/branches
and /tags with GitLab's pagination headers, plus the /__control/ endpoints.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nexus_fake  # noqa: E402

if __name__ == "__main__":
    sys.exit(nexus_fake.main(name="gitlab_fake", description=__doc__))
