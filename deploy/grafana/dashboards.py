#!/usr/bin/env python3
"""Generates the Grafana dashboards of deploy/grafana/ (the committed JSON is
this script's output; tests/integration/test_deploy.sh checks that they
agree, and that every metric name used exists in src/).

  python3 deploy/grafana/dashboards.py [OUTDIR]     (default: this directory)

Edit the panels here, run it, commit both."""
import json, sys, os
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}

class D:
    def __init__(self, uid, title, desc, inst_query, tags):
        self.uid, self.title, self.desc, self.inst_query, self.tags = uid, title, desc, inst_query, tags
        self.panels, self.y, self.x, self.rowh, self.id = [], 0, 0, 0, 1
    def row(self, title):
        if self.x:
            self.y += self.rowh; self.x = 0; self.rowh = 0
        self.panels.append({"type": "row", "title": title, "id": self.id, "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.id += 1; self.y += 1
    def panel(self, kind, title, targets, w=12, h=8, unit=None, desc="", **extra):
        if self.x + w > 24:
            self.y += self.rowh; self.x = 0; self.rowh = 0
        t = []
        for i, tg in enumerate(targets):
            if isinstance(tg, str):
                tg = (tg, "")
            expr, legend = tg[0], tg[1]
            d = {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto", "refId": chr(65 + i)}
            if kind in ("table", "stat", "bargauge", "gauge") and extra.get("instant", kind == "table"):
                d["instant"] = True; d["range"] = False
                if kind == "table":
                    d["format"] = "table"
            t.append(d)
        extra.pop("instant", None)
        p = {"type": kind, "title": title, "id": self.id, "datasource": DS, "description": desc,
             "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y}, "targets": t,
             "fieldConfig": {"defaults": {}, "overrides": []}, "options": {}}
        if unit:
            p["fieldConfig"]["defaults"]["unit"] = unit
        mappings = extra.pop("mappings", None)
        if mappings:
            p["fieldConfig"]["defaults"]["mappings"] = mappings
        thresholds = extra.pop("thresholds", None)
        if thresholds:
            p["fieldConfig"]["defaults"]["thresholds"] = {"mode": "absolute", "steps": thresholds}
            p["fieldConfig"]["defaults"]["color"] = {"mode": "thresholds"}
        if kind == "table":
            p["transformations"] = [{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True}}}]
        p.update(extra)
        self.panels.append(p)
        self.id += 1
        self.x += w; self.rowh = max(self.rowh, h)
    def alertlist(self, title, names, w=24, h=6):
        if self.x + w > 24:
            self.y += self.rowh; self.x = 0; self.rowh = 0
        self.panels.append({"type": "alertlist", "title": title, "id": self.id,
                            "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y},
                            "options": {"alertName": names, "showOptions": "current", "maxItems": 20,
                                        "stateFilter": {"firing": True, "pending": True},
                                        "alertInstanceLabelFilter": "", "viewMode": "list",
                                        "dashboardAlerts": False, "groupMode": "default"}})
        self.id += 1; self.x += w; self.rowh = max(self.rowh, h)
    def dump(self, fname):
        d = {
            "uid": self.uid, "title": self.title, "description": self.desc, "tags": self.tags,
            "editable": True, "graphTooltip": 1, "schemaVersion": 37, "version": 1,
            "time": {"from": "now-24h", "to": "now"}, "refresh": "1m", "timezone": "",
            "annotations": {"list": []},
            "links": [{"type": "dashboards", "tags": ["nexus-shipper"], "asDropdown": True,
                       "title": "nexus-shipper dashboards", "includeVars": True, "keepTime": True}],
            "templating": {"list": [
                {"name": "datasource", "label": "Data source", "type": "datasource",
                 "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": ""},
                {"name": "instance", "label": "Instance", "type": "query", "datasource": DS,
                 "query": {"query": self.inst_query, "refId": "instance"},
                 "definition": self.inst_query, "refresh": 2, "multi": True, "includeAll": True,
                 "allValue": ".*", "current": {}, "sort": 1, "hide": 0},
            ]},
            "panels": self.panels,
        }
        with open(os.path.join(OUT, fname), "w") as f:
            json.dump(d, f, indent=2, ensure_ascii=False)
            f.write("\n")

I = 'instance=~"$instance"'
R = "$__rate_interval"
UPDOWN = [{"type": "value", "options": {"0": {"text": "DOWN", "color": "red"}, "1": {"text": "UP", "color": "green"}}}]
RED0 = [{"color": "red", "value": None}, {"color": "green", "value": 1}]

# ---------------------------------------------------------------- Nexus overview
d = D("nexus-shipper-nexus", "Nexus overview", "Sonatype Nexus as nexus-shipper sees it: health, blob stores, repositories, tasks, certificates, docker connectors.",
      "label_values(nexus_up, instance)", ["nexus-shipper", "nexus"])
d.row("Health")
d.panel("stat", "Nexus up", [(f"nexus_up{{{I}}}", "{{instance}}")], w=4, h=4, mappings=UPDOWN, thresholds=RED0, instant=True)
d.panel("stat", "Writable", [(f"nexus_writable{{{I}}}", "{{instance}}")], w=4, h=4,
        mappings=[{"type": "value", "options": {"0": {"text": "READ-ONLY", "color": "red"}, "1": {"text": "writable", "color": "green"}}}], thresholds=RED0, instant=True)
d.panel("stat", "Failing health checks", [(f"count by (instance) (nexus_health_check{{{I}}} == 0) or on(instance) (0 * nexus_up{{{I}}})", "{{instance}}")], w=4, h=4,
        thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}], instant=True)
