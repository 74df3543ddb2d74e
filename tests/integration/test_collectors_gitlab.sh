#!/bin/bash
# The gitlab_stale_tags collector end to end, against the Nexus simulator
# playing GitLab too (setup: collectors_lib.sh): docker tags in Nexus whose
# branch is gone in GitLab, requests with the token and without Nexus's
# credentials, only the projects that have images; Link-only paging over 2
# pages of projects and branches, an image whose project is gone;
# configured [gitlab] projects (a missing id is logged).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init collectors_gitlab
. "$IT_DIR/collectors_lib.sh"

# =====================================================================
# 1. healthy
# =====================================================================
healthy_cycle

expect '{__name__=~"nexus_gitlab_stale_tags|nexus_docker_image_gitlab_project_exists"}' "stale tags" <<'EOF'
nexus_docker_image_gitlab_project_exists{image="team/app",project="team/app",repository="docker-hosted"} 1
nexus_docker_image_gitlab_project_exists{image="team/web",project="team/web",repository="docker-hosted"} 1
nexus_gitlab_stale_tags{image="team/app",project="team/app",repository="docker-hosted"} 1
nexus_gitlab_stale_tags{image="team/web",project="team/web",repository="docker-hosted"} 0
EOF
same_in_vm '{__name__=~"nexus_gitlab_stale_tags|nexus_docker_tags|nexus_repository_size_bytes"}'
$PY - "$(curl -fsS "$NEXUS_URL/__control/requests")" <<'PY' || fail "GitLab requests"
import json, sys
r = [x for x in json.loads(sys.argv[1]) if x["path"].startswith("/api/v4/")]
assert r and all(x["has_token"] and not x["has_auth"] for x in r), r
paths = sorted(set(x["path"] for x in r))
# only the projects that have images: 101 (team/app) and 102 (team/web)
assert paths == ["/api/v4/projects", "/api/v4/projects/101/repository/branches",
                 "/api/v4/projects/101/repository/tags", "/api/v4/projects/102/repository/branches",
                 "/api/v4/projects/102/repository/tags"], paths
PY

# =====================================================================
# 2. edge cases: Link-only paging, a project that is gone
# =====================================================================
scenario "$IT_TMP/s_edge.json"
run_once edge "$IT_TMP/healthy.conf"
all_up "edge: every collector up"
reqs=$(curl -fsS "$NEXUS_URL/__control/requests")
expect '{__name__=~"nexus_docker_tags|nexus_gitlab_stale_tags|nexus_docker_image_gitlab_project_exists"}' \
    "stale tags: Link-only paging, a branch on page 2, a project that is gone" <<'EOF'
nexus_docker_image_gitlab_project_exists{image="team/app",project="team/app",repository="docker-hosted"} 1
nexus_docker_image_gitlab_project_exists{image="team/removed",project="team/removed",repository="docker-hosted"} 0
nexus_docker_image_gitlab_project_exists{image="team/web",project="team/web",repository="docker-hosted"} 1
nexus_gitlab_stale_tags{image="team/app",project="team/app",repository="docker-hosted"} 1
nexus_gitlab_stale_tags{image="team/removed",project="team/removed",repository="docker-hosted"} 2
nexus_gitlab_stale_tags{image="team/web",project="team/web",repository="docker-hosted"} 0
nexus_docker_tags{image="team/app",repository="docker-hosted"} 7
nexus_docker_tags{image="team/removed",repository="docker-hosted"} 2
nexus_docker_tags{image="team/web",repository="docker-hosted"} 1
EOF
$PY - "$reqs" <<'PY' || fail "GitLab paging"
import json, sys
r = [x for x in json.loads(sys.argv[1]) if x["path"].startswith("/api/v4/")]
def pages(path):
    return sorted(x["query"] for x in r if x["path"] == path)
assert pages("/api/v4/projects") == ["simple=true&per_page=100&page=1",
                                     "simple=true&per_page=100&page=2"], pages("/api/v4/projects")
assert pages("/api/v4/projects/101/repository/branches") == ["per_page=100&page=1", "per_page=100&page=2"]
PY

# =====================================================================
# configured projects
# =====================================================================
scenario "$IT_TMP/s_healthy.json"
conf projects "" "" "" "" "team/app, 999"
run_once projects "$IT_TMP/projects.conf"
# configured [gitlab] projects: team/app is judged, team/web (not listed) is not; a missing id is logged
expect nexus_gitlab_stale_tags "stale tags with configured projects" <<'EOF'
nexus_gitlab_stale_tags{image="team/app",project="team/app",repository="docker-hosted"} 1
EOF
log_has "gitlab: project 999 not found"

it_log "ok"
