#!/usr/bin/env python3
"""mkoci.py: build a small single-platform OCI image layout on disk, no Docker.

  mkoci.py DIR TAG [--layers N] [--layer-size BYTES] [--created ISO8601]
                   [--platforms amd64,arm64]

Writes DIR/oci-layout, DIR/blobs/sha256/<hex> (N gzip'd tar layers holding
random bytes, a config JSON, the manifest) and adds TAG to DIR/index.json
(an existing layout gets one more tagged image). Prints one JSON object:
{"manifest": {"digest", "size"}, "config": {"digest", "size"},
 "layers": [{"digest", "size"}, ...]} -- the sizes a registry will report.
With --platforms, TAG names an OCI index of one image per platform; then
"manifest" is the index and "children" lists each platform's image.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import tarfile


def put_blob(root, data):
    d = hashlib.sha256(data).hexdigest()
    path = os.path.join(root, "blobs", "sha256", d)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}


def layer(i, size):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        payload = os.urandom(size)
        ti = tarfile.TarInfo("data/file%d.bin" % i)
        ti.size = len(payload)
        ti.mtime = 0
        tf.addfile(ti, io.BytesIO(payload))
    tar = raw.getvalue()
    gz = gzip.compress(tar, mtime=0)
    return tar, gz


def image(a, arch):
    layers, diff_ids = [], []
    for i in range(a.layers):
        # layer sizes differ so a size mix-up shows
        tar, gz = layer(i, max(1, a.layer_size // (i + 1)))
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
        d = put_blob(a.dir, gz)
        d["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
        layers.append(d)
    config = {
        "created": a.created,
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"], "Labels": {"built-by": "mkoci"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": a.created, "created_by": "mkoci.py"}],
    }
    cfg = put_blob(a.dir, json.dumps(config, sort_keys=True).encode())
    cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": cfg,
        "layers": layers,
    }
    mbytes = json.dumps(manifest, sort_keys=True).encode()
    man = put_blob(a.dir, mbytes)
    return {
        "arch": arch,
        "manifest": man,
        "config": {"digest": cfg["digest"], "size": cfg["size"]},
        "layers": [{"digest": l["digest"], "size": l["size"]} for l in layers],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("tag")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--layer-size", type=int, default=150000)
    ap.add_argument("--created", default="2024-01-02T03:04:05Z")
    ap.add_argument("--platforms", default="")
    a = ap.parse_args()
    os.makedirs(os.path.join(a.dir, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(a.dir, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    if a.platforms:
        children = [image(a, arch) for arch in a.platforms.split(",")]
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": c["manifest"]["digest"],
                "size": c["manifest"]["size"],
                "platform": {"architecture": c["arch"], "os": "linux"},
            } for c in children],
        }
        man = put_blob(a.dir, json.dumps(index, sort_keys=True).encode())
        mtype = index["mediaType"]
        result = {"manifest": man, "children": children}
    else:
        result = image(a, "amd64")
        man = result["manifest"]
        mtype = "application/vnd.oci.image.manifest.v1+json"
    result["manifest_file"] = os.path.join(a.dir, "blobs", "sha256", man["digest"][7:])
    idx_path = os.path.join(a.dir, "index.json")
    try:
        with open(idx_path) as f:
            index = json.load(f)
    except FileNotFoundError:
        index = {"schemaVersion": 2, "manifests": []}
    index["manifests"] = [
        m for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != a.tag
    ]
    index["manifests"].append({
        "mediaType": mtype,
        "digest": man["digest"],
        "size": man["size"],
        "annotations": {"org.opencontainers.image.ref.name": a.tag},
    })
    with open(idx_path, "w") as f:
        json.dump(index, f)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