d.panel("timeseries", "Status response time", [(f"nexus_status_response_seconds{{{I}}}", "{{instance}}")], w=12, h=4, unit="s")
d.panel("table", "Health checks", [(f"nexus_health_check{{{I}}}", "")], w=12, h=8,
        desc="1 = healthy, one row per check Nexus reports. The message of a failing check is in the shipper's log (\"Nexus health check ... is unhealthy: ...\").", mappings=UPDOWN)
d.panel("timeseries", "Health checks failing over time", [(f"count by (instance) (nexus_health_check{{{I}}} == 0)", "{{instance}}")], w=12, h=8)
d.row("Blob stores")
d.panel("timeseries", "Blob store size", [(f"nexus_blobstore_size_bytes{{{I}}}", "{{instance}} {{blobstore}}")], unit="bytes")
d.panel("timeseries", "Space available to the blob store", [(f"nexus_blobstore_available_bytes{{{I}}}", "{{instance}} {{blobstore}}")], unit="bytes")
d.panel("bargauge", "Soft quota used", [(f"nexus_blobstore_size_bytes{{{I}}} / nexus_blobstore_quota_limit_bytes{{{I}}}", "{{instance}} {{blobstore}}")], w=8, unit="percentunit",
        thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 0.8}, {"color": "red", "value": 1}], instant=True,
        desc="For spaceUsedQuota stores: size / limit. Violations per Nexus in the next panel.")
d.panel("table", "Quota violations", [(f"nexus_blobstore_quota_violation{{{I}}} == 1", "")], w=8)
d.panel("timeseries", "Blob count", [(f"nexus_blobstore_blobs{{{I}}}", "{{instance}} {{blobstore}}")], w=8)
d.panel("table", "Unavailable blob stores", [(f"nexus_blobstore_available{{{I}}} == 0", "")], w=24, h=5)
d.row("Repositories")
d.panel("bargauge", "Largest repositories", [(f"topk(15, nexus_repository_size_bytes{{{I}}})", "{{instance}} {{repository}} ({{format}})")], unit="bytes", h=10, instant=True,
        options={"orientation": "horizontal", "displayMode": "gradient"})
