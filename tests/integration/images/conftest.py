"""One docker-registry per auth mode on loopback, all serving one storage directory: test images are
pushed once to the open one and pulled through the others."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_fixtures import PASSWORD, USER, Images, Registries

from shoal.images.service import ImageService
from shoal.testing import registry as registry_support
from shoal.testing.oci_images import Pusher, make_image, make_layer
from shoal.testing.registry import Registry, TLSFiles, TokenAuth
from shoal.testing.registry_pki import RegistryCA
from shoal.testing.token_service import ISSUER, TokenService

_why_not = registry_support.available()
if _why_not:
    pytest.skip(_why_not, allow_module_level=True)


def _push_all(pusher: Pusher) -> Images:
    base = make_layer({"etc/os-release": "NAME=shoal-test\n", "bin/tool": "#!/bin/sh\necho tool\n"},
                      modes={"bin/tool": 0o755}, symlinks={"bin/sh": "/bin/tool"})
    v1 = make_image([base, make_layer({"app/version": "1\n", "etc/.wh.os-release": b""})],
                    config={"Cmd": ["/app/run"], "Env": ["V=1"], "WorkingDir": "/app"})
    v2 = make_image([base, make_layer({"app/version": "2\n"})], oci=True, config={"Cmd": ["/app/run2"]})
    amd = make_image([make_layer({"arch": "amd64\n"})], oci=True)
    arm = make_image([make_layer({"arch": "arm64\n"})], oci=True, architecture="arm64", variant="v8")
    armv7 = make_image([make_layer({"arch": "armv7\n"})], oci=True, architecture="arm", variant="v7")
    corrupt = make_image([make_layer({"corrupt/me": "x" * 4096})])
    whole = make_layer({"truncated/me": os.urandom(64 << 10).hex()})
    truncated_blob = whole.blob[: len(whole.blob) // 2]
    truncated = make_image([type(whole)(whole.tar, truncated_blob)])
    big = make_image([make_layer({"big/random": os.urandom(3 << 20)})])
    bad_manifest = make_image([make_layer({"bad/manifest": "m\n"})])
    zeros = make_image([make_layer({"zeros/file": bytes(4 << 20)})])  # tiny download, 4 MiB unpacked
    # One slow layer to unpack beside one that will be corrupted: the failure must stop the other too.
    mixed = make_image([make_layer({f"slow/{i}": bytes(1 << 20) for i in range(24)}),
                        make_layer({"mixed/corrupt": "y" * 4096})])

    pusher.image("test/app", "v1", v1)
    pusher.image("test/app", "v2", v2)
    pusher.image("test/other", "latest", v2)
    index = pusher.index("test/multi", "latest", [amd, arm])
    pusher.index("test/armonly", "latest", [arm, armv7], oci=False)
    pusher.image("test/corrupt", "latest", corrupt)
    pusher.image("test/truncated", "latest", truncated)
    pusher.image("test/big", "latest", big)
    pusher.image("test/badmanifest", "latest", bad_manifest)
    pusher.image("test/zeros", "latest", zeros)
    pusher.image("test/mixed", "latest", mixed)
    return Images(base.digest, v1, v2, amd, arm, index, corrupt, truncated, big, bad_manifest, mixed)


@pytest.fixture(scope="session")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    root = tmp_path_factory.mktemp("registries")
    storage = root / "storage"
    ca = RegistryCA()
    ca_file = root / "ca.crt"
    ca_file.write_bytes(ca.cert_pem)
    server_cert, server_key = ca.issue("127.0.0.1").write(root / "tls", "server")
    signer = ca.issue("shoal test token signer", server=False)
    tokens = TokenService(signer, "shoal-test-registry", {USER: PASSWORD})
    tokens.start()
    started: list[Registry] = []
    try:
        opened = Registry(root / "open", storage, access_log=True)
        opened.start()
        started.append(opened)
        images = _push_all(Pusher(opened.base_url))
        basic = Registry(root / "basic", storage, htpasswd={USER: PASSWORD})
        token = Registry(root / "token", storage, token=TokenAuth(tokens.realm, tokens.service, ISSUER, ca_file))
        tls = Registry(root / "tls", storage, tls=TLSFiles(server_cert, server_key))
        for registry in (basic, token, tls):
            registry.start()
            started.append(registry)
        certs_dir = root / "certs.d"
        (certs_dir / tls.host).mkdir(parents=True)
        (certs_dir / tls.host / "ca.crt").write_bytes(ca.cert_pem)
        yield Registries(opened, basic, token, tls, tokens, ca, certs_dir, images)
    finally:
        for registry in started:
            registry.stop()
        tokens.stop()


@pytest.fixture
def service(tmp_path: Path) -> ImageService:
    return ImageService(tmp_path / "images")
