#!/usr/bin/env python3
"""Writes small OCI image layouts for tests (no Docker needed).

  oci_image.py DIR TAG [--created RFC3339|none] [--content TEXT]
               [--platforms amd64,arm64] [--size BYTES]

Adds image TAG to the OCI layout DIR (created if missing): one gzip'd tar
layer holding /hello.txt with TEXT (plus --size bytes of random data so
images differ in size), a config JSON whose `created` is the given date
(`none` omits the field), and an image manifest. With --platforms, TAG
is an OCI index of one image manifest per platform (same created date,
content suffixed with the platform). Prints the digest of TAG's manifest.

Push with: skopeo copy [--all] oci:DIR:TAG docker://HOST/REPO:TAG --dest-tls-verify=false
The same TEXT, date and size give the same digest (deterministic layers),
which is how tests make two tags share one manifest.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import random
import tarfile


def put_blob(root, data):
    d = hashlib.sha256(data).hexdigest()
    p = os.path.join(root, "blobs", "sha256")
    os.makedirs(p, exist_ok=True)
    with open(os.path.join(p, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def layer_bytes(text, size):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as t:
        files = [("hello.txt", text.encode())]
        if size:
            rnd = random.Random(text + str(size))
            files.append(("pad.bin", bytes(rnd.getrandbits(8) for _ in range(size))))
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 0
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
    tar = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
        g.write(tar)
    return tar, gz.getvalue()


def image(root, text, created, arch, size):
    tar, gz = layer_bytes(text, size)
    ldig, llen = put_blob(root, gz)
    cfg = {
        "architecture": arch,
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]},
    }
    if created != "none":
        cfg["created"] = created
    cdig, clen = put_blob(root, json.dumps(cfg, sort_keys=True).encode())
    man = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": clen},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ldig, "size": llen}],
    }
    mdig, mlen = put_blob(root, json.dumps(man, sort_keys=True).encode())
    return {"mediaType": man["mediaType"], "digest": mdig, "size": mlen}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("tag")
    ap.add_argument("--created", default="2020-01-01T00:00:00Z")
    ap.add_argument("--content", default=None)
    ap.add_argument("--platforms", default="")
    ap.add_argument("--size", type=int, default=0)
    a = ap.parse_args()
    text = a.content if a.content is not None else a.tag
    os.makedirs(a.dir, exist_ok=True)
    with open(os.path.join(a.dir, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    if a.platforms:
        ms = []
        for arch in a.platforms.split(","):
            d = image(a.dir, text + "-" + arch, a.created, arch, a.size)
            d["platform"] = {"architecture": arch, "os": "linux"}
            ms.append(d)
        idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ms}
        idig, ilen = put_blob(a.dir, json.dumps(idx, sort_keys=True).encode())
        desc = {"mediaType": idx["mediaType"], "digest": idig, "size": ilen}
    else:
        desc = image(a.dir, text, a.created, "amd64", a.size)
    desc["annotations"] = {"org.opencontainers.image.ref.name": a.tag}
    ip = os.path.join(a.dir, "index.json")
    top = {"schemaVersion": 2, "manifests": []}
    if os.path.exists(ip):
        with open(ip) as f:
            top = json.load(f)
    top["manifests"] = [m for m in top["manifests"]
                        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != a.tag]
    top["manifests"].append(desc)
    with open(ip, "w") as f:
        json.dump(top, f)
    print(desc["digest"])


if __name__ == "__main__":
    main()