d.panel("timeseries", "Repository size", [(f"nexus_repository_size_bytes{{{I}}}", "{{instance}} {{repository}}")], unit="bytes", h=10)
d.panel("timeseries", "Components per repository", [(f"nexus_repository_components{{{I}}}", "{{instance}} {{repository}}")], w=8)
d.panel("table", "Offline or unreachable repositories", [(f"nexus_repository_online{{{I}}} == 0", "offline"), (f"nexus_repository_up{{{I}}} == 0", "probe failed")], w=8)
d.panel("table", "Repositories without cleanup policy", [(f"nexus_repository_cleanup_policies{{{I}}} == 0", "")], w=8)
d.panel("table", "Repositories", [(f"nexus_repository_info{{{I}}}", "")], w=24, h=8)
d.row("Tasks")
d.panel("table", "Task state", [(f"nexus_task_state{{{I}}} == 1", "")], w=12,
        desc="nexus_task_state is a state set: every known state of every task is a series, the current one is 1.")
d.panel("table", "Tasks whose last run failed", [(f"nexus_task_last_run_result{{{I},result=~\"FAILED|INTERRUPTED|CANCELED\"}} == 1", "")], w=12)
d.panel("table", "Time since last run", [(f"time() - nexus_task_last_run_timestamp_seconds{{{I}}}", "")], w=12, unit="s")
d.panel("table", "Time to next run", [(f"nexus_task_next_run_timestamp_seconds{{{I}}} - time()", "")], w=12, unit="s")
d.row("Certificates")
d.panel("bargauge", "Days until certificates expire", [(f"sort(nexus_certificate_expires_in_seconds{{{I}}} / 86400)", "{{host}}:{{port}} {{repository}}")], w=12, h=10, unit="d",
        thresholds=[{"color": "red", "value": None}, {"color": "orange", "value": 0}, {"color": "green", "value": 21}], instant=True,
        options={"orientation": "horizontal", "displayMode": "basic"})
d.panel("table", "Certificates", [(f"nexus_certificate_expiry_timestamp_seconds{{{I}}} * 1000", "")], w=12, h=10, unit="dateTimeAsIso",
        desc="notAfter, subject, issuer and serial of every checked endpoint.")
d.panel("table", "Endpoints failing the TLS check", [(f"nexus_certificate_up{{{I}}} == 0", "unreachable"), (f"nexus_certificate_valid{{{I}}} == 0", "invalid")], w=24, h=6)
d.row("Docker connectors")
d.panel("stat", "Docker ports up", [(f"nexus_docker_port_up{{{I}}}", "{{repository}} {{scheme}}:{{port}}")], w=12, h=6, mappings=UPDOWN, thresholds=RED0, instant=True)
d.panel("timeseries", "Docker port probe time", [(f"nexus_docker_port_probe_duration_seconds{{{I}}}", "{{repository}} {{scheme}}:{{port}}")], w=12, h=6, unit="s")
d.panel("table", "Port conflicts and unexpected answers", [(f"nexus_docker_port_conflict{{{I}}} == 1", "conflict"), (f"nexus_docker_port_probe_status_code{{{I}}} != 401 and nexus_docker_port_probe_status_code{{{I}}} != 200", "status")], w=12)
d.panel("table", "Stale docker tags (branch gone in GitLab)", [(f"nexus_gitlab_stale_tags{{{I}}} > 0", "")], w=12,
        desc="nexus_gitlab_stale_tags: tags whose branch or git tag is gone from the GitLab project. Tags nobody downloads are nexus_docker_stale_tags (database view).")
d.panel("timeseries", "Docker tags per image", [(f"topk(20, nexus_docker_tags{{{I}}})", "{{repository}} {{image}}")], w=12)
d.panel("table", "Oldest tag age", [(f"topk(20, nexus_docker_image_oldest_tag_age_seconds{{{I}}})", "")], w=12, unit="s")
d.row("Database view (PostgreSQL collectors)")
d.panel("timeseries", "Blob store size (database)", [(f"nexus_blobstore_db_size_bytes{{{I}}}", "{{instance}} {{blobstore}}")], w=8, unit="bytes",
        desc="blob_store_metrics as Nexus records them; compare with the REST view above.")
d.panel("bargauge", "Reclaimable by the cleanup rules", [(f"topk(15, nexus_cleanup_reclaimable_bytes{{{I}}})", "{{repository}}")], w=8, unit="bytes", instant=True,
        options={"orientation": "horizontal", "displayMode": "gradient"})
d.panel("table", "Tags the cleanup rules would delete", [(f"nexus_cleanup_reclaimable_tags{{{I}}} > 0", "")], w=8)
d.panel("bargauge", "Largest docker images", [(f"topk(15, nexus_docker_image_size_bytes{{{I}}})", "{{repository}} {{image}}")], w=12, h=10, unit="bytes", instant=True,
        options={"orientation": "horizontal", "displayMode": "gradient"})
d.panel("timeseries", "Docker tags by age (created at most N days ago)", [(f"sum by (le_days) (nexus_docker_tags_by_age{{{I}}})", "<= {{le_days}} d")], w=12, h=10)
d.panel("timeseries", "Docker images per repository", [(f"nexus_docker_images{{{I}}}", "{{instance}} {{repository}}")], w=8)
d.panel("table", "Repositories not downloaded for 90 days", [(f"(time() - nexus_repository_last_download_timestamp_seconds{{{I}}}) > 90 * 86400", "")], w=8, unit="s")
d.panel("table", "Connector port: database and REST disagree", [(f"nexus_docker_connector_port_mismatch{{{I}}} == 1", "")], w=8)
d.panel("table", "Expected repositories missing", [(f"nexus_repository_present{{{I}}} == 0", "")], w=12, h=6)
d.panel("table", "Images whose GitLab project is gone", [(f"nexus_docker_image_gitlab_project_exists{{{I}}} == 0", "")], w=12, h=6)
d.dump("nexus-overview.json")

# ---------------------------------------------------------------- Registry cleanup
d = D("nexus-shipper-cleanup", "Registry cleanup", "Runs of `nexus-shipper cleanup` (pushed to the Pushgateway as job registry_cleanup and remote-written after each run).",
      "label_values(registry_cleanup_runs_total, instance)", ["nexus-shipper", "registry-cleanup"])
d.row("Runs")
d.panel("stat", "Since last successful run", [(f"time() - registry_cleanup_last_success_timestamp_seconds{{{I}}}", "{{instance}}")], w=6, h=5, unit="s",
        thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 172800}], instant=True)
d.panel("stat", "Runs in range, by outcome", [(f"sum by (status) (increase(registry_cleanup_runs_total{{{I}}}[$__range]))", "{{status}}")], w=6, h=5, instant=True)
d.panel("stat", "Errors in range", [(f"sum(increase(registry_cleanup_errors_total{{{I}}}[$__range]))", "")], w=6, h=5,
        thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}], instant=True)
d.panel("stat", "Duration of the last run", [(f"registry_cleanup_duration_seconds{{{I}}}", "{{instance}}")], w=6, h=5, unit="s", instant=True)
d.panel("timeseries", "Runs per day, by outcome", [(f"sum by (instance, status) (increase(registry_cleanup_runs_total{{{I}}}[1d]))", "{{instance}} {{status}}")], w=12,
        desc="success, failure, aborted_max_deletions (the plan exceeded max_deletions), delete_disabled (registry answers 405)")
d.panel("timeseries", "Run duration", [(f"registry_cleanup_duration_seconds{{{I}}}", "{{instance}}")], w=12, unit="s")
d.row("Tags and manifests")
d.panel("timeseries", "Tags and repositories scanned by the last run", [(f"registry_cleanup_tags_scanned{{{I}}}", "{{instance}} tags"), (f"registry_cleanup_repositories_scanned{{{I}}}", "{{instance}} repositories")], w=12)
d.panel("piechart", "Tags kept by the last run, by reason", [(f"sum by (reason) (registry_cleanup_tags_kept{{{I}}})", "{{reason}}")], w=12, instant=True)
d.panel("bargauge", "Tags deleted in range, by repository", [(f"topk(20, sum by (repository) (increase(registry_cleanup_tags_deleted_total{{{I}}}[$__range])))", "{{repository}}")], w=12, h=10, instant=True,
        options={"orientation": "horizontal", "displayMode": "gradient"})
d.panel("timeseries", "Manifests deleted by the last run", [(f"registry_cleanup_manifests_deleted{{{I}}}", "{{instance}}")], w=12, h=10)
d.panel("timeseries", "Space freed by the last run", [(f"registry_cleanup_freed_bytes{{{I}}}", "{{instance}} {{method}}")], w=24, unit="bytes",
        desc="storage_du: du of storage_path before minus after the garbage collection; blob_sum: sizes of the blobs no kept manifest references.")
d.alertlist("Cleanup alerts", "RegistryCleanup")
d.dump("registry-cleanup.json")

# ---------------------------------------------------------------- Skopeo
d = D("nexus-shipper-skopeo", "Skopeo operations", "`nexus-shipper skopeo ...` runs: every panel of the skopeo wrapper's dashboard (seed 002), with the seed's metric names.",
      "label_values(skopeo_operations_total, instance)", ["nexus-shipper", "skopeo"])
d.row("Operations")
d.panel("stat", "Operations (range)", [(f"sum by (status) (increase(skopeo_operations_total{{{I}}}[$__range]))", "{{status}}")], w=8, h=5, instant=True,
        desc="General operation statistics: successes and errors in the selected time range.")
d.panel("stat", "Success ratio (range)", [(f"sum(increase(skopeo_operations_total{{{I},status=\"success\"}}[$__range])) / sum(increase(skopeo_operations_total{{{I}}}[$__range]))", "")], w=8, h=5, unit="percentunit", instant=True,
        thresholds=[{"color": "red", "value": None}, {"color": "orange", "value": 0.9}, {"color": "green", "value": 0.99}])
d.panel("stat", "Active operations", [(f"sum(skopeo_active_operations{{{I}}})", "")], w=8, h=5, instant=True)
d.panel("timeseries", "Operations per second by type and status", [(f"sum by (operation, status) (rate(skopeo_operations_total{{{I}}}[{R}]))", "{{operation}} {{status}}")], w=12, unit="ops")
d.panel("timeseries", "Active operations by type", [(f"sum by (operation) (skopeo_active_operations{{{I}}})", "{{operation}}")], w=12)
d.row("Duration")
d.panel("timeseries", "Operation duration (p50, p95, p99)", [
    (f"histogram_quantile(0.5, sum by (le, operation) (rate(skopeo_operation_duration_seconds_bucket{{{I}}}[{R}])))", "p50 {{operation}}"),
    (f"histogram_quantile(0.95, sum by (le, operation) (rate(skopeo_operation_duration_seconds_bucket{{{I}}}[{R}])))", "p95 {{operation}}"),
    (f"histogram_quantile(0.99, sum by (le, operation) (rate(skopeo_operation_duration_seconds_bucket{{{I}}}[{R}])))", "p99 {{operation}}")], w=12, unit="s")
d.panel("timeseries", "Average operation duration", [(f"sum by (operation) (rate(skopeo_operation_duration_seconds_sum{{{I}}}[{R}])) / sum by (operation) (rate(skopeo_operation_duration_seconds_count{{{I}}}[{R}]))", "{{operation}}")], w=12, unit="s")
d.row("Blobs")
d.panel("timeseries", "Blobs processed per second", [(f"sum by (operation, status) (rate(skopeo_blobs_processed_total{{{I}}}[{R}]))", "{{operation}} {{status}}")], w=8)
d.panel("timeseries", "Blob size (p50, p95)", [
    (f"histogram_quantile(0.5, sum by (le, operation) (rate(skopeo_blob_size_bytes_bucket{{{I}}}[{R}])))", "p50 {{operation}}"),
    (f"histogram_quantile(0.95, sum by (le, operation) (rate(skopeo_blob_size_bytes_bucket{{{I}}}[{R}])))", "p95 {{operation}}")], w=8, unit="bytes")
d.panel("timeseries", "Bytes copied per second", [(f"sum by (operation) (rate(skopeo_blob_size_bytes_sum{{{I}}}[{R}]))", "{{operation}}")], w=8, unit="Bps")
d.row("Sources and destinations")
d.panel("piechart", "Source types", [(f"sum by (source_type) (increase(skopeo_source_operations_total{{{I}}}[$__range]))", "{{source_type}}")], w=12, instant=True)
d.panel("piechart", "Destination types", [(f"sum by (destination_type) (increase(skopeo_destination_operations_total{{{I}}}[$__range]))", "{{destination_type}}")], w=12, instant=True)
d.row("Alerts and errors")
d.panel("timeseries", "Errors per second by type", [(f"sum by (operation, error_type) (rate(skopeo_operation_errors_total{{{I}}}[{R}]))", "{{operation}} {{error_type}}")], w=12,
        desc="The SkopeoHighErrorRate alert fires above 0.1/s for 2 minutes.")
d.panel("table", "Errors in range", [(f"sort_desc(sum by (operation, error_type) (increase(skopeo_operation_errors_total{{{I}}}[$__range])) > 0)", "")], w=12)
d.alertlist("Skopeo alerts", "Skopeo")
d.dump("skopeo-operations.json")

# ---------------------------------------------------------------- Shipper health
d = D("nexus-shipper-health", "Shipper health", "nexus-shipper itself: delivery outcomes, spool backlog, last send, collectors, buffer.",
      "label_values(nexus_shipper_build_info, instance)", ["nexus-shipper"])
d.row("Delivery")
d.panel("stat", "Since last delivery", [(f"time() - nexus_shipper_last_send_timestamp_seconds{{{I}}}", "{{instance}} {{target}}")], w=8, h=5, unit="s", instant=True,
        thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 300}, {"color": "red", "value": 900}])
d.panel("stat", "Spool backlog", [(f"sum by (instance, target) (nexus_shipper_spool_bytes{{{I}}})", "{{instance}} {{target}}")], w=8, h=5, unit="bytes", instant=True,
        thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}])
d.panel("stat", "Version", [(f"nexus_shipper_build_info{{{I}}}", "{{instance}} {{version}}")], w=8, h=5, instant=True,
        options={"textMode": "name", "reduceOptions": {"calcs": ["lastNotNull"]}})
d.panel("timeseries", "Samples sent, retried, dropped per second", [(f"sum by (instance, target, outcome) (rate(nexus_shipper_samples_total{{{I}}}[{R}]))", "{{instance}} {{target}} {{outcome}}")], w=12)
d.panel("timeseries", "Samples dropped, by reason", [(f"sum by (instance, target, reason) (increase(nexus_shipper_samples_total{{{I},outcome=\"dropped\"}}[{R}])) > 0", "{{instance}} {{target}} {{reason}}")], w=12)
d.panel("timeseries", "Batches delivered per second", [(f"rate(nexus_shipper_batches_sent_total{{{I}}}[{R}])", "{{instance}} {{target}}")], w=8)
d.panel("timeseries", "Bytes delivered per second", [(f"rate(nexus_shipper_sent_bytes_total{{{I}}}[{R}])", "{{instance}} {{target}}")], w=8, unit="Bps")
d.panel("timeseries", "Send duration (p95)", [(f"histogram_quantile(0.95, sum by (le, instance, target) (rate(nexus_shipper_send_duration_seconds_bucket{{{I}}}[{R}])))", "{{instance}} {{target}}")], w=8, unit="s")
d.row("Spool")
d.panel("timeseries", "Spool bytes", [(f"nexus_shipper_spool_bytes{{{I}}}", "{{instance}} {{target}}")], w=8, unit="bytes")
d.panel("timeseries", "Spooled batches", [(f"nexus_shipper_spool_segments{{{I}}}", "{{instance}} {{target}}")], w=8)
d.panel("timeseries", "Age of the oldest spooled batch", [(f"(time() - nexus_shipper_spool_oldest_timestamp_seconds{{{I}}}) and nexus_shipper_spool_oldest_timestamp_seconds{{{I}}} > 0", "{{instance}} {{target}}")], w=8, unit="s")
d.panel("timeseries", "Held in memory (spool unwritable)", [(f"nexus_shipper_memory_queue_bytes{{{I}}}", "{{instance}} {{target}}")], w=24, h=5, unit="bytes")
d.row("Collectors")
d.panel("state-timeline", "Collectors up", [(f"nexus_shipper_collector_up{{{I}}}", "{{instance}} {{collector}}")], w=12, h=9, mappings=UPDOWN, thresholds=RED0)
d.panel("timeseries", "Collector duration", [(f"nexus_shipper_collector_duration_seconds{{{I}}}", "{{instance}} {{collector}}")], w=12, h=9, unit="s")
d.panel("timeseries", "Collector failures", [(f"increase(nexus_shipper_collector_failures_total{{{I}}}[{R}]) > 0", "{{instance}} {{collector}}")], w=12, h=7)
d.panel("table", "Since the collector's last success", [(f"time() - nexus_shipper_collector_last_success_timestamp_seconds{{{I}}} and nexus_shipper_collector_last_success_timestamp_seconds{{{I}}} > 0", ""),
        (f"nexus_shipper_collector_last_success_timestamp_seconds{{{I}}} == 0", "never")], w=12, h=7, unit="s")
d.row("Buffer")
d.panel("timeseries", "Series in the buffer", [(f"nexus_shipper_buffer_series{{{I}}}", "{{instance}}")], w=8)
d.panel("timeseries", "Buffer memory", [(f"nexus_shipper_buffer_bytes{{{I}}}", "{{instance}}")], w=8, unit="bytes")
d.panel("timeseries", "Refused and rejected", [(f"increase(nexus_shipper_series_refused_total{{{I}}}[{R}])", "{{instance}} series refused (buffer_max_size)"), (f"increase(nexus_shipper_samples_rejected_total{{{I}}}[{R}])", "{{instance}} samples rejected")], w=8)
d.panel("timeseries", "Cycles per minute", [(f"rate(nexus_shipper_cycles_total{{{I}}}[{R}]) * 60", "{{instance}}")], w=24, h=5)
d.row("Process")
d.panel("stat", "Configuration reload", [(f"nexus_shipper_config_last_reload_successful{{{I}}}", "{{instance}}")], w=6, h=5, instant=True,
        mappings=[{"type": "value", "options": {"0": {"text": "FAILED", "color": "red"}, "1": {"text": "ok", "color": "green"}}}], thresholds=RED0,
        desc="Outcome of the last SIGHUP reload (1 at start); a refused reload keeps the old configuration running.")
d.panel("stat", "Uptime", [(f"time() - process_start_time_seconds{{{I}}}", "{{instance}}")], w=6, h=5, unit="s", instant=True)
d.panel("timeseries", "CPU", [(f"rate(process_cpu_seconds_total{{{I}}}[{R}])", "{{instance}}")], w=12, h=5, unit="percentunit")
d.panel("timeseries", "Resident memory", [(f"process_resident_memory_bytes{{{I}}}", "{{instance}}")], w=12, h=6, unit="bytes")
d.panel("timeseries", "Open file descriptors", [(f"process_open_fds{{{I}}}", "{{instance}} open"), (f"process_max_fds{{{I}}}", "{{instance}} limit")], w=12, h=6)
d.alertlist("Shipper alerts", "Shipper")
d.dump("shipper-health.json")
